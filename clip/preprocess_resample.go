package clip

import (
	"image"
	"math"
)

// This file reproduces Pillow 9.4's Image.resize (libImaging/Resample.c and the
// nearest-neighbour ImagingScaleAffine of Geometry.c) for 8-bit images, restricted
// to the output pixels inside a crop window. Every output pixel of Pillow's
// separable filter depends only on its own row and column coefficients, so
// computing just the window gives the same bytes as resizing fully and cropping.
//
// Floating-point expressions that Pillow evaluates as separate C operations are
// written with explicit float64 conversions around products: Go may otherwise fuse
// a*b+c into one FMA instruction (on arm64, or amd64 with GOAMD64=v3), which rounds
// differently and can move a fixed-point coefficient by one unit.

// precisionBits is Pillow's PRECISION_BITS: filter coefficients are fixed point with
// 22 fractional bits, leaving 8 bits for the value and 2 for overshoot in int32.
const precisionBits = 32 - 8 - 2

// resizeWindow returns the pixels inside window of src resized to outW x outH with
// the filter Pillow uses for the mode: NEAREST for palette images, BICUBIC
// otherwise, on premultiplied alpha for RGBA.
func resizeWindow(src *pixels, outW, outH int, window image.Rectangle) *pixels {
	switch src.mode {
	case modeP:
		return nearestWindow(src, outW, outH, window)
	case modeRGBA:
		out := bicubicWindow(premultiplied(src), outW, outH, window)
		unpremultiply(out)
		return out
	}
	return bicubicWindow(src, outW, outH, window)
}

// bicubicWindow is Pillow's two-pass resize: a horizontal pass into an 8-bit image
// holding the source rows the vertical pass needs, then the vertical pass. A pass
// is skipped when its dimension does not change, as in Pillow.
func bicubicWindow(src *pixels, outW, outH int, window image.Rectangle) *pixels {
	ch := src.mode.channels()
	n, m := window.Dx(), window.Dy()
	needHorizontal, needVertical := outW != src.w, outH != src.h

	// Source rows [y0, y1) feed the window's output rows.
	y0, y1 := window.Min.Y, window.Max.Y
	var vertical taps
	if needVertical {
		vertical = bicubicTaps(src.h, outH, window.Min.Y, window.Max.Y)
		last := len(vertical.first) - 1
		y0, y1 = vertical.first[0], vertical.first[last]+len(vertical.weights[last])
	}

	var tmp *pixels // [y1-y0, n, ch]
	if needHorizontal {
		horizontal := bicubicTaps(src.w, outW, window.Min.X, window.Max.X)
		tmp = newPixels(src.mode, n, y1-y0)
		for y := y0; y < y1; y++ {
			row := src.pix[y*src.w*ch : (y+1)*src.w*ch]
			dst := tmp.pix[(y-y0)*n*ch : (y-y0+1)*n*ch]
			for x, k := range horizontal.weights {
				in := row[horizontal.first[x]*ch : (horizontal.first[x]+len(k))*ch]
				acc := [4]int32{1 << (precisionBits - 1), 1 << (precisionBits - 1), 1 << (precisionBits - 1), 1 << (precisionBits - 1)}
				for i, w := range k {
					for c, v := range in[i*ch : i*ch+ch] {
						acc[c] += int32(v) * w
					}
				}
				for c := range ch {
					dst[x*ch+c] = clip8(acc[c])
				}
			}
		}
	} else {
		tmp = src.crop(image.Rect(window.Min.X, y0, window.Max.X, y1))
	}
	if !needVertical {
		return tmp
	}

	out := newPixels(src.mode, n, m)
	rowLen := n * ch
	acc := make([]int32, rowLen)
	for y, k := range vertical.weights {
		for i := range acc {
			acc[i] = 1 << (precisionBits - 1)
		}
		base := vertical.first[y] - y0
		for i, w := range k {
			for j, v := range tmp.pix[(base+i)*rowLen : (base+i+1)*rowLen] {
				acc[j] += int32(v) * w
			}
		}
		dst := out.pix[y*rowLen : (y+1)*rowLen]
		for j, a := range acc {
			dst[j] = clip8(a)
		}
	}
	return out
}

// clip8 is Pillow's clip8: the fixed-point sum shifted down (flooring) and clamped.
func clip8(acc int32) uint8 {
	return clampUint8(int(acc >> precisionBits))
}

// taps holds, for a run of output positions along one axis, the first input index
// and the fixed-point weights of the inputs that contribute.
type taps struct {
	first   []int
	weights [][]int32
}

// bicubicTaps is Pillow's precompute_coeffs with the bicubic filter followed by
// normalize_coeffs_8bpc, for output positions lo..hi-1 of a resize from inSize to
// outSize samples. When shrinking, the filter is stretched by the scale factor.
func bicubicTaps(inSize, outSize, lo, hi int) taps {
	const support = 2.0 // bicubic filter support
	scale := float64(inSize) / float64(outSize)
	filterScale := max(scale, 1)
	scaledSupport := support * filterScale
	invFilterScale := 1.0 / filterScale
	t := taps{first: make([]int, hi-lo), weights: make([][]int32, hi-lo)}
	coeffs := make([]float64, 0, int(math.Ceil(scaledSupport))*2+1)
	for i := range hi - lo {
		center := (float64(lo+i) + 0.5) * scale
		xmin := max(int(center-scaledSupport+0.5), 0)
		xmax := min(int(center+scaledSupport+0.5), inSize)
		coeffs = coeffs[:0]
		sum := 0.0
		for x := xmin; x < xmax; x++ {
			w := bicubic((float64(x) - center + 0.5) * invFilterScale)
			coeffs = append(coeffs, w)
			sum += w
		}
		fixed := make([]int32, len(coeffs))
		for j, w := range coeffs {
			if sum != 0 {
				w /= sum
			}
			scaled := float64(w * (1 << precisionBits))
			if scaled < 0 {
				fixed[j] = int32(-0.5 + scaled)
			} else {
				fixed[j] = int32(0.5 + scaled)
			}
		}
		t.first[i], t.weights[i] = xmin, fixed
	}
	return t
}

// bicubic is Keys' cubic convolution kernel with a = -0.5, as in Pillow.
func bicubic(x float64) float64 {
	const a = -0.5
	x = math.Abs(x)
	switch {
	case x < 1:
		return float64(float64(float64((a+2)*x)-(a+3))*x*x) + 1
	case x < 2:
		return (float64(float64(float64(float64((x-5)*x)+8)*x)) - 4) * a
	}
	return 0
}

// nearestWindow is Pillow's NEAREST resize (used for palette images) restricted to
// window.
func nearestWindow(src *pixels, outW, outH int, window image.Rectangle) *pixels {
	xs := nearestIndices(src.w, outW)[window.Min.X:window.Max.X]
	ys := nearestIndices(src.h, outH)[window.Min.Y:window.Max.Y]
	out := &pixels{mode: src.mode, w: len(xs), h: len(ys), pix: make([]uint8, len(xs)*len(ys)), palette: src.palette}
	for y, sy := range ys {
		for x, sx := range xs {
			if sx >= 0 && sy >= 0 {
				out.pix[y*out.w+x] = src.pix[sy*src.w+sx]
			}
		}
	}
	return out
}

// nearestIndices returns, per output position, the source index Pillow's
// ImagingScaleAffine samples: the position starts at scale/2 and advances by scale in
// float64, truncated. -1 marks a position outside the source, which Pillow fills
// with zero.
func nearestIndices(inSize, outSize int) []int {
	scale := float64(inSize) / float64(outSize)
	pos := float64(scale * 0.5)
	idx := make([]int, outSize)
	for i := range idx {
		idx[i] = -1
		if pos >= 0 && int(pos) < inSize {
			idx[i] = int(pos)
		}
		pos += scale
	}
	return idx
}

// premultiplied is Pillow's RGBA -> RGBa conversion.
func premultiplied(p *pixels) *pixels {
	out := &pixels{mode: p.mode, w: p.w, h: p.h, pix: make([]uint8, len(p.pix))}
	for i := 0; i < len(p.pix); i += 4 {
		a := int(p.pix[i+3])
		for c := range 3 {
			out.pix[i+c] = uint8(mulDiv255(int(p.pix[i+c]), a))
		}
		out.pix[i+3] = p.pix[i+3]
	}
	return out
}

// unpremultiply is Pillow's RGBa -> RGBA conversion, in place.
func unpremultiply(p *pixels) {
	for i := 0; i < len(p.pix); i += 4 {
		a := int(p.pix[i+3])
		if a == 0 || a == 255 {
			continue
		}
		for c := range 3 {
			p.pix[i+c] = clampUint8(255 * int(p.pix[i+c]) / a)
		}
	}
}
