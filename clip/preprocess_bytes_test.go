package clip

import (
	"bytes"
	"encoding/binary"
	"hash/crc32"
	"image"
	"image/jpeg"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// TestPreprocessBytesEqualsFile decodes every fixture image from memory and
// from its file: the tensors must be identical, so that an image uploaded to
// a server is classified as the same file given to a command.
func TestPreprocessBytesEqualsFile(t *testing.T) {
	dir := filepath.Join(referenceDir(t), "images")
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		path := filepath.Join(dir, e.Name())
		want, err := PreprocessFile(path, 224)
		if err != nil {
			t.Fatal(err)
		}
		data, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		got, err := PreprocessBytes(data, 224)
		if err != nil || !slices.Equal(got, want) {
			t.Errorf("%s: from memory differs from the file (error %v)", e.Name(), err)
		}
	}
}

// TestPreprocessBytesRefuses names the reason for every kind of bad input,
// without a path (the caller names the image).
func TestPreprocessBytesRefuses(t *testing.T) {
	var small bytes.Buffer
	if err := jpeg.Encode(&small, image.NewGray(image.Rect(0, 0, 64, 64)), nil); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name string
		data []byte
		want string
	}{
		{"empty", nil, "empty file"},
		{"text", []byte("hello, not an image"), "not a JPEG, PNG, GIF, BMP, TIFF or WebP image"},
		{"truncated", small.Bytes()[:small.Len()/2], "the file ends before the image does (truncated?)"},
		{"header only", small.Bytes()[:20], "the file ends before the image does (truncated?)"},
		{"decompression bomb", pngHeader(20000, 20000), "png image of 20000×20000 pixels exceeds the limit of 178956970 pixels (Pillow's decompression-bomb limit)"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := PreprocessBytes(c.data, 224)
			if err == nil || err.Error() != c.want {
				t.Errorf("error %v, want %q", err, c.want)
			}
			if err != nil && strings.Contains(err.Error(), "clip:") {
				t.Errorf("error %q carries a prefix", err)
			}
		})
	}
	// Exactly at the limit the header passes (the pixels then fail to decode:
	// this file has no image data).
	_, err := PreprocessBytes(pngHeader(MaxImagePixels/2, 2), 224)
	if err == nil || strings.Contains(err.Error(), "exceeds the limit") {
		t.Errorf("an image of MaxImagePixels pixels: %v", err)
	}
}

// pngHeader returns the signature and a valid IHDR chunk of an 8-bit RGB
// PNG of w x h pixels, and nothing else: enough for image.DecodeConfig.
func pngHeader(w, h int) []byte {
	ihdr := make([]byte, 13)
	binary.BigEndian.PutUint32(ihdr[0:], uint32(w))
	binary.BigEndian.PutUint32(ihdr[4:], uint32(h))
	ihdr[8], ihdr[9] = 8, 2 // bit depth 8, colour type RGB
	chunk := binary.BigEndian.AppendUint32(nil, uint32(len(ihdr)))
	chunk = append(chunk, "IHDR"...)
	chunk = append(chunk, ihdr...)
	chunk = binary.BigEndian.AppendUint32(chunk, crc32.ChecksumIEEE(chunk[4:]))
	return append([]byte("\x89PNG\r\n\x1a\n"), chunk...)
}
