package clip

import (
	"bytes"
	"errors"
	"fmt"
	"image"
	"image/color"
	_ "image/gif"  // register GIF decoding
	_ "image/jpeg" // register JPEG decoding
	_ "image/png"  // register PNG decoding
	"io"
	"io/fs"

	// The decoders of the formats of imagefile.Extensions, the file types
	// every command takes.
	_ "golang.org/x/image/bmp"  // register BMP decoding
	_ "golang.org/x/image/tiff" // register TIFF decoding
	_ "golang.org/x/image/webp" // register WebP decoding

	"github.com/unimos/unimos/internal/regularfile"
)

// errNotAnImage replaces image.ErrFormat ("image: unknown format"), whose
// wording does not tell a user which formats would have been read.
var errNotAnImage = errors.New("not a JPEG, PNG, GIF, BMP, TIFF or WebP image")

// errTruncated replaces io.ErrUnexpectedEOF from a decoder.
var errTruncated = errors.New("the file ends before the image does (truncated?)")

// LoadImage decodes a JPEG, PNG, GIF (first frame), WebP, BMP or TIFF file into the
// form Preprocess expects, mirroring what Pillow's Image.open would produce:
//
//   - JPEG: Go's decoder. Its IDCT differs from libjpeg-turbo's, so about 1% of the
//     samples differ by up to 3 levels (the chroma upsampling and YCbCr->RGB
//     arithmetic, done later in Preprocess, are libjpeg-turbo's). Adobe CMYK/YCCK JPEGs decode to CMYK with the
//     same ink convention as Pillow; EXIF orientation is ignored (see Preprocessor).
//   - PNG: exact. 16-bit colour keeps the high byte as Pillow does; 1-bit grayscale
//     becomes a two-colour palette image, so that it is resized with NEAREST like
//     Pillow's mode "1"; a tRNS colour key on a grayscale or RGB image is ignored,
//     as Pillow's convert("RGB") ignores it.
//   - WebP: lossy images are converted to RGB with libwebp's fancy upsampling and
//     limited-range BT.601 arithmetic (Go's image.YCbCr would read them as
//     full-range JPEG colours); lossless images are exact.
//   - GIF: Go gives transparent pixels the colour black, Pillow keeps their palette
//     colour; BMP and GIF images with a grey palette may be opened by Pillow as
//     mode "L" (bicubic resize) where this package keeps them as palette images.
//   - TIFF: golang.org/x/image/tiff (uncompressed, LZW, Deflate, PackBits, CCITT
//     G3/G4; not JPEG-compressed TIFF). The first image of the file, as Pillow
//     opens it; 16-bit samples keep their high byte.
//
// Only regular files are read (a symbolic link to one is fine): a named pipe
// would block the reader and a device such as /dev/zero never ends. The size
// the image's header declares is checked against MaxImagePixels before
// decoding, as Pillow's decompression-bomb check does, so that a small file
// declaring a huge image costs nothing; a decoder that panics on a crafted
// file gives an error.
//
// Errors name the file and wrap the reason (errors.Unwrap gives it without the
// path, for lists that name the file already).
func LoadImage(path string) (image.Image, error) {
	img, _, err := loadImage(path)
	return img, err
}

// MaxImagePixels is Pillow's decompression-bomb limit (2 × MAX_IMAGE_PIXELS,
// beyond which Image.open raises DecompressionBombError): larger images are
// refused before decoding, as the reference would fail on them, and so that
// a hostile file cannot exhaust memory.
const MaxImagePixels = 2 * 89_478_485

// maxImageFileBytes bounds an image file, which is read whole: room for the
// largest uncompressed image under MaxImagePixels (16-bit RGBA TIFF).
const maxImageFileBytes = 8 * MaxImagePixels

// imageError is an error of reading an image: it names the file, and
// unwraps to the reason alone.
type imageError struct {
	path   string
	reason error
}

func (e *imageError) Error() string { return "clip: " + e.path + ": " + e.reason.Error() }
func (e *imageError) Unwrap() error { return e.reason }

// loadImage is LoadImage that also returns the file's bytes (for EXIF).
func loadImage(path string) (image.Image, []byte, error) {
	data, err := regularfile.ReadFile(path, "an image file", maxImageFileBytes)
	if err != nil {
		// The reason without the path that os repeats.
		var pathErr *fs.PathError
		if errors.As(err, &pathErr) {
			err = pathErr.Err
		}
		return nil, nil, &imageError{path, err}
	}
	img, err := decodeImage(data)
	if err != nil {
		return nil, nil, &imageError{path, err}
	}
	return img, data, nil
}

// decodeImage decodes an image file's bytes as LoadImage describes, for
// files and for images received in memory alike: the size the header
// declares is checked against MaxImagePixels before any pixel is decoded,
// and a decoder that panics on a crafted file gives an error (the decoders
// are not supposed to; if one does, the image is refused like any other bad
// file rather than ending the program). Its errors are the reasons alone,
// without a name.
func decodeImage(data []byte) (img image.Image, err error) {
	defer func() {
		if r := recover(); r != nil {
			img, err = nil, fmt.Errorf("the decoder failed on this file (%v)", r)
		}
	}()
	if len(data) == 0 {
		return nil, errEmpty
	}
	cfg, format, err := image.DecodeConfig(bytes.NewReader(data))
	if err != nil {
		return nil, decodeReason(err)
	}
	if cfg.Width <= 0 || cfg.Height <= 0 {
		return nil, fmt.Errorf("%s image of %d×%d pixels has no pixels", format, cfg.Width, cfg.Height)
	}
	if int64(cfg.Width)*int64(cfg.Height) > MaxImagePixels {
		return nil, fmt.Errorf("%s image of %d×%d pixels exceeds the limit of %d pixels (Pillow's decompression-bomb limit)",
			format, cfg.Width, cfg.Height, MaxImagePixels)
	}
	img, format, err = image.Decode(bytes.NewReader(data))
	if err != nil {
		return nil, decodeReason(err)
	}
	switch format {
	case "webp":
		img = webpToRGB(img)
	case "png":
		img = pngAsPillow(img, data)
	}
	return img, nil
}

// errEmpty is the reason for an empty file.
var errEmpty = errors.New("empty file")

// decodeReason words a decoder's error for users.
func decodeReason(err error) error {
	switch {
	case errors.Is(err, image.ErrFormat):
		return errNotAnImage
	case errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF):
		return errTruncated
	}
	return err
}

// pngSignature starts every PNG file.
var pngSignature = []byte("\x89PNG\r\n\x1a\n")

// pngAsPillow adjusts a decoded grayscale or RGB PNG to the mode Pillow opens it in:
// 1-bit grayscale becomes a black-and-white palette image (Pillow's mode "1",
// resized with NEAREST), and an image with a tRNS colour key becomes opaque (Pillow
// keeps mode L or RGB and ignores the key, where Go's decoder adds an alpha channel).
// Other images are returned unchanged.
func pngAsPillow(img image.Image, data []byte) image.Image {
	// IHDR follows the 8-byte signature and the chunk's 8-byte header: width(4),
	// height(4), then bit depth at offset 24 and colour type at 25.
	if len(data) < 26 || !bytes.HasPrefix(data, pngSignature) {
		return img
	}
	bitDepth, colourType := data[24], data[25]
	if colourType != 0 && colourType != 2 { // neither grayscale nor RGB
		return img
	}
	switch m := img.(type) {
	case *image.Gray:
		if bitDepth != 1 {
			return img
		}
		p := image.NewPaletted(m.Rect, color.Palette{color.Gray{0}, color.Gray{255}})
		for i, v := range m.Pix {
			if v != 0 {
				p.Pix[i] = 1
			}
		}
		return p
	case *image.NRGBA:
		for i := 3; i < len(m.Pix); i += 4 {
			m.Pix[i] = 0xFF
		}
		return &image.RGBA{Pix: m.Pix, Stride: m.Stride, Rect: m.Rect}
	case *image.NRGBA64:
		for i := 6; i < len(m.Pix); i += 8 {
			m.Pix[i], m.Pix[i+1] = 0xFF, 0xFF
		}
		return &image.RGBA64{Pix: m.Pix, Stride: m.Stride, Rect: m.Rect}
	}
	return img
}

// webpToRGB converts a decoded lossy WebP (YCbCr, with or without alpha) to RGB the
// way libwebp does for Pillow (written from libwebp's upsampling.c and yuv.h; no
// libwebp output was at hand to compare bit for bit). Lossless images (already
// NRGBA) are returned unchanged.
func webpToRGB(img image.Image) image.Image {
	var yc *image.YCbCr
	var alpha *image.NYCbCrA
	switch m := img.(type) {
	case *image.YCbCr:
		yc = m
	case *image.NYCbCrA:
		yc, alpha = &m.YCbCr, m
	default:
		return img
	}
	if yc.SubsampleRatio != image.YCbCrSubsampleRatio420 {
		return img
	}
	if yc.Rect.Min != (image.Point{}) {
		return img // not a decoder's output
	}
	w, h := yc.Rect.Dx(), yc.Rect.Dy()
	out := image.NewNRGBA(yc.Rect)
	u, v := make([]uint8, w), make([]uint8, w)
	for y := range h {
		webpChromaRow(u, yc.Cb, yc, y)
		webpChromaRow(v, yc.Cr, yc, y)
		yRow := yc.Y[y*yc.YStride:]
		dst := out.Pix[y*out.Stride:]
		for x := range w {
			luma := int(yRow[x])
			px := dst[4*x : 4*x+4]
			px[0] = vp8Clip8(mulHi(luma, 19077) + mulHi(int(v[x]), 26149) - 14234)
			px[1] = vp8Clip8(mulHi(luma, 19077) - mulHi(int(u[x]), 6419) - mulHi(int(v[x]), 13320) + 8708)
			px[2] = vp8Clip8(mulHi(luma, 19077) + mulHi(int(u[x]), 33050) - 17685)
			px[3] = 255
			if alpha != nil {
				px[3] = alpha.A[y*alpha.AStride+x]
			}
		}
	}
	if alpha == nil {
		// Opaque: hand it over as RGB.
		return &image.RGBA{Pix: out.Pix, Stride: out.Stride, Rect: out.Rect}
	}
	return out
}

// webpChromaRow writes the chroma of output row y of a 4:2:0 image into dst [w], with
// libwebp's "fancy" upsampler: each output sample mixes its four nearest chroma
// samples 9:3:3:1, with libwebp's particular rounding.
func webpChromaRow(dst, plane []uint8, yc *image.YCbCr, y int) {
	w := len(dst)
	nearIdx, farIdx := chromaRows(y, (yc.Rect.Dy()+1)/2)
	near, far := plane[nearIdx*yc.CStride:], plane[farIdx*yc.CStride:]
	dst[0] = uint8((3*int(near[0]) + int(far[0]) + 2) >> 2)
	for i := 1; i <= (w-1)/2; i++ {
		n0, n1, f0, f1 := int(near[i-1]), int(near[i]), int(far[i-1]), int(far[i])
		avg := n0 + n1 + f0 + f1 + 8
		dst[2*i-1] = uint8((((avg + 2*(n1+f0)) >> 3) + n0) >> 1)
		dst[2*i] = uint8((((avg + 2*(n0+f1)) >> 3) + n1) >> 1)
	}
	if w%2 == 0 {
		last := (w - 1) / 2
		dst[w-1] = uint8((3*int(near[last]) + int(far[last]) + 2) >> 2)
	}
}

// chromaRows returns, for output row y of an image with ch vertically halved chroma
// rows, the nearer chroma row and the further one the triangle filter mixes in
// (above for even rows, below for odd rows, clamped at the edges).
func chromaRows(y, ch int) (near, far int) {
	near = y / 2
	far = near - 1
	if y%2 == 1 {
		far = near + 1
	}
	return near, min(max(far, 0), ch-1)
}

func mulHi(v, coeff int) int { return v * coeff >> 8 }

// vp8Clip8 is libwebp's VP8Clip8: drop 6 fractional bits and clamp.
func vp8Clip8(v int) uint8 {
	if v&^(256<<6-1) == 0 {
		return uint8(v >> 6)
	}
	if v < 0 {
		return 0
	}
	return 255
}

// jpegYCbCrToPixels converts JPEG YCbCr (and an optional alpha plane) to RGB as
// libjpeg-turbo does with its default settings: "fancy" triangle-filter chroma
// upsampling for 4:2:0, 4:2:2 and 4:4:0 (box replication for other ratios) and the
// fixed-point JFIF YCbCr->RGB conversion of jdcolor.c.
func jpegYCbCrToPixels(yc *image.YCbCr, alpha *image.NYCbCrA) *pixels {
	b := yc.Rect
	w, h := b.Dx(), b.Dy()
	mode := modeRGB
	if alpha != nil {
		mode = modeRGBA
	}
	p := newPixels(mode, w, h)
	ch := mode.channels()
	up := newJPEGUpsampler(yc)
	cb, cr := make([]uint8, w), make([]uint8, w)
	for y := range h {
		up.row(cb, yc.Cb, b.Min.Y+y)
		up.row(cr, yc.Cr, b.Min.Y+y)
		yRow := yc.Y[yc.YOffset(b.Min.X, b.Min.Y+y):]
		dst := p.pix[y*w*ch:]
		for x := range w {
			luma := int(yRow[x])
			px := dst[x*ch : (x+1)*ch]
			px[0] = clampUint8(luma + jpegCrToR[cr[x]])
			px[1] = clampUint8(luma + (jpegCbToG[cb[x]]+jpegCrToG[cr[x]])>>16)
			px[2] = clampUint8(luma + jpegCbToB[cb[x]])
			if alpha != nil {
				px[3] = alpha.A[alpha.AOffset(b.Min.X+x, b.Min.Y+y)]
			}
		}
	}
	return p
}

// libjpeg's YCbCr->RGB tables (jdcolor.c, 16-bit fixed point): R = Y + 1.402 Cr',
// G = Y - 0.34414 Cb' - 0.71414 Cr', B = Y + 1.772 Cb', with Cb' = Cb - 128.
var jpegCrToR, jpegCbToB, jpegCrToG, jpegCbToG = func() (crR, cbB, crG, cbG [256]int) {
	fix := func(x float64) int { return int(x*65536 + 0.5) }
	for i := range 256 {
		x := i - 128
		crR[i] = (fix(1.40200)*x + 1<<15) >> 16
		cbB[i] = (fix(1.77200)*x + 1<<15) >> 16
		crG[i] = -fix(0.71414) * x
		cbG[i] = -fix(0.34414)*x + 1<<15 // includes the rounding half
	}
	return crR, cbB, crG, cbG
}()

// jpegUpsampler reproduces libjpeg-turbo's chroma upsampling (jdsample.c) for the
// chroma planes of one image.
type jpegUpsampler struct {
	hf, vf         int // horizontal and vertical subsampling factors
	x0, w          int // output columns [x0, x0+w)
	cx0, cy0       int // chroma coordinates of the first plane sample
	cw, ch, stride int // chroma plane size and stride
	fancyH, fancyV bool
	colsum         []int
}

func newJPEGUpsampler(yc *image.YCbCr) *jpegUpsampler {
	hf, vf := 1, 1
	switch yc.SubsampleRatio {
	case image.YCbCrSubsampleRatio422:
		hf = 2
	case image.YCbCrSubsampleRatio420:
		hf, vf = 2, 2
	case image.YCbCrSubsampleRatio440:
		vf = 2
	case image.YCbCrSubsampleRatio411:
		hf = 4
	case image.YCbCrSubsampleRatio410:
		hf, vf = 4, 2
	}
	b := yc.Rect
	u := &jpegUpsampler{hf: hf, vf: vf, x0: b.Min.X, w: b.Dx(), cx0: b.Min.X / hf, cy0: b.Min.Y / vf, stride: yc.CStride}
	u.cw = (b.Max.X-1)/hf - u.cx0 + 1
	u.ch = (b.Max.Y-1)/vf - u.cy0 + 1
	// libjpeg-turbo's method choice: the triangle filter for 2x horizontal needs more
	// than two chroma columns; 2x2 without it is a plain box; 1x2 is always fancy.
	u.fancyH = hf == 2 && u.cw > 2
	u.fancyV = vf == 2 && (hf == 1 || u.fancyH)
	u.colsum = make([]int, u.cw)
	return u
}

// row writes the chroma of output row y (image coordinates) from plane into dst [w].
func (u *jpegUpsampler) row(dst, plane []uint8, y int) {
	cy := y/u.vf - u.cy0
	var shift, biasEven, biasOdd int
	if u.fancyV {
		// Column sums 3*nearer + further row, as in h2v2/h1v2_fancy_upsample.
		near, far := chromaRows(y-u.cy0*2, u.ch)
		nearRow, farRow := plane[near*u.stride:], plane[far*u.stride:]
		for c := range u.cw {
			u.colsum[c] = 3*int(nearRow[c]) + int(farRow[c])
		}
		if !u.fancyH { // h1v2: bias 1 when the further row is above, 2 when below
			bias := 1 + y%2
			for x := range u.w {
				dst[x] = uint8((u.colsum[(u.x0+x)/u.hf-u.cx0] + bias) >> 2)
			}
			return
		}
		shift, biasEven, biasOdd = 4, 8, 7
	} else {
		row := plane[cy*u.stride:]
		for c := range u.cw {
			u.colsum[c] = int(row[c])
		}
		if !u.fancyH { // box replication
			for x := range u.w {
				dst[x] = uint8(u.colsum[(u.x0+x)/u.hf-u.cx0])
			}
			return
		}
		shift, biasEven, biasOdd = 2, 1, 2
	}
	// Horizontal triangle filter (h2v1 / h2v2): 3/4 nearer + 1/4 further column, the
	// edge columns replicated, with libjpeg's alternating rounding biases.
	for x := range u.w {
		ax := u.x0 + x
		c := ax/2 - u.cx0
		if ax%2 == 0 {
			dst[x] = uint8((3*u.colsum[c] + u.colsum[max(c-1, 0)] + biasEven) >> shift)
		} else {
			dst[x] = uint8((3*u.colsum[c] + u.colsum[min(c+1, u.cw-1)] + biasOdd) >> shift)
		}
	}
}
