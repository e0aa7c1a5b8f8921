package clip

import (
	"bytes"
	"encoding/json"
	"fmt"
	"image"
	"image/color"
	"image/jpeg"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/unimos/unimos/internal/shareddata"
)

// referenceManifest is preprocess/manifest.json.
type referenceManifest struct {
	Order  []string `json:"order"`
	Images []struct {
		File          string `json:"file"`
		Format        string `json:"format"`
		Width         int    `json:"width"`
		Height        int    `json:"height"`
		PerResolution map[string]struct {
			ResizedWidth  int  `json:"resized_width"`
			ResizedHeight int  `json:"resized_height"`
			ResizeApplied bool `json:"resize_applied"`
			CropLeft      int  `json:"crop_left"`
			CropTop       int  `json:"crop_top"`
		} `json:"per_resolution"`
	} `json:"images"`
}

func loadReferenceManifest(t *testing.T) referenceManifest {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(referenceDir(t), "preprocess", "manifest.json"))
	if err != nil {
		t.Fatal(err)
	}
	var m referenceManifest
	if err := json.Unmarshal(raw, &m); err != nil {
		t.Fatal(err)
	}
	return m
}

// oneLevel is one 8-bit level in normalised units, for the channel where it is
// largest (the smallest std).
const oneLevel = 1.0 / 255 / 0.26130258

// TestPreprocessMatchesReference runs every fixture image at every fixture
// resolution. PNG rows must match Pillow+torchvision exactly. JPEG rows differ only
// through Go's IDCT (the rest of the decode is libjpeg-turbo's arithmetic): at most a
// few levels on a few percent of the values.
func TestPreprocessMatchesReference(t *testing.T) {
	dir := referenceDir(t)
	manifest := loadReferenceManifest(t)
	for _, n := range []int{224, 64, 32} {
		want, shape := readNpyFloat32(t, filepath.Join(dir, "preprocess", fmt.Sprintf("pixels_%d.npy", n)))
		if len(shape) != 4 || shape[0] != len(manifest.Order) || shape[1] != 3 || shape[2] != n || shape[3] != n {
			t.Fatalf("pixels_%d.npy has shape %v", n, shape)
		}
		per := 3 * n * n
		for row, file := range manifest.Order {
			got, err := PreprocessFile(filepath.Join(dir, "images", file), n)
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != per {
				t.Fatalf("%s: %d values, want %d", file, len(got), per)
			}
			maxAbs, differing := 0.0, 0
			for i, g := range got {
				d := math.Abs(float64(g - want[row*per+i]))
				maxAbs = max(maxAbs, d)
				if d > 1e-6 {
					differing++
				}
			}
			frac := float64(differing) / float64(per)
			t.Logf("n=%d %-45s max |diff| %.4f (%.1f levels), %.2f%% of values differ", n, file, maxAbs, maxAbs/oneLevel, 100*frac)
			if strings.HasSuffix(file, ".png") {
				if maxAbs > 1e-6 {
					t.Errorf("n=%d %s: max |diff| %g, want exact match", n, file, maxAbs)
				}
				continue
			}
			if maxAbs > 4*oneLevel || frac > 0.05 {
				t.Errorf("n=%d %s: max |diff| %.4f (%.1f levels), %.1f%% differ; want <= 4 levels on <= 5%%",
					n, file, maxAbs, maxAbs/oneLevel, 100*frac)
			}
		}
	}
}

// TestResizeGeometryMatchesManifest checks the resize size and crop offsets against
// the intermediate sizes recorded by the reference run.
func TestResizeGeometryMatchesManifest(t *testing.T) {
	manifest := loadReferenceManifest(t)
	for _, img := range manifest.Images {
		for res, want := range img.PerResolution {
			var n int
			fmt.Sscan(res, &n)
			w, h := resizedSize(img.Width, img.Height, n)
			if w != want.ResizedWidth || h != want.ResizedHeight {
				t.Errorf("%s at %d: resized to %dx%d, want %dx%d", img.File, n, w, h, want.ResizedWidth, want.ResizedHeight)
			}
			if applied := w != img.Width || h != img.Height; applied != want.ResizeApplied {
				t.Errorf("%s at %d: resize applied %v, want %v", img.File, n, applied, want.ResizeApplied)
			}
			if l, tp := centerCropOffset(w, n), centerCropOffset(h, n); l != want.CropLeft || tp != want.CropTop {
				t.Errorf("%s at %d: crop at (%d,%d), want (%d,%d)", img.File, n, l, tp, want.CropLeft, want.CropTop)
			}
		}
	}
}

// TestResizeGeometryRules checks the torchvision rules quoted in the fixture README
// without the fixture files.
func TestResizeGeometryRules(t *testing.T) {
	for _, c := range []struct{ w, h, n, wantW, wantH int }{
		{181, 263, 64, 64, 92}, // 64*263/181 = 92.99 truncates
		{97, 141, 64, 64, 93},
		{640, 480, 224, 298, 224},
		{300, 300, 224, 224, 224},
	} {
		if w, h := resizedSize(c.w, c.h, c.n); w != c.wantW || h != c.wantH {
			t.Errorf("resizedSize(%d, %d, %d) = %dx%d, want %dx%d", c.w, c.h, c.n, w, h, c.wantW, c.wantH)
		}
	}
	// Python's round is half to even: 50.5 -> 50, 53.5 -> 54, 10.5 -> 10, 14.5 -> 14.
	for _, c := range []struct{ size, n, want int }{
		{325, 224, 50}, {331, 224, 54}, {85, 64, 10}, {93, 64, 14}, {298, 224, 37}, {224, 224, 0},
	} {
		if got := centerCropOffset(c.size, c.n); got != c.want {
			t.Errorf("centerCropOffset(%d, %d) = %d, want %d", c.size, c.n, got, c.want)
		}
	}
}

// TestPreprocessRealJPEG decodes a photograph of the Office-Caltech-10 data.
func TestPreprocessRealJPEG(t *testing.T) {
	path := filepath.Join(shareddata.Dir(t, "office_caltech10"), "images", "webcam", "bike", "frame_0001.jpg")
	got, err := PreprocessFile(path, 224)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 3*224*224 {
		t.Fatalf("%d values, want %d", len(got), 3*224*224)
	}
	for i, v := range got {
		c := i / (224 * 224)
		lo, hi := normalizeLUT[c][0], normalizeLUT[c][255]
		if math.IsNaN(float64(v)) || v < lo || v > hi {
			t.Fatalf("value %d = %v outside [%v, %v]", i, v, lo, hi)
		}
	}
}

func TestNormalizeLUTMatchesFormula(t *testing.T) {
	// float64 reference: the float32 LUT may differ only by float32 rounding.
	for c := range 3 {
		for _, v := range []int{0, 1, 128, 254, 255} {
			want := (float64(v)/255 - float64(clipMean[c])) / float64(clipStd[c])
			if d := math.Abs(float64(normalizeLUT[c][v]) - want); d > 1e-6 {
				t.Errorf("channel %d value %d: %v, want %v", c, v, normalizeLUT[c][v], want)
			}
		}
	}
}

func TestPreprocessErrors(t *testing.T) {
	img := image.NewRGBA(image.Rect(0, 0, 4, 4))
	if _, err := Preprocess(img, 0); err == nil {
		t.Error("size 0 accepted")
	}
	if _, err := Preprocess(image.NewRGBA(image.Rectangle{}), 8); err == nil {
		t.Error("empty image accepted")
	}
	if _, err := Preprocess(nil, 8); err == nil {
		t.Error("nil image accepted")
	}
	missing := filepath.Join(t.TempDir(), "missing.png")
	if _, err := PreprocessFile(missing, 8); err == nil || !strings.Contains(err.Error(), missing) {
		t.Errorf("missing file: error %v, want one naming %s", err, missing)
	}
	garbage := filepath.Join(t.TempDir(), "garbage.jpg")
	if err := os.WriteFile(garbage, []byte("not an image"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := PreprocessFile(garbage, 8); err == nil || !strings.Contains(err.Error(), garbage) {
		t.Errorf("undecodable file: error %v, want one naming %s", err, garbage)
	}
}

// syntheticPhoto is a seeded smooth-plus-noise RGB image.
func syntheticPhoto(w, h int) *image.RGBA {
	rng := rand.New(rand.NewPCG(1, 2))
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	for y := range h {
		for x := range w {
			img.Set(x, y, color.RGBA{
				R: uint8(x*255/w + rng.IntN(16)),
				G: uint8(y*255/h + rng.IntN(16)),
				B: uint8((x+y)*127/(w+h) + rng.IntN(64)),
				A: 255,
			})
		}
	}
	return img
}

// BenchmarkPreprocessPhoto preprocesses a decoded 640x480 JPEG (YCbCr 4:2:0) to 224.
func BenchmarkPreprocessPhoto(b *testing.B) {
	var buf bytes.Buffer
	if err := jpeg.Encode(&buf, syntheticPhoto(640, 480), &jpeg.Options{Quality: 90}); err != nil {
		b.Fatal(err)
	}
	img, err := jpeg.Decode(&buf)
	if err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		if _, err := Preprocess(img, 224); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkPreprocessFile includes reading and decoding the 640x480 JPEG.
func BenchmarkPreprocessFile(b *testing.B) {
	path := filepath.Join(b.TempDir(), "photo.jpg")
	var buf bytes.Buffer
	if err := jpeg.Encode(&buf, syntheticPhoto(640, 480), &jpeg.Options{Quality: 90}); err != nil {
		b.Fatal(err)
	}
	if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		if _, err := PreprocessFile(path, 224); err != nil {
			b.Fatal(err)
		}
	}
}
