package clip

import (
	"bytes"
	"image"
	"image/jpeg"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/unimos/unimos/internal/testkit"
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
		{"decompression bomb", testkit.PNGDeclaring(20000, 20000), "png image of 20000×20000 pixels exceeds the limit of 178956970 pixels (Pillow's decompression-bomb limit)"},
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
	_, err := PreprocessBytes(testkit.PNGDeclaring(MaxImagePixels/2, 2), 224)
	if err == nil || strings.Contains(err.Error(), "exceeds the limit") {
		t.Errorf("an image of MaxImagePixels pixels: %v", err)
	}
}
