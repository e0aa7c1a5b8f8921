package clip

import (
	"bytes"
	"encoding/binary"
	"errors"
	"image"
	"image/gif"
	"image/jpeg"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"golang.org/x/image/bmp"

	"github.com/unimos/unimos/internal/testkit"
)

// encodedDeclaring encodes a small image with encode and patches the size
// its header declares: patch writes w and h into the encoded bytes.
func encodedDeclaring(t *testing.T, encode func(*bytes.Buffer) error, patch func([]byte)) []byte {
	t.Helper()
	var buf bytes.Buffer
	if err := encode(&buf); err != nil {
		t.Fatal(err)
	}
	data := buf.Bytes()
	patch(data)
	return data
}

// TestDecompressionBombs checks that an image whose header declares more
// than MaxImagePixels is refused before decoding, for every format whose
// header can declare that many: a small file, and no allocation of the
// pixels it claims.
func TestDecompressionBombs(t *testing.T) {
	src := syntheticPhoto(8, 8)
	cases := []struct {
		name string
		data []byte
		want string
	}{
		{"bomb.png", testkit.PNGDeclaring(60000, 60000), "png image of 60000×60000 pixels exceeds the limit of 178956970 pixels"},
		{"bomb.gif", encodedDeclaring(t, func(b *bytes.Buffer) error { return gif.Encode(b, src, nil) }, func(d []byte) {
			// The logical screen descriptor follows the 6-byte signature.
			binary.LittleEndian.PutUint16(d[6:], 65535)
			binary.LittleEndian.PutUint16(d[8:], 65535)
		}), "gif image of 65535×65535 pixels exceeds the limit"},
		{"bomb.bmp", encodedDeclaring(t, func(b *bytes.Buffer) error { return bmp.Encode(b, src) }, func(d []byte) {
			// BITMAPINFOHEADER: width and height at 18 and 22.
			binary.LittleEndian.PutUint32(d[18:], 20000)
			binary.LittleEndian.PutUint32(d[22:], 20000)
		}), "bmp image of 20000×20000 pixels exceeds the limit"},
		{"bomb.jpg", encodedDeclaring(t, func(b *bytes.Buffer) error { return jpeg.Encode(b, src, nil) }, func(d []byte) {
			// SOF0: marker, length (2), precision (1), height (2), width (2).
			sof := bytes.Index(d, []byte{0xff, 0xc0})
			binary.BigEndian.PutUint16(d[sof+5:], 65000)
			binary.BigEndian.PutUint16(d[sof+7:], 65000)
		}), "jpeg image of 65000×65000 pixels exceeds the limit"},
	}
	for _, c := range cases {
		path := filepath.Join(t.TempDir(), c.name)
		if err := os.WriteFile(path, c.data, 0o644); err != nil {
			t.Fatal(err)
		}
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		_, err := PreprocessFile(path, 16)
		runtime.ReadMemStats(&after)
		if err == nil || !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), path) {
			t.Errorf("%s (%d bytes): got %v, want an error naming the file and saying %q", c.name, len(c.data), err, c.want)
		}
		if used := after.TotalAlloc - before.TotalAlloc; used > 1<<20 {
			t.Errorf("%s: allocated %d bytes for a %d-byte file", c.name, used, len(c.data))
		}
	}
	// At the limit itself an image is decoded (here it fails for want of
	// pixel data, after the check).
	path := filepath.Join(t.TempDir(), "limit.png")
	if err := os.WriteFile(path, testkit.PNGDeclaring(2, 1), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadImage(path); err == nil || strings.Contains(err.Error(), "exceeds the limit") {
		t.Errorf("a 2×1 PNG without pixel data: got %v, want a decoding error", err)
	}
}

// TestSpecialImageFiles checks that only regular files are read as images,
// and that they are refused before being opened: a named pipe would block
// the reader for ever, /dev/zero would never end.
func TestSpecialImageFiles(t *testing.T) {
	dir := t.TempDir()
	var good bytes.Buffer
	if err := jpeg.Encode(&good, syntheticPhoto(9, 7), nil); err != nil {
		t.Fatal(err)
	}
	photo := filepath.Join(dir, "photo.jpg")
	if err := os.WriteFile(photo, good.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name   string
		make   func(path string)
		reason string // "" when the file must decode
	}{
		{"link.jpg", func(p string) { os.Symlink(photo, p) }, ""},
		{"pipe.jpg", func(p string) { testkit.MakeFIFO(t, p) }, "is a named pipe, not an image file"},
		{"zero.jpg", func(p string) { testkit.LinkToDevZero(t, p) }, "is a character device, not an image file"},
		{"folder.jpg", func(p string) { os.Mkdir(p, 0o755) }, "is a folder, not an image file"},
		{"missing.jpg", func(string) {}, "no such file or directory"},
		{"empty.jpg", func(p string) { os.WriteFile(p, nil, 0o644) }, "empty file"},
	}
	for _, c := range cases {
		path := filepath.Join(dir, c.name)
		c.make(path)
		for reader, read := range map[string]func() error{
			"LoadImage":      func() error { _, err := LoadImage(path); return err },
			"PreprocessFile": func() error { _, err := PreprocessFile(path, 8); return err },
		} {
			var err error
			testkit.Within(t, 5*time.Second, func() { err = read() })
			if c.reason == "" {
				if err != nil {
					t.Errorf("%s(%s): %v", reader, c.name, err)
				}
				continue
			}
			if err == nil || !strings.Contains(err.Error(), path) {
				t.Errorf("%s(%s): got %v, want an error naming the file", reader, c.name, err)
				continue
			}
			if reason := errors.Unwrap(err); reason == nil || reason.Error() != c.reason {
				t.Errorf("%s(%s): reason %v, want %q", reader, c.name, reason, c.reason)
			}
		}
	}
}

// TestDecoderPanicIsAnError checks the net under the decoders: a decoder
// that panics (here a test format registered for this, "PANIC" files,
// standing for a decoder bug on a crafted file) gives an error naming the
// file, through LoadImage and PreprocessBytes alike.
func TestDecoderPanicIsAnError(t *testing.T) {
	image.RegisterFormat("panicky", "PANIC",
		func(io.Reader) (image.Image, error) {
			var pixels []byte
			_ = pixels[3] // what a decoder bug looks like
			return nil, nil
		},
		func(io.Reader) (image.Config, error) { return image.Config{Width: 2, Height: 2}, nil })
	path := filepath.Join(t.TempDir(), "x.png")
	if err := os.WriteFile(path, []byte("PANIC!"), 0o644); err != nil {
		t.Fatal(err)
	}
	const reason = "the decoder failed on this file (runtime error: index out of range"
	if _, err := LoadImage(path); err == nil || !strings.Contains(err.Error(), "clip: "+path+": "+reason) {
		t.Errorf("LoadImage: got %v", err)
	}
	if _, err := PreprocessBytes([]byte("PANIC!"), 16); err == nil || !strings.HasPrefix(err.Error(), reason) {
		t.Errorf("PreprocessBytes: got %v", err)
	}
}
