package clip

import (
	"bytes"
	"encoding/binary"
	"image"
	"image/jpeg"
	"image/png"
	"os"
	"path/filepath"
	"testing"
)

// grid is a small test image as rows of values.
type grid [][]uint8

func (g grid) transpose() grid {
	out := make(grid, len(g[0]))
	for x := range out {
		out[x] = make([]uint8, len(g))
		for y := range g {
			out[x][y] = g[y][x]
		}
	}
	return out
}

func (g grid) flipH() grid {
	out := make(grid, len(g))
	for y, row := range g {
		for x := len(row) - 1; x >= 0; x-- {
			out[y] = append(out[y], row[x])
		}
	}
	return out
}

func (g grid) flipV() grid {
	out := make(grid, len(g))
	for y := range g {
		out[y] = g[len(g)-1-y]
	}
	return out
}

// exifTransforms is the EXIF Orientation table written with transpose and flips:
// the transform that displays a stored image upright.
var exifTransforms = map[int]func(grid) grid{
	1: func(g grid) grid { return g },
	2: grid.flipH,
	3: func(g grid) grid { return g.flipH().flipV() },
	4: grid.flipV,
	5: grid.transpose,
	6: func(g grid) grid { return g.transpose().flipH() }, // rotate 90° clockwise
	7: func(g grid) grid { return g.transpose().flipH().flipV() },
	8: func(g grid) grid { return g.transpose().flipV() }, // rotate 90° counter-clockwise
}

func TestOrientedMatchesEXIFTable(t *testing.T) {
	g := grid{{1, 2, 3, 4}, {5, 6, 7, 8}, {9, 10, 11, 12}}
	p := newPixels(modeL, 4, 3)
	for y, row := range g {
		copy(p.pix[y*4:], row)
	}
	for o, transform := range exifTransforms {
		want := transform(g)
		got := p.oriented(o)
		if got.w != len(want[0]) || got.h != len(want) {
			t.Fatalf("orientation %d: %dx%d, want %dx%d", o, got.w, got.h, len(want[0]), len(want))
		}
		for y := range want {
			for x := range want[y] {
				if got.pix[y*got.w+x] != want[y][x] {
					t.Fatalf("orientation %d: pixel (%d,%d) = %d, want %d", o, x, y, got.pix[y*got.w+x], want[y][x])
				}
			}
		}
	}
}

// tiffWithOrientation builds a TIFF header and IFD0 with a dummy entry followed by
// the Orientation entry.
func tiffWithOrientation(order binary.AppendByteOrder, o uint16) []byte {
	var b []byte
	if order == binary.LittleEndian {
		b = append(b, "II"...)
	} else {
		b = append(b, "MM"...)
	}
	b = order.AppendUint16(b, 42)
	b = order.AppendUint32(b, 8)
	b = order.AppendUint16(b, 2)
	// ImageDescription-like dummy entry (tag 0x010E, ASCII, count 4, inline "abc").
	b = order.AppendUint16(b, 0x010E)
	b = order.AppendUint16(b, 2)
	b = order.AppendUint32(b, 4)
	b = append(b, 'a', 'b', 'c', 0)
	b = order.AppendUint16(b, 0x0112)
	b = order.AppendUint16(b, 3)
	b = order.AppendUint32(b, 1)
	b = order.AppendUint16(b, o)
	b = order.AppendUint16(b, 0)
	return order.AppendUint32(b, 0) // no next IFD
}

// withJPEGExif inserts an APP1 Exif segment after the SOI (and the encoder's APP0,
// if any) of a JPEG stream.
func withJPEGExif(jpg, tiff []byte) []byte {
	payload := append([]byte("Exif\x00\x00"), tiff...)
	seg := []byte{0xFF, 0xE1, byte((len(payload) + 2) >> 8), byte(len(payload) + 2)}
	seg = append(seg, payload...)
	// An unrelated APP2 segment first, to exercise segment skipping.
	app2 := []byte{0xFF, 0xE2, 0x00, 0x05, 'x', 'y', 'z'}
	out := append([]byte{}, jpg[:2]...)
	out = append(out, app2...)
	out = append(out, seg...)
	return append(out, jpg[2:]...)
}

// withPNGExif inserts an eXIf chunk after IHDR.
func withPNGExif(pngData, tiff []byte) []byte {
	ihdrEnd := 8 + 12 + int(binary.BigEndian.Uint32(pngData[8:]))
	out := append([]byte{}, pngData[:ihdrEnd]...)
	out = append(out, pngChunk("eXIf", tiff)...)
	return append(out, pngData[ihdrEnd:]...)
}

func TestEXIFOrientationParsing(t *testing.T) {
	img := image.NewGray(image.Rect(0, 0, 8, 8))
	var jpgBuf, pngBuf bytes.Buffer
	if err := jpeg.Encode(&jpgBuf, img, nil); err != nil {
		t.Fatal(err)
	}
	if err := png.Encode(&pngBuf, img); err != nil {
		t.Fatal(err)
	}
	if o := exifOrientation(jpgBuf.Bytes()); o != 1 {
		t.Errorf("JPEG without EXIF: orientation %d, want 1", o)
	}
	for _, order := range []binary.AppendByteOrder{binary.LittleEndian, binary.BigEndian} {
		for o := uint16(1); o <= 8; o++ {
			tiff := tiffWithOrientation(order, o)
			webpData := []byte("RIFF\x00\x00\x00\x00WEBPVP8X\x0a\x00\x00\x00\x08\x00\x00\x00\x00\x00\x00\x00\x00\x00")
			webpData = append(webpData, "EXIF"...)
			webpData = binary.LittleEndian.AppendUint32(webpData, uint32(len(tiff)))
			webpData = append(webpData, tiff...)
			for name, data := range map[string][]byte{
				"jpeg": withJPEGExif(jpgBuf.Bytes(), tiff),
				"png":  withPNGExif(pngBuf.Bytes(), tiff),
				"webp": webpData,
			} {
				if got := exifOrientation(data); got != int(o) {
					t.Errorf("%s %v orientation %d: read %d", name, order, o, got)
				}
			}
		}
	}
	for _, bad := range [][]byte{nil, {0xFF, 0xD8, 0xFF, 0xE1, 0xFF, 0xFF}, []byte("\x89PNG\r\n\x1a\n\x00\x00\x00\x04eXIfMM")} {
		if o := exifOrientation(bad); o != 1 {
			t.Errorf("truncated data %q: orientation %d, want 1", bad, o)
		}
	}
}

// TestPreprocessFileEXIFOption writes a PNG stored rotated (orientation 6) and checks
// that the option, and only the option, turns it upright.
func TestPreprocessFileEXIFOption(t *testing.T) {
	stored := syntheticPhoto(12, 7)
	var buf bytes.Buffer
	if err := png.Encode(&buf, stored); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "rotated.png")
	if err := os.WriteFile(path, withPNGExif(buf.Bytes(), tiffWithOrientation(binary.BigEndian, 6)), 0o644); err != nil {
		t.Fatal(err)
	}
	// Upright: rotated 90° clockwise, built pixel by pixel.
	upright := image.NewRGBA(image.Rect(0, 0, 7, 12))
	for y := range 7 {
		for x := range 12 {
			upright.Set(6-y, x, stored.At(x, y))
		}
	}
	for _, c := range []struct {
		apply bool
		want  image.Image
	}{{false, stored}, {true, upright}} {
		want, err := Preprocess(c.want, 6)
		if err != nil {
			t.Fatal(err)
		}
		got, err := Preprocessor{Size: 6, ApplyEXIFOrientation: c.apply}.File(path)
		if err != nil {
			t.Fatal(err)
		}
		for i := range want {
			if got[i] != want[i] {
				t.Fatalf("ApplyEXIFOrientation=%v: value %d = %v, want %v", c.apply, i, got[i], want[i])
			}
		}
	}
}
