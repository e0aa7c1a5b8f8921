package clip

import (
	"math"
	"testing"
)

// naiveConv is a direct float64 convolution of image b of x, [out][oy][ox],
// and the sums of the absolute values of its terms (bias included), which
// bound the float32 rounding of a fast method.
func naiveConv(c conv2d, x featureMap, b int) (out, magnitude [][][]float64) {
	k := c.kernel
	in := c.w.Cols / (k * k)
	ho := (x.height+2*c.padding-k)/c.stride + 1
	wo := (x.width+2*c.padding-k)/c.stride + 1
	out, magnitude = make([][][]float64, c.w.Rows), make([][][]float64, c.w.Rows)
	for o := range out {
		out[o], magnitude[o] = make([][]float64, ho), make([][]float64, ho)
		for oy := range ho {
			out[o][oy], magnitude[o][oy] = make([]float64, wo), make([]float64, wo)
			for ox := range wo {
				sum, abs := float64(c.b[o]), math.Abs(float64(c.b[o]))
				for ch := range in {
					plane := x.plane(ch, b)
					for ky := range k {
						for kx := range k {
							iy, ix := oy*c.stride+ky-c.padding, ox*c.stride+kx-c.padding
							if iy >= 0 && iy < x.height && ix >= 0 && ix < x.width {
								term := float64(c.w.At(o, (ch*k+ky)*k+kx)) * float64(plane[iy*x.width+ix])
								sum += term
								abs += math.Abs(term)
							}
						}
					}
				}
				out[o][oy][ox], magnitude[o][oy][ox] = sum, abs
			}
		}
	}
	return out, magnitude
}

// TestConvAgainstNaive checks apply, with and without ReLU, and applyOnto
// (the residual sum: onto an existing map, then the ReLU) against a direct
// convolution, on odd sizes that exercise the padding and
// the floor; and the Winograd path, on maps that are not a whole number of
// tiles, in one chunk and in chunks of one, two and three tile rows.
// Outputs go back to one workspace after each case, so later cases run on
// reused storage holding stale values.
func TestConvAgainstNaive(t *testing.T) {
	rng := newTestRand(3)
	var ws workspace
	for _, tc := range []struct {
		kernel, stride, padding, out int
		height, width                int
		winogradBudget               int // 0: im2col and GEMM
	}{
		{3, 2, 1, 6, 7, 5, 0}, {3, 1, 1, 5, 7, 5, 0}, {1, 1, 0, 8, 7, 5, 0},
		{3, 1, 1, 5, 10, 9, 1 << 20}, {3, 1, 1, 6, 9, 13, 1}, {3, 1, 1, 3, 11, 8, 2 * winogradPoints * 6 * 2},
		{3, 1, 1, 4, 8, 8, 3 * winogradPoints * 6 * 2},
	} {
		const batch, in = 3, 4
		x := featureMap{m: randomMatrix(rng, in, batch*tc.height*tc.width), batch: batch, height: tc.height, width: tc.width}
		c := conv2d{w: randomMatrix(rng, tc.out, in*tc.kernel*tc.kernel), b: randomMatrix(rng, 1, tc.out).Data,
			kernel: tc.kernel, stride: tc.stride, padding: tc.padding}
		direct := c // keeps the untransformed filters for naiveConv
		modes := []string{"apply", "apply+relu", "accumulate"}
		if tc.winogradBudget > 0 {
			c.useWinogradFor(min(tc.height, tc.width))
			if c.winograd == nil {
				t.Fatalf("%+v: the Winograd transform is not used", tc)
			}
			modes = []string{"winograd", "winograd+relu"}
		}
		ho, wo := c.outputSize(tc.height, tc.width)
		base := randomMatrix(rng, tc.out, batch*ho*wo)
		for _, mode := range modes {
			var got featureMap
			switch mode {
			case "accumulate":
				got = ws.featureMap(tc.out, batch, ho, wo)
				copy(got.m.Data, base.Data)
				got = c.applyOnto(got, x, c.b, &ws)
			case "winograd", "winograd+relu":
				got = c.applyWinogradChunked(x, mode == "winograd+relu", &ws, tc.winogradBudget)
			default:
				got = c.apply(x, mode == "apply+relu", &ws)
			}
			for b := range batch {
				want, magnitude := naiveConv(direct, x, b)
				if got.height != len(want[0]) || got.width != len(want[0][0]) {
					t.Fatalf("%+v: output %dx%d, want %dx%d", tc, got.height, got.width, len(want[0]), len(want[0][0]))
				}
				for o := range want {
					plane := got.plane(o, b)
					basePlane := base.Row(o)[b*ho*wo:]
					for oy := range want[o] {
						for ox, w := range want[o][oy] {
							switch mode {
							case "apply+relu", "winograd+relu":
								w = math.Max(w, 0)
							case "accumulate":
								w = math.Max(w+float64(basePlane[oy*wo+ox]), 0)
							}
							// Winograd's transforms add and subtract terms of the
							// size of the whole sum's terms: its rounding grows with
							// their magnitude, not with the result's.
							tol := 1e-5
							if tc.winogradBudget > 0 {
								tol = 4e-6 * magnitude[o][oy][ox]
							}
							if g := float64(plane[oy*got.width+ox]); math.Abs(g-w) > tol {
								t.Fatalf("%+v %s image %d out %d (%d,%d): got %g, want %g", tc, mode, b, o, oy, ox, g, w)
							}
						}
					}
				}
			}
			ws.release(got)
		}
	}
}

// TestWorkspaceReusesConsumedMaps checks that a feature map's storage is
// handed out again only once every reader has consumed it.
func TestWorkspaceReusesConsumedMaps(t *testing.T) {
	for _, tc := range []struct {
		name     string
		shares   int  // share calls before the releases
		releases int  // release calls
		reused   bool // whether the next map of the same size gets f's storage
	}{
		{"live", 0, 0, false},
		{"consumed", 0, 1, true},
		{"shared, consumed once", 1, 1, false},
		{"shared, consumed twice", 1, 2, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var ws workspace
			f := ws.featureMap(2, 1, 3, 3)
			for range tc.shares {
				f = ws.share(f)
			}
			for range tc.releases {
				ws.release(f)
			}
			g := ws.featureMap(2, 1, 3, 3)
			if reused := &g.m.Data[0] == &f.m.Data[0]; reused != tc.reused {
				t.Errorf("storage reused = %v, want %v", reused, tc.reused)
			}
		})
	}
}

func TestAvgPoolDropsPartialBlocks(t *testing.T) {
	rng := newTestRand(4)
	const batch, height, width = 2, 7, 5
	x := featureMap{m: randomMatrix(rng, 3, batch*height*width), batch: batch, height: height, width: width}
	got := avgPool(x, 2, new(workspace))
	if got.height != 3 || got.width != 2 {
		t.Fatalf("output %dx%d, want 3x2", got.height, got.width)
	}
	for c := range 3 {
		for b := range batch {
			src, dst := x.plane(c, b), got.plane(c, b)
			for oy := range 3 {
				for ox := range 2 {
					at := func(y, x int) float64 { return float64(src[y*width+x]) }
					want := (at(2*oy, 2*ox) + at(2*oy, 2*ox+1) + at(2*oy+1, 2*ox) + at(2*oy+1, 2*ox+1)) / 4
					if g := float64(dst[oy*2+ox]); math.Abs(g-want) > 1e-6 {
						t.Fatalf("channel %d image %d (%d,%d): got %g, want %g", c, b, oy, ox, g, want)
					}
				}
			}
		}
	}
}
