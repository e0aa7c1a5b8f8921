package clip

import (
	"image"
	"image/color"
)

// pixelMode is the Pillow image mode that decides how an image is resized and
// converted to RGB.
type pixelMode int

const (
	modeL    pixelMode = iota // 8-bit grey, resized as one channel
	modeRGB                   // 8-bit RGB
	modeRGBA                  // 8-bit RGB with straight alpha, resized premultiplied
	modeCMYK                  // 8-bit CMYK (0 = no ink), converted to RGB after resizing
	modeP                     // palette indices, resized with nearest neighbour
)

// channels returns the number of bytes per pixel of the mode.
func (m pixelMode) channels() int {
	switch m {
	case modeRGB:
		return 3
	case modeRGBA, modeCMYK:
		return 4
	}
	return 1
}

// pixels is an 8-bit interleaved image in a Pillow mode: pix is [h, w, channels].
type pixels struct {
	mode    pixelMode
	w, h    int
	pix     []uint8
	palette *[256][3]uint8 // modeP only
}

func newPixels(mode pixelMode, w, h int) *pixels {
	return &pixels{mode: mode, w: w, h: h, pix: make([]uint8, w*h*mode.channels())}
}

// toPixels converts a decoded Go image to the Pillow mode Pillow would have opened
// the same file in. 16-bit samples keep their high byte, as Pillow's 16-bit PNG
// unpackers do for colour images. (Pillow 9.4 opens 16-bit grayscale PNGs in mode
// "I" and saturates them at 255 in convert("RGB"); that defect is not reproduced.)
func toPixels(img image.Image) *pixels {
	b := img.Bounds()
	w, h := b.Dx(), b.Dy()
	switch src := img.(type) {
	case *image.Gray:
		p := newPixels(modeL, w, h)
		for y := range h {
			copy(p.pix[y*w:(y+1)*w], src.Pix[src.PixOffset(b.Min.X, b.Min.Y+y):])
		}
		return p
	case *image.Gray16:
		p := newPixels(modeL, w, h)
		for y := range h {
			row := src.Pix[src.PixOffset(b.Min.X, b.Min.Y+y):]
			for x := range w {
				p.pix[y*w+x] = row[2*x]
			}
		}
		return p
	case *image.RGBA:
		if src.Opaque() {
			return interleaved(modeRGB, w, h, 4, 1, func(y int) []uint8 { return src.Pix[src.PixOffset(b.Min.X, b.Min.Y+y):] })
		}
	case *image.NRGBA:
		return interleaved(modeRGBA, w, h, 4, 1, func(y int) []uint8 { return src.Pix[src.PixOffset(b.Min.X, b.Min.Y+y):] })
	case *image.RGBA64:
		if src.Opaque() {
			return interleaved(modeRGB, w, h, 8, 2, func(y int) []uint8 { return src.Pix[src.PixOffset(b.Min.X, b.Min.Y+y):] })
		}
	case *image.NRGBA64:
		return interleaved(modeRGBA, w, h, 8, 2, func(y int) []uint8 { return src.Pix[src.PixOffset(b.Min.X, b.Min.Y+y):] })
	case *image.CMYK:
		return interleaved(modeCMYK, w, h, 4, 1, func(y int) []uint8 { return src.Pix[src.PixOffset(b.Min.X, b.Min.Y+y):] })
	case *image.Paletted:
		p := newPixels(modeP, w, h)
		p.palette = new([256][3]uint8)
		for i, c := range src.Palette {
			if i < 256 {
				// Pillow's P -> RGB lookup ignores the palette's transparency.
				nc := color.NRGBAModel.Convert(c).(color.NRGBA)
				p.palette[i] = [3]uint8{nc.R, nc.G, nc.B}
			}
		}
		for y := range h {
			copy(p.pix[y*w:(y+1)*w], src.Pix[src.PixOffset(b.Min.X, b.Min.Y+y):])
		}
		return p
	case *image.YCbCr:
		return jpegYCbCrToPixels(src, nil)
	case *image.NYCbCrA:
		return jpegYCbCrToPixels(&src.YCbCr, src)
	}
	// Anything else, including premultiplied images with transparency: straight RGBA.
	p := newPixels(modeRGBA, w, h)
	for y := range h {
		for x := range w {
			c := color.NRGBAModel.Convert(img.At(b.Min.X+x, b.Min.Y+y)).(color.NRGBA)
			px := p.pix[4*(y*w+x) : 4*(y*w+x)+4]
			px[0], px[1], px[2], px[3] = c.R, c.G, c.B, c.A
		}
	}
	return p
}

// interleaved copies the leading mode.channels() samples of every source pixel,
// which has srcStride bytes of which each sample's most significant byte is kept
// (sampleBytes is 2 for big-endian 16-bit samples).
func interleaved(mode pixelMode, w, h, srcStride, sampleBytes int, row func(y int) []uint8) *pixels {
	p := newPixels(mode, w, h)
	ch := mode.channels()
	for y := range h {
		src := row(y)
		dst := p.pix[y*w*ch:]
		for x := range w {
			for c := range ch {
				dst[x*ch+c] = src[x*srcStride+c*sampleBytes]
			}
		}
	}
	return p
}

// crop returns the pixels inside r, which must lie within the image.
func (p *pixels) crop(r image.Rectangle) *pixels {
	ch := p.mode.channels()
	out := &pixels{mode: p.mode, w: r.Dx(), h: r.Dy(), palette: p.palette}
	out.pix = make([]uint8, out.w*out.h*ch)
	for y := range out.h {
		start := ((r.Min.Y+y)*p.w + r.Min.X) * ch
		copy(out.pix[y*out.w*ch:(y+1)*out.w*ch], p.pix[start:])
	}
	return out
}

// rgb returns pixel i converted to RGB as Pillow's convert("RGB") does: grey is
// replicated, alpha is dropped, palette indices are looked up and CMYK uses
// Pillow's cmyk2rgb.
func (p *pixels) rgb(i int) [3]uint8 {
	switch p.mode {
	case modeL:
		v := p.pix[i]
		return [3]uint8{v, v, v}
	case modeRGB:
		return [3]uint8(p.pix[3*i : 3*i+3])
	case modeRGBA:
		return [3]uint8(p.pix[4*i : 4*i+3])
	case modeCMYK:
		px := p.pix[4*i : 4*i+4]
		nk := 255 - int(px[3])
		var out [3]uint8
		for c := range 3 {
			out[c] = clampUint8(nk - mulDiv255(int(px[c]), nk))
		}
		return out
	default: // modeP
		return p.palette[p.pix[i]]
	}
}

// mulDiv255 is Pillow's MULDIV255: a*b/255 rounded, for a, b in 0..255.
func mulDiv255(a, b int) int {
	t := a*b + 128
	return ((t >> 8) + t) >> 8
}

func clampUint8(v int) uint8 {
	return uint8(min(max(v, 0), 255))
}

// oriented returns the image transformed for EXIF orientation o (1..8) the way
// PIL.ImageOps.exif_transpose does; other values return p unchanged.
func (p *pixels) oriented(o int) *pixels {
	if o < 2 || o > 8 {
		return p
	}
	w, h := p.w, p.h
	swap := o >= 5 // orientations 5..8 exchange width and height
	out := &pixels{mode: p.mode, w: w, h: h, palette: p.palette}
	if swap {
		out.w, out.h = h, w
	}
	ch := p.mode.channels()
	out.pix = make([]uint8, len(p.pix))
	for y := range out.h {
		for x := range out.w {
			var sx, sy int
			switch o {
			case 2: // mirror horizontally
				sx, sy = w-1-x, y
			case 3: // rotate 180°
				sx, sy = w-1-x, h-1-y
			case 4: // mirror vertically
				sx, sy = x, h-1-y
			case 5: // transpose
				sx, sy = y, x
			case 6: // rotate 90° clockwise
				sx, sy = y, h-1-x
			case 7: // transverse
				sx, sy = w-1-y, h-1-x
			case 8: // rotate 90° counter-clockwise
				sx, sy = w-1-y, x
			}
			copy(out.pix[(y*out.w+x)*ch:(y*out.w+x+1)*ch], p.pix[(sy*w+sx)*ch:])
		}
	}
	return out
}
