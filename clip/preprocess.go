package clip

import (
	"errors"
	"fmt"
	"image"
	"math"
)

// Preprocessor reproduces OpenAI CLIP's image transform clip._transform(Size):
//
//	Resize(Size, BICUBIC) -> CenterCrop(Size) -> convert("RGB") -> ToTensor -> Normalize(mean, std)
//
// as run by torchvision 0.14 on Pillow 9.4 images. The output is a float32 tensor in
// CHW layout, [3, Size, Size] flattened: index c*Size*Size + y*Size + x, channels in
// RGB order.
//
// Every step after decoding matches the reference bit for bit: the resize size
// (short side to Size, long side int(Size*long/short), no resize when the size does
// not change), Pillow's fixed-point separable bicubic filter (antialiased when
// shrinking, 8-bit clipped intermediate, horizontal pass first), Pillow's mode rules
// (palette and 1-bit images resized with NEAREST; RGBA resized premultiplied and its
// alpha then dropped, not composited; grayscale resized as one channel; CMYK
// converted to RGB after resizing), torchvision's centre crop (offsets rounded half
// to even) and the float32 normalisation with CLIP's mean and std.
//
// Decoding differs from Pillow only where Go's decoders do; see LoadImage.
type Preprocessor struct {
	// Size is the output side n_px (224 for most released CLIP models).
	Size int
	// ApplyEXIFOrientation rotates or flips images read by File according to their
	// EXIF Orientation tag (JPEG, PNG and WebP), as PIL.ImageOps.exif_transpose does.
	// The reference pipeline does not do this (Image.open ignores the tag), so it is
	// off by default to reproduce the reference features; turn it on for photos whose
	// pixels are stored rotated.
	ApplyEXIFOrientation bool
}

// clipMean and clipStd are CLIP's normalisation constants (float32, as torchvision
// holds them).
var (
	clipMean = [3]float32{0.48145466, 0.4578275, 0.40821073}
	clipStd  = [3]float32{0.26862954, 0.26130258, 0.27577711}
)

// normalizeLUT[c][v] is torchvision's ToTensor+Normalize of the 8-bit value v in
// channel c, computed in float32 in the same order: (v/255 - mean) / std.
var normalizeLUT = func() (lut [3][256]float32) {
	for c := range 3 {
		for v := range 256 {
			lut[c][v] = (float32(v)/255 - clipMean[c]) / clipStd[c]
		}
	}
	return lut
}()

// Preprocess applies the reference CLIP transform at size nPx to img; see
// Preprocessor. It returns a [3, nPx, nPx] CHW float32 tensor.
func Preprocess(img image.Image, nPx int) ([]float32, error) {
	return Preprocessor{Size: nPx}.Image(img)
}

// PreprocessFile decodes the image at path (see LoadImage) and applies the reference
// CLIP transform at size nPx. EXIF orientation is ignored, as in the reference.
// Every command that reads image files reads them through here or
// Preprocessor.File, so that all have LoadImage's checks: regular files only,
// the pixel limit before decoding, no panic on a crafted file.
func PreprocessFile(path string, nPx int) ([]float32, error) {
	return Preprocessor{Size: nPx}.File(path)
}

// Image applies the transform to an already decoded image. An *image.YCbCr is taken
// to be JPEG data (full-range JFIF colours) and its chroma is upsampled as
// libjpeg-turbo does; images from LoadImage are already in the right form.
func (p Preprocessor) Image(img image.Image) ([]float32, error) {
	if p.Size <= 0 {
		return nil, fmt.Errorf("clip: preprocess: size %d is not positive", p.Size)
	}
	if img == nil || img.Bounds().Empty() {
		return nil, errors.New("clip: preprocess: empty image")
	}
	return p.transform(toPixels(img)), nil
}

// File decodes the image at path with LoadImage, applies its EXIF orientation if
// ApplyEXIFOrientation is set, and transforms it. Errors name the file and wrap
// the reason, as LoadImage's do.
func (p Preprocessor) File(path string) ([]float32, error) {
	if p.Size <= 0 {
		return nil, fmt.Errorf("clip: preprocess %s: size %d is not positive", path, p.Size)
	}
	img, data, err := loadImage(path)
	if err != nil {
		return nil, err
	}
	return p.decoded(img, data), nil
}

// decoded transforms an image decoded from the file bytes data (which hold
// its EXIF orientation).
func (p Preprocessor) decoded(img image.Image, data []byte) []float32 {
	px := toPixels(img)
	if p.ApplyEXIFOrientation {
		px = px.oriented(exifOrientation(data))
	}
	return p.transform(px)
}

// transform resizes, crops and normalises; src is not modified.
func (p Preprocessor) transform(src *pixels) []float32 {
	n := p.Size
	outW, outH := resizedSize(src.w, src.h, n)
	window := image.Rect(0, 0, n, n).Add(image.Pt(centerCropOffset(outW, n), centerCropOffset(outH, n)))
	var cropped *pixels
	if outW == src.w && outH == src.h {
		cropped = src.crop(window)
	} else {
		cropped = resizeWindow(src, outW, outH, window)
	}
	return cropped.normalizedCHW()
}

// resizedSize is torchvision's Resize(n) output size for a w x h image: the short
// side becomes n, the long side int(n * long / short) computed in float64 and
// truncated.
func resizedSize(w, h, n int) (outW, outH int) {
	if w <= h {
		return n, int(float64(n) * float64(h) / float64(w))
	}
	return int(float64(n) * float64(w) / float64(h)), n
}

// centerCropOffset is torchvision's CenterCrop offset int(round((size - n) / 2)),
// Python's round being half to even.
func centerCropOffset(size, n int) int {
	return int(math.RoundToEven(float64(size-n) / 2))
}

// normalizedCHW converts the pixels to RGB as Pillow's convert("RGB") does for their
// mode and returns torchvision's normalised [3, h, w] tensor.
func (p *pixels) normalizedCHW() []float32 {
	plane := p.w * p.h
	out := make([]float32, 3*plane)
	for i := range plane {
		rgb := p.rgb(i)
		for c := range 3 {
			out[c*plane+i] = normalizeLUT[c][rgb[c]]
		}
	}
	return out
}
