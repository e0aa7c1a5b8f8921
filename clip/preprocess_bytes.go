package clip

import "fmt"

// PreprocessBytes is PreprocessFile for an image file's bytes received in
// memory (an upload, say): the same decoding and transform, so the same
// bytes give the same tensor as the file, and images over MaxImagePixels
// are refused. EXIF orientation is ignored, as in the reference.
func PreprocessBytes(data []byte, nPx int) ([]float32, error) {
	return Preprocessor{Size: nPx}.Bytes(data)
}

// Bytes decodes an image file's bytes as LoadImage decodes a file (with its
// checks: MaxImagePixels, decoder failures), applies its EXIF orientation if
// ApplyEXIFOrientation is set, and transforms it. Errors are the reason
// alone ("not a JPEG, PNG, ... image", "PNG image of 20000×20000 pixels
// exceeds the limit of ..."), for the caller to prefix with the image's
// name.
func (p Preprocessor) Bytes(data []byte) ([]float32, error) {
	if p.Size <= 0 {
		return nil, fmt.Errorf("size %d is not positive", p.Size)
	}
	img, err := decodeImage(data)
	if err != nil {
		return nil, err
	}
	return p.decoded(img, data), nil
}
