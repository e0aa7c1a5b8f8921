package clip

import (
	"bytes"
	"errors"
	"fmt"
	"image"
	"io"
)

// MaxPixels is the largest image, in pixels (width × height), that Bytes
// decodes: Pillow's decompression-bomb limit (2 × MAX_IMAGE_PIXELS), the
// one extract applies to files. A few kilobytes of compressed data can
// declare gigapixels; the header is read first, so such an image is refused
// before any pixel memory is allocated.
const MaxPixels = 2 * 89_478_485

// PreprocessBytes is PreprocessFile for an image file's bytes received in
// memory (an upload, say): the same decoding and transform, so the same
// bytes give the same tensor as the file, and images over MaxPixels are
// refused. EXIF orientation is ignored, as in the reference.
func PreprocessBytes(data []byte, nPx int) ([]float32, error) {
	return Preprocessor{Size: nPx}.Bytes(data)
}

// Bytes decodes an image file's bytes as LoadImage decodes a file, after
// checking from its header that it has at most MaxPixels pixels, applies
// its EXIF orientation if ApplyEXIFOrientation is set, and transforms it.
// Errors are the reason alone ("not a JPEG, PNG, ... image", "PNG image of
// 20000×20000 pixels exceeds the limit of ..."), for the caller to prefix
// with the image's name.
func (p Preprocessor) Bytes(data []byte) ([]float32, error) {
	if p.Size <= 0 {
		return nil, fmt.Errorf("size %d is not positive", p.Size)
	}
	if len(data) == 0 {
		return nil, errors.New("no image data (0 bytes)")
	}
	cfg, format, err := image.DecodeConfig(bytes.NewReader(data))
	switch {
	case errors.Is(err, image.ErrFormat):
		return nil, errNotAnImage
	case errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF):
		return nil, errTruncated
	case err != nil:
		return nil, err
	}
	if int64(cfg.Width)*int64(cfg.Height) > MaxPixels {
		return nil, fmt.Errorf("%s image of %d×%d pixels exceeds the limit of %d pixels", format, cfg.Width, cfg.Height, MaxPixels)
	}
	img, err := decodeData(data)
	if err != nil {
		return nil, err
	}
	if img.Bounds().Empty() {
		return nil, errors.New("empty image")
	}
	px := toPixels(img)
	if p.ApplyEXIFOrientation {
		px = px.oriented(exifOrientation(data))
	}
	return p.transform(px), nil
}
