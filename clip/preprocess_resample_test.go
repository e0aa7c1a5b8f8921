package clip

import (
	"image"
	"image/color"
	"math"
	"math/rand/v2"
	"testing"
)

// keys is the cubic convolution kernel of Keys (1981) with a = -0.5, written
// independently of bicubic: 1.5|x|^3 - 2.5|x|^2 + 1 on [0,1), -0.5|x|^3 + 2.5|x|^2 - 4|x| + 2 on [1,2).
func keys(x float64) float64 {
	x = math.Abs(x)
	switch {
	case x < 1:
		return 1.5*x*x*x - 2.5*x*x + 1
	case x < 2:
		return -0.5*x*x*x + 2.5*x*x - 4*x + 2
	}
	return 0
}

// referenceWeights are the normalised float filter weights of output position o:
// the kernel, stretched by the scale when shrinking, evaluated at the distance from
// the output pixel centre (mapped into the input) to each input pixel centre.
func referenceWeights(inSize, outSize, o int) (first int, w []float64) {
	scale := float64(inSize) / float64(outSize)
	stretch := math.Max(scale, 1)
	center := (float64(o) + 0.5) * scale
	radius := 2 * stretch
	lo := max(int(math.Floor(center-radius+0.5)), 0)
	hi := min(int(math.Floor(center+radius+0.5)), inSize)
	sum := 0.0
	for x := lo; x < hi; x++ {
		v := keys((float64(x) + 0.5 - center) / stretch)
		w = append(w, v)
		sum += v
	}
	for i := range w {
		w[i] /= sum
	}
	return lo, w
}

func TestBicubicTapsAgainstReference(t *testing.T) {
	for _, c := range []struct{ in, out int }{{517, 297}, {389, 224}, {181, 224}, {97, 325}, {1000, 32}, {10, 10}, {3, 7}} {
		taps := bicubicTaps(c.in, c.out, 0, c.out)
		for o := range c.out {
			first, want := referenceWeights(c.in, c.out, o)
			got := taps.weights[o]
			// Trailing zero weights may be dropped by one side.
			for len(want) > len(got) && want[len(want)-1] == 0 {
				want = want[:len(want)-1]
			}
			if taps.first[o] != first || len(got) != len(want) {
				t.Fatalf("%d->%d output %d: taps start %d n %d, want %d n %d", c.in, c.out, o, taps.first[o], len(got), first, len(want))
			}
			for i := range got {
				if d := math.Abs(float64(got[i])/(1<<precisionBits) - want[i]); d > 1e-6 {
					t.Fatalf("%d->%d output %d tap %d: %v, want %v", c.in, c.out, o, i, float64(got[i])/(1<<precisionBits), want[i])
				}
			}
		}
	}
}

func randomPixels(mode pixelMode, w, h int, seed uint64) *pixels {
	rng := rand.New(rand.NewPCG(seed, 5))
	p := newPixels(mode, w, h)
	for i := range p.pix {
		p.pix[i] = uint8(rng.IntN(256))
	}
	return p
}

// referenceResize is a float64 version of the documented algorithm: horizontal pass,
// round and clip to 8 bits, vertical pass, round and clip.
func referenceResize(src *pixels, outW, outH int) *pixels {
	ch := src.mode.channels()
	pass := func(in []float64, inW, inH, outW, outH int, horizontal bool) []float64 {
		out := make([]float64, outW*outH*ch)
		for y := range outH {
			for x := range outW {
				for c := range ch {
					o, n := x, inW
					if !horizontal {
						o, n = y, inH
					}
					first, w := referenceWeights(n, map[bool]int{true: outW, false: outH}[horizontal], o)
					sum := 0.0
					for i, wi := range w {
						sx, sy := first+i, y
						if !horizontal {
							sx, sy = x, first+i
						}
						sum += wi * in[(sy*inW+sx)*ch+c]
					}
					out[(y*outW+x)*ch+c] = math.Min(math.Max(math.Floor(sum+0.5), 0), 255)
				}
			}
		}
		return out
	}
	in := make([]float64, len(src.pix))
	for i, v := range src.pix {
		in[i] = float64(v)
	}
	tmp := pass(in, src.w, src.h, outW, src.h, true)
	res := pass(tmp, outW, src.h, outW, outH, false)
	out := newPixels(src.mode, outW, outH)
	for i, v := range res {
		out.pix[i] = uint8(v)
	}
	return out
}

func TestBicubicResizeAgainstReference(t *testing.T) {
	for i, c := range []struct {
		mode       pixelMode
		w, h       int
		outW, outH int
	}{
		{modeRGB, 41, 23, 17, 9},
		{modeL, 13, 11, 29, 31},
		{modeCMYK, 19, 30, 10, 40},
	} {
		src := randomPixels(c.mode, c.w, c.h, uint64(i))
		got := resizeWindow(src, c.outW, c.outH, image.Rect(0, 0, c.outW, c.outH))
		want := referenceResize(src, c.outW, c.outH)
		worst := 0
		for j := range got.pix {
			worst = max(worst, int(got.pix[j])-int(want.pix[j]), int(want.pix[j])-int(got.pix[j]))
		}
		// Fixed-point coefficients can flip a rounding in either pass.
		if worst > 2 {
			t.Errorf("%dx%d -> %dx%d mode %d: differs from the float reference by %d levels", c.w, c.h, c.outW, c.outH, c.mode, worst)
		}
	}
}

// TestResizeWindowEqualsResizeThenCrop checks that resizing only the crop window is
// the same as resizing everything and cropping, for every filter path.
func TestResizeWindowEqualsResizeThenCrop(t *testing.T) {
	for i, mode := range []pixelMode{modeL, modeRGB, modeRGBA, modeCMYK, modeP} {
		src := randomPixels(mode, 53, 37, uint64(10+i))
		if mode == modeP {
			src.palette = new([256][3]uint8)
		}
		for _, size := range [][2]int{{30, 21}, {80, 60}, {53, 20}, {20, 37}} {
			full := resizeWindow(src, size[0], size[1], image.Rect(0, 0, size[0], size[1]))
			window := image.Rect(3, 2, size[0]-4, size[1]-1)
			got := resizeWindow(src, size[0], size[1], window)
			want := full.crop(window)
			for j := range want.pix {
				if got.pix[j] != want.pix[j] {
					t.Fatalf("mode %d size %v: window byte %d = %d, full resize has %d", mode, size, j, got.pix[j], want.pix[j])
				}
			}
		}
	}
}

func TestNearestIndices(t *testing.T) {
	for _, c := range [][2]int{{150, 280}, {120, 224}, {150, 40}, {7, 7}} {
		for o, got := range nearestIndices(c[0], c[1]) {
			if want := int(math.Floor((float64(o) + 0.5) * float64(c[0]) / float64(c[1]))); got != want {
				t.Errorf("%d -> %d: output %d samples %d, want %d", c[0], c[1], o, got, want)
			}
		}
	}
}

// TestAlphaDroppedNotComposited: Pillow's convert("RGB") drops alpha, so transparent
// pixels keep their colour when the image is not resized; a resize works on
// premultiplied colour, so an area that is transparent throughout becomes black.
func TestAlphaDroppedNotComposited(t *testing.T) {
	img := image.NewNRGBA(image.Rect(0, 0, 8, 8))
	for i := 0; i < len(img.Pix); i += 4 {
		img.Pix[i], img.Pix[i+1], img.Pix[i+2], img.Pix[i+3] = 255, 40, 0, 0
	}
	same, err := Preprocess(img, 8)
	if err != nil {
		t.Fatal(err)
	}
	resized, err := Preprocess(img, 4)
	if err != nil {
		t.Fatal(err)
	}
	for c, v := range []uint8{255, 40, 0} {
		if got := same[c*64]; got != normalizeLUT[c][v] {
			t.Errorf("unresized channel %d = %v, want %v (colour kept)", c, got, normalizeLUT[c][v])
		}
		if got := resized[c*16]; got != normalizeLUT[c][0] {
			t.Errorf("resized channel %d = %v, want %v (black)", c, got, normalizeLUT[c][0])
		}
	}

	// Half-transparent colour survives the premultiply round trip up to rounding.
	for i := 0; i < len(img.Pix); i += 4 {
		img.Pix[i+3] = 128
	}
	resized, err = Preprocess(img, 4)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := resized[0], normalizeLUT[0][255]; math.Abs(float64(got-want)) > 1.5*oneLevel {
		t.Errorf("half-transparent red after resize = %v, want about %v", got, want)
	}
}

// TestGenericImagePath feeds an image type the package does not know.
func TestGenericImagePath(t *testing.T) {
	src := syntheticPhoto(30, 20)
	want, err := Preprocess(src, 16)
	if err != nil {
		t.Fatal(err)
	}
	got, err := Preprocess(struct{ image.Image }{src}, 16)
	if err != nil {
		t.Fatal(err)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("value %d = %v, want %v", i, got[i], want[i])
		}
	}
	// Transparent pixels of a premultiplied image have no colour to keep.
	rgba := image.NewRGBA(image.Rect(0, 0, 2, 2))
	rgba.SetRGBA(0, 0, color.RGBA{R: 100, A: 128})
	px := toPixels(rgba)
	if px.mode != modeRGBA || px.pix[0] != 199 || px.pix[3] != 128 {
		t.Errorf("premultiplied RGBA converted to mode %d pixel %v, want straight RGBA (199,0,0,128)", px.mode, px.pix[:4])
	}
}
