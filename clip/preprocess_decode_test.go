package clip

import (
	"bytes"
	"compress/zlib"
	"encoding/binary"
	"errors"
	"fmt"
	"go/build"
	"hash/crc32"
	"image"
	"image/color"
	"image/draw"
	"image/gif"
	"image/jpeg"
	"image/png"
	"math"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/image/bmp"
	"golang.org/x/image/tiff"

	"github.com/unimos/unimos/internal/imagefile"
)

// rgbDiffStats compares two RGB pixel buffers of the same size.
func rgbDiffStats(a, b *pixels) (maxAbs int, exactFrac float64) {
	exact := 0
	for i := range a.w * a.h {
		pa, pb := a.rgb(i), b.rgb(i)
		for c := range 3 {
			d := int(pa[c]) - int(pb[c])
			maxAbs = max(maxAbs, d, -d)
			if d == 0 {
				exact++
			}
		}
	}
	return maxAbs, float64(exact) / float64(3*a.w*a.h)
}

// TestJPEGDecodeAgainstPillow compares our decode of a fixture JPEG with Pillow's
// decode of the same file (stored losslessly as PNG in the fixtures). Only the IDCT
// differs from libjpeg-turbo; with Go's own YCbCr->RGB (nearest chroma, other
// rounding) about 13% of the samples differ by up to 4 levels.
func TestJPEGDecodeAgainstPillow(t *testing.T) {
	dir := filepath.Join(referenceDir(t), "images")
	jpg, err := LoadImage(filepath.Join(dir, "jpg_amazon_mug_0001_300x300.jpg"))
	if err != nil {
		t.Fatal(err)
	}
	pil, err := LoadImage(filepath.Join(dir, "jpg_amazon_mug_0001_300x300_pil_decoded.png"))
	if err != nil {
		t.Fatal(err)
	}
	maxAbs, exact := rgbDiffStats(toPixels(jpg), toPixels(pil))
	t.Logf("max difference %d levels, %.2f%% of samples identical", maxAbs, 100*exact)
	if maxAbs > 3 || exact < 0.99 {
		t.Errorf("max difference %d levels, %.2f%% identical; want <= 3 levels and >= 99%%", maxAbs, 100*exact)
	}
}

// randomYCbCr returns a seeded random YCbCr image.
func randomYCbCr(w, h int, ratio image.YCbCrSubsampleRatio, seed uint64) *image.YCbCr {
	rng := rand.New(rand.NewPCG(seed, 99))
	img := image.NewYCbCr(image.Rect(0, 0, w, h), ratio)
	for _, plane := range [][]uint8{img.Y, img.Cb, img.Cr} {
		for i := range plane {
			plane[i] = uint8(rng.IntN(256))
		}
	}
	return img
}

// triangleWeights returns the two chroma indices and weights libjpeg's triangle
// filter mixes for output index x when a chroma sample covers two outputs: 3/4 of
// the nearer sample, 1/4 of the next one on the side of x, clamped at the edges.
func triangleWeights(x, n int) (near, far int) {
	near = x / 2
	far = near - 1
	if x%2 == 1 {
		far = near + 1
	}
	return near, min(max(far, 0), n-1)
}

// TestJPEGUpsamplingAgainstTriangleFilter checks the chroma upsampler against a
// float64 triangle filter (the rounding biases move results by at most 3/4 level),
// and the box-filter cases against plain replication.
func TestJPEGUpsamplingAgainstTriangleFilter(t *testing.T) {
	cases := []struct {
		ratio  image.YCbCrSubsampleRatio
		hf, vf int
		fancy  bool
		w, h   int
	}{
		{image.YCbCrSubsampleRatio420, 2, 2, true, 13, 9},
		{image.YCbCrSubsampleRatio420, 2, 2, true, 14, 10},
		{image.YCbCrSubsampleRatio422, 2, 1, true, 11, 6},
		{image.YCbCrSubsampleRatio440, 1, 2, true, 7, 11},
		{image.YCbCrSubsampleRatio420, 2, 2, false, 4, 6}, // 2 chroma columns: libjpeg uses the box filter
		{image.YCbCrSubsampleRatio411, 4, 1, false, 13, 5},
		{image.YCbCrSubsampleRatio410, 4, 2, false, 13, 5},
		{image.YCbCrSubsampleRatio444, 1, 1, false, 5, 5},
	}
	for i, c := range cases {
		img := randomYCbCr(c.w, c.h, c.ratio, uint64(i))
		up := newJPEGUpsampler(img)
		cw, ch := (c.w+c.hf-1)/c.hf, (c.h+c.vf-1)/c.vf
		got := make([]uint8, c.w)
		for y := range c.h {
			up.row(got, img.Cb, y)
			for x := range c.w {
				sample := func(cx, cy int) float64 { return float64(img.Cb[cy*img.CStride+cx]) }
				var want float64
				if !c.fancy {
					want = sample(x/c.hf, y/c.vf)
				} else {
					xs, xw := []int{x / c.hf}, []float64{1}
					if c.hf == 2 {
						n, f := triangleWeights(x, cw)
						xs, xw = []int{n, f}, []float64{0.75, 0.25}
					}
					ys, yw := []int{y / c.vf}, []float64{1}
					if c.vf == 2 {
						n, f := triangleWeights(y, ch)
						ys, yw = []int{n, f}, []float64{0.75, 0.25}
					}
					for a := range xs {
						for b := range ys {
							want += xw[a] * yw[b] * sample(xs[a], ys[b])
						}
					}
				}
				if d := math.Abs(float64(got[x]) - want); d > 0.75 {
					t.Errorf("%v %dx%d: chroma at (%d,%d) = %d, triangle filter gives %.3f", c.ratio, c.w, c.h, x, y, got[x], want)
				}
			}
		}
	}
}

func TestJPEGColorConversionAgainstFormula(t *testing.T) {
	img := image.NewYCbCr(image.Rect(0, 0, 1, 1), image.YCbCrSubsampleRatio444)
	for y := 0; y < 256; y += 15 {
		for cb := 0; cb < 256; cb += 17 {
			for cr := 0; cr < 256; cr += 17 {
				img.Y[0], img.Cb[0], img.Cr[0] = uint8(y), uint8(cb), uint8(cr)
				got := toPixels(img).rgb(0)
				// JFIF: R = Y + 1.402 Cr', G = Y - 0.344136 Cb' - 0.714136 Cr', B = Y + 1.772 Cb'.
				want := [3]float64{
					float64(y) + 1.402*float64(cr-128),
					float64(y) - 0.344136*float64(cb-128) - 0.714136*float64(cr-128),
					float64(y) + 1.772*float64(cb-128),
				}
				for c := range 3 {
					if d := math.Abs(float64(got[c]) - math.Min(math.Max(want[c], 0), 255)); d > 0.51 {
						t.Fatalf("YCbCr(%d,%d,%d) channel %d = %d, want %.2f", y, cb, cr, c, got[c], want[c])
					}
				}
			}
		}
	}
}

// goTestdata returns a file of Go's image test data, or skips.
func goTestdata(t *testing.T, name string) string {
	path := filepath.Join(build.Default.GOROOT, "src", "image", "testdata", name)
	if _, err := os.Stat(path); err != nil {
		t.Skipf("Go test image %s not available: %v", path, err)
	}
	return path
}

// TestCMYKJPEGConvention decodes an Adobe CMYK JPEG and compares it with the RGB
// rendering shipped next to it; inverted inks would be off by about 130 levels.
func TestCMYKJPEGConvention(t *testing.T) {
	img, err := LoadImage(goTestdata(t, "video-001.cmyk.jpeg"))
	if err != nil {
		t.Fatal(err)
	}
	ref, err := LoadImage(goTestdata(t, "video-001.cmyk.png"))
	if err != nil {
		t.Fatal(err)
	}
	px := toPixels(img)
	if px.mode != modeCMYK {
		t.Fatalf("decoded to mode %d, want CMYK", px.mode)
	}
	total := 0
	for i := range px.w * px.h {
		r, g, b, _ := ref.At(i%px.w, i/px.w).RGBA()
		got := px.rgb(i)
		for c, v := range []uint32{r >> 8, g >> 8, b >> 8} {
			total += max(int(got[c])-int(v), int(v)-int(got[c]))
		}
	}
	if mean := float64(total) / float64(3*px.w*px.h); mean > 1 {
		t.Errorf("mean difference to the RGB rendering %.2f levels, want <= 1", mean)
	}
}

func TestCMYKToRGBAgainstFormula(t *testing.T) {
	p := newPixels(modeCMYK, 1, 1)
	for c := range 256 {
		for k := range 256 {
			p.pix[0], p.pix[3] = uint8(c), uint8(k)
			want := float64(255-c) * float64(255-k) / 255
			if got := p.rgb(0)[0]; math.Abs(float64(got)-want) > 1 {
				t.Fatalf("C=%d K=%d: R = %d, want %.2f", c, k, got, want)
			}
		}
	}
}

// xImageTestdata returns a file of golang.org/x/image's test data, or skips.
func xImageTestdata(t *testing.T, name string) string {
	out, err := exec.Command("go", "list", "-m", "-f", "{{.Dir}}", "golang.org/x/image").Output()
	if err != nil {
		t.Skipf("cannot locate golang.org/x/image: %v", err)
	}
	path := filepath.Join(strings.TrimSpace(string(out)), "testdata", name)
	if _, err := os.Stat(path); err != nil {
		t.Skipf("test image %s not available: %v", path, err)
	}
	return path
}

// meanRGBDifference is the mean absolute 8-bit difference over R, G and B.
func meanRGBDifference(a, b image.Image) float64 {
	r := a.Bounds()
	total := 0.0
	for y := r.Min.Y; y < r.Max.Y; y++ {
		for x := r.Min.X; x < r.Max.X; x++ {
			r1, g1, b1, _ := a.At(x, y).RGBA()
			r2, g2, b2, _ := b.At(x, y).RGBA()
			for _, d := range []float64{float64(r1>>8) - float64(r2>>8), float64(g1>>8) - float64(g2>>8), float64(b1>>8) - float64(b2>>8)} {
				total += math.Abs(d)
			}
		}
	}
	return total / float64(3*r.Dx()*r.Dy())
}

// TestWebPLossyColours compares a lossy WebP with the lossless original it was made
// from. Reading VP8's limited-range YCbCr as full-range JPEG colours (Go's
// image.YCbCr model) costs contrast: about 11 levels on average instead of 4.
func TestWebPLossyColours(t *testing.T) {
	img, err := LoadImage(xImageTestdata(t, "video-001.lossy.webp"))
	if err != nil {
		t.Fatal(err)
	}
	ref, err := LoadImage(xImageTestdata(t, "video-001.png"))
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := img.(*image.RGBA); !ok {
		t.Fatalf("lossy WebP loaded as %T, want *image.RGBA", img)
	}
	if mean := meanRGBDifference(img, ref); mean > 6 {
		t.Errorf("mean difference to the original %.2f levels, want <= 6", mean)
	}
	// Limited range: Y=16 is black and Y=235 white with neutral chroma.
	for _, c := range []struct{ y, want int }{{16, 0}, {235, 255}, {126, 128}} {
		if got := vp8Clip8(mulHi(c.y, 19077) + mulHi(128, 26149) - 14234); int(got) != c.want {
			t.Errorf("Y=%d: R = %d, want %d", c.y, got, c.want)
		}
	}
}

// pngChunk encodes one PNG chunk.
func pngChunk(typ string, data []byte) []byte {
	var b bytes.Buffer
	binary.Write(&b, binary.BigEndian, uint32(len(data)))
	b.WriteString(typ)
	b.Write(data)
	binary.Write(&b, binary.BigEndian, crc32.ChecksumIEEE(append([]byte(typ), data...)))
	return b.Bytes()
}

// bilevelPNG writes a 1-bit grayscale PNG of a checkerboard with 3-pixel squares.
func bilevelPNG(t *testing.T, w, h int) []byte {
	var raw bytes.Buffer
	stride := (w + 7) / 8
	for y := range h {
		raw.WriteByte(0) // filter: none
		row := make([]byte, stride)
		for x := range w {
			if (x/3+y/3)%2 == 0 {
				row[x/8] |= 0x80 >> (x % 8)
			}
		}
		raw.Write(row)
	}
	var z bytes.Buffer
	zw := zlib.NewWriter(&z)
	zw.Write(raw.Bytes())
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	ihdr := binary.BigEndian.AppendUint32(binary.BigEndian.AppendUint32(nil, uint32(w)), uint32(h))
	ihdr = append(ihdr, 1, 0, 0, 0, 0) // bit depth 1, grayscale, deflate, no filter, no interlace
	out := []byte("\x89PNG\r\n\x1a\n")
	out = append(out, pngChunk("IHDR", ihdr)...)
	out = append(out, pngChunk("IDAT", z.Bytes())...)
	return append(out, pngChunk("IEND", nil)...)
}

// TestPNGBilevelResizedNearest: Pillow opens 1-bit PNGs in mode "1" and resizes them
// with NEAREST, so the output holds only black and white.
func TestPNGBilevelResizedNearest(t *testing.T) {
	path := filepath.Join(t.TempDir(), "bilevel.png")
	if err := os.WriteFile(path, bilevelPNG(t, 10, 7), 0o644); err != nil {
		t.Fatal(err)
	}
	img, err := LoadImage(path)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := img.(*image.Paletted); !ok {
		t.Fatalf("1-bit PNG loaded as %T, want *image.Paletted", img)
	}
	out, err := PreprocessFile(path, 32)
	if err != nil {
		t.Fatal(err)
	}
	for i, v := range out {
		c := i / (32 * 32)
		if v != normalizeLUT[c][0] && v != normalizeLUT[c][255] {
			t.Fatalf("value %d = %v is neither black nor white", i, v)
		}
	}
}

// TestPNGColourKeyIgnored: Pillow opens an RGB PNG with a tRNS colour key in mode
// RGB, so the key colour is neither transparent nor blackened by the resize.
func TestPNGColourKeyIgnored(t *testing.T) {
	src := syntheticPhoto(19, 13)
	key := src.RGBAAt(4, 5)
	var buf bytes.Buffer
	if err := png.Encode(&buf, src); err != nil {
		t.Fatal(err)
	}
	plain := buf.Bytes()
	ihdrEnd := 8 + 12 + int(binary.BigEndian.Uint32(plain[8:]))
	trns := pngChunk("tRNS", []byte{0, key.R, 0, key.G, 0, key.B})
	keyed := append(append(append([]byte{}, plain[:ihdrEnd]...), trns...), plain[ihdrEnd:]...)
	dir := t.TempDir()
	var results [2][]float32
	for i, data := range [][]byte{plain, keyed} {
		path := filepath.Join(dir, fmt.Sprintf("%d.png", i))
		if err := os.WriteFile(path, data, 0o644); err != nil {
			t.Fatal(err)
		}
		out, err := PreprocessFile(path, 10)
		if err != nil {
			t.Fatal(err)
		}
		results[i] = out
	}
	if raw, _ := png.Decode(bytes.NewReader(keyed)); raw.ColorModel() != color.NRGBAModel {
		t.Fatalf("test input: Go decodes the keyed PNG as %T, expected NRGBA", raw)
	}
	for i := range results[0] {
		if results[0][i] != results[1][i] {
			t.Fatalf("value %d = %v with the colour key, %v without", i, results[1][i], results[0][i])
		}
	}
}

// TestLoadImageFormats round-trips one image through the encoders of every
// format of imagefile.Extensions but WebP (Go has no WebP encoder; the WebP
// tests read x/image's test files); the lossless ones must give the
// in-memory image's pixels exactly.
func TestLoadImageFormats(t *testing.T) {
	src := syntheticPhoto(23, 17)
	encoders := map[string]func(*bytes.Buffer) error{
		"png":  func(b *bytes.Buffer) error { return png.Encode(b, src) },
		"bmp":  func(b *bytes.Buffer) error { return bmp.Encode(b, src) },
		"gif":  func(b *bytes.Buffer) error { return gif.Encode(b, src, nil) },
		"jpg":  func(b *bytes.Buffer) error { return jpeg.Encode(b, src, nil) },
		"JPEG": func(b *bytes.Buffer) error { return jpeg.Encode(b, src, nil) },
		"tif":  func(b *bytes.Buffer) error { return tiff.Encode(b, src, nil) },
		"tiff": func(b *bytes.Buffer) error {
			return tiff.Encode(b, src, &tiff.Options{Compression: tiff.Deflate, Predictor: true})
		},
	}
	for _, ext := range imagefile.Extensions {
		if _, ok := encoders[ext[1:]]; !ok && ext != ".webp" && ext != ".jpeg" {
			t.Errorf("imagefile.Extensions has %s, which this test does not decode", ext)
		}
	}
	lossless := map[string]bool{"png": true, "bmp": true, "tif": true, "tiff": true}
	want, err := Preprocess(src, 16)
	if err != nil {
		t.Fatal(err)
	}
	for ext, encode := range encoders {
		var buf bytes.Buffer
		if err := encode(&buf); err != nil {
			t.Fatal(err)
		}
		path := filepath.Join(t.TempDir(), "img."+ext)
		if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
		got, err := PreprocessFile(path, 16)
		if err != nil {
			t.Fatalf("%s: %v", ext, err)
		}
		if len(got) != 3*16*16 {
			t.Fatalf("%s: %d values", ext, len(got))
		}
		if !imagefile.Is(path) {
			t.Errorf("%s: imagefile.Is(%q) = false for a file LoadImage decodes", ext, path)
		}
		if lossless[ext] {
			for i := range want {
				if got[i] != want[i] {
					t.Fatalf("%s: value %d = %v, want %v as for the in-memory image", ext, i, got[i], want[i])
				}
			}
		}
	}
}

// TestLoadImageErrors checks that a decoding error names the file and wraps
// a reason worded for users, without the path.
func TestLoadImageErrors(t *testing.T) {
	var jpg bytes.Buffer
	if err := jpeg.Encode(&jpg, syntheticPhoto(40, 30), nil); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name   string
		data   []byte
		reason string
	}{
		{"text.jpg", []byte("this is not an image"), "not a JPEG, PNG, GIF, BMP, TIFF or WebP image"},
		{"empty.png", nil, "empty file"},
		{"cut.jpg", jpg.Bytes()[:jpg.Len()/2], "the file ends before the image does (truncated?)"},
	}
	for _, c := range cases {
		path := filepath.Join(t.TempDir(), c.name)
		if err := os.WriteFile(path, c.data, 0o644); err != nil {
			t.Fatal(err)
		}
		_, err := PreprocessFile(path, 16)
		if err == nil || !strings.Contains(err.Error(), path) {
			t.Errorf("%s: error %v, want one naming the file", c.name, err)
			continue
		}
		if reason := errors.Unwrap(err); reason == nil || reason.Error() != c.reason {
			t.Errorf("%s: reason %v, want %q", c.name, reason, c.reason)
		}
	}
}

// TestDrawnImageTypesAgree checks that the same pixels in different Go image types
// are preprocessed identically.
func TestDrawnImageTypesAgree(t *testing.T) {
	src := syntheticPhoto(37, 29)
	want, err := Preprocess(src, 20)
	if err != nil {
		t.Fatal(err)
	}
	for _, dst := range []draw.Image{
		image.NewNRGBA(src.Rect), image.NewRGBA64(src.Rect), image.NewNRGBA64(src.Rect),
		// A sub-image with a non-zero origin.
		image.NewRGBA(image.Rect(-3, 5, 40, 40)).SubImage(image.Rect(-3, 5, 34, 34)).(*image.RGBA),
	} {
		draw.Draw(dst, dst.Bounds(), src, image.Point{}, draw.Src)
		got, err := Preprocess(dst, 20)
		if err != nil {
			t.Fatal(err)
		}
		for i := range want {
			if got[i] != want[i] {
				t.Fatalf("%T: value %d = %v, want %v", dst, i, got[i], want[i])
			}
		}
	}

	gray := image.NewGray(image.Rect(0, 0, 31, 19))
	gray16 := image.NewGray16(gray.Rect)
	for i := range gray.Pix {
		gray.Pix[i] = uint8(i * 7)
		gray16.SetGray16(i%31, i/31, color.Gray16{Y: uint16(gray.Pix[i]) * 257})
	}
	a, errA := Preprocess(gray, 12)
	b, errB := Preprocess(gray16, 12)
	if errA != nil || errB != nil {
		t.Fatal(errA, errB)
	}
	for i := range a {
		if a[i] != b[i] {
			t.Fatalf("Gray16 value %d = %v, Gray gives %v", i, b[i], a[i])
		}
	}
}
