package tensor

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"testing"
)

// rowKernel is a kernel under test with its float64 reference, applied to
// one row (element-wise kernels ignore the row structure), and the largest
// acceptable |got - want| for an output.
type rowKernel struct {
	name  string
	apply func(dst, a *Matrix)
	ref   func(row []float64) []float64
	tol   func(want, x float64) float64
	scale float64 // inputs are uniform in [-scale, scale)
}

// elementwise turns a scalar function into a row reference.
func elementwise(f func(x float64) float64) func(row []float64) []float64 {
	return func(row []float64) []float64 {
		out := make([]float64, len(row))
		for i, x := range row {
			out[i] = f(x)
		}
		return out
	}
}

// ulps allows n float32 units in the last place of want, relative.
func ulps(n float64) func(want, x float64) float64 {
	return func(want, _ float64) float64 { return n * math.Abs(want) / (1 << 23) }
}

func sigmoid64(x float64) float64 { return 1 / (1 + math.Exp(-x)) }

var testBias = func() []float32 {
	b := make([]float32, 1000)
	for i := range b {
		b[i] = float32(math.Sin(float64(i)))
	}
	return b
}()

var (
	testGamma = func() []float32 {
		g := make([]float32, 1000)
		for i := range g {
			g[i] = 1 + 0.5*float32(math.Cos(float64(i)))
		}
		return g
	}()
	testBeta = testBias
)

func rowKernels() []rowKernel {
	return []rowKernel{
		{name: "Scale", scale: 10, apply: func(d, a *Matrix) { Scale(d, a, -0.3) },
			ref: elementwise(func(x float64) float64 { return float64(float32(-0.3)) * x }), tol: ulps(0.5)},
		{name: "ReLU", scale: 10, apply: ReLU,
			ref: elementwise(func(x float64) float64 { return math.Max(x, 0) }), tol: ulps(0)},
		{name: "Exp", scale: 80, apply: Exp, ref: elementwise(math.Exp), tol: ulps(1e-7 * (1 << 23))},
		{name: "Sigmoid", scale: 60, apply: Sigmoid, ref: elementwise(sigmoid64), tol: ulps(2.5e-7 * (1 << 23))},
		{name: "QuickGELU", scale: 40, apply: QuickGELU,
			ref: elementwise(func(x float64) float64 { return x * sigmoid64(float64(float32(1.702))*x) }),
			// exp's argument carries the float32 rounding of 1.702·x.
			tol: func(want, x float64) float64 { return (3e-7 + 1.2e-7*math.Abs(x)) * math.Abs(want) }},
		{name: "GELU", scale: 20, apply: GELU,
			ref: elementwise(func(x float64) float64 { return 0.5 * x * math.Erfc(-x/math.Sqrt2) }),
			// Absolute accuracy around 0, relative in the negative tail.
			tol: func(want, x float64) float64 { return 2e-7*math.Max(1, math.Abs(x)) + 5e-5*math.Abs(want) }},
		{name: "AddBias", scale: 10, apply: func(d, a *Matrix) { AddBias(d, a, testBias[:a.Cols]) },
			ref: func(row []float64) []float64 {
				out := make([]float64, len(row))
				for j, x := range row {
					out[j] = x + float64(testBias[j])
				}
				return out
			}, tol: ulps(0.5)},
		{name: "Softmax", scale: 30, apply: Softmax, ref: softmax64,
			// exp's argument x - max is rounded to float32.
			tol: func(want, x float64) float64 { return 4e-7*want + 1e-12 }},
		{name: "LogSoftmax", scale: 30, apply: LogSoftmax,
			ref: func(row []float64) []float64 {
				out := softmax64(row)
				for j := range out {
					out[j] = math.Log(out[j])
				}
				return out
			}, tol: func(want, _ float64) float64 { return 1e-6 * (1 + math.Abs(want)) }},
		{name: "LayerNorm", scale: 5, apply: func(d, a *Matrix) { LayerNorm(d, a, testGamma[:a.Cols], testBeta[:a.Cols], 1e-5) },
			ref: func(row []float64) []float64 {
				var mean, variance float64
				for _, x := range row {
					mean += x
				}
				mean /= float64(len(row))
				for _, x := range row {
					variance += (x - mean) * (x - mean)
				}
				variance /= float64(len(row))
				out := make([]float64, len(row))
				for j, x := range row {
					out[j] = (x-mean)/math.Sqrt(variance+float64(float32(1e-5)))*float64(testGamma[j]) + float64(testBeta[j])
				}
				return out
			}, tol: func(want, _ float64) float64 { return 2e-6 * (1 + math.Abs(want)) }},
	}
}

func softmax64(row []float64) []float64 {
	m := math.Inf(-1)
	for _, x := range row {
		m = math.Max(m, x)
	}
	out := make([]float64, len(row))
	var sum float64
	for j, x := range row {
		out[j] = math.Exp(x - m)
		sum += out[j]
	}
	for j := range out {
		out[j] /= sum
	}
	return out
}

// TestRowKernelsAgainstFloat64 writes each kernel's output to a separate
// compact matrix, to its input (in place), and to a strided view of a larger
// matrix from another strided view. Shapes include one element, a wide and
// a tall vector (which split by elements) and a matrix large enough to run
// in parallel, with rows longer than the kernels' 256-element chunks.
func TestRowKernelsAgainstFloat64(t *testing.T) {
	shapes := [][2]int{{1, 1}, {3, 5}, {1, 40000}, {40000, 1}, {300, 257}}
	for _, k := range rowKernels() {
		for _, shape := range shapes {
			r, c := shape[0], shape[1]
			if c > len(testBias) && (k.name == "AddBias" || k.name == "LayerNorm") {
				continue
			}
			for _, layout := range []string{"compact", "in-place", "strided"} {
				t.Run(fmt.Sprintf("%s/%dx%d/%s", k.name, r, c, layout), func(t *testing.T) {
					rng := rand.New(rand.NewPCG(uint64(r), uint64(c)))
					var src, dst padded
					switch layout {
					case "compact":
						src = randomMatrix(rng, r, c, 0)
						src.view = src.view.Clone()
						dst = padded{view: New(r, c)}
					case "in-place":
						src = randomMatrix(rng, r, c, 0)
						src.view = src.view.Clone()
						dst = src
					case "strided":
						src = randomMatrix(rng, r, c, 3)
						dst = randomMatrix(rng, r, c, 5)
					}
					scaleEntries(src.view, k.scale)
					input := src.view.Clone()
					var before *Matrix
					if dst.parent != nil && layout == "strided" {
						before = dst.parent.Clone()
					}
					k.apply(dst.view, src.view)
					for i := range r {
						row := make([]float64, c)
						for j := range c {
							row[j] = float64(input.At(i, j))
						}
						want := k.ref(row)
						for j := range c {
							got := float64(dst.view.At(i, j))
							if tol := k.tol(want[j], row[j]); !(math.Abs(got-want[j]) <= tol) {
								t.Fatalf("[%d,%d]: x=%g: got %g, want %g (tolerance %g)", i, j, row[j], got, want[j], tol)
							}
						}
					}
					if before != nil {
						checkOutsideUntouched(t, "output", dst, before)
					}
				})
			}
		}
	}
}

func scaleEntries(m *Matrix, s float64) {
	for i := range m.Rows {
		row := m.Row(i)
		for j := range row {
			row[j] *= float32(s)
		}
	}
}

func TestAdd(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	for _, shape := range [][2]int{{1, 1}, {7, 3}, {1, 50000}, {300, 257}} {
		r, c := shape[0], shape[1]
		a, b := randomMatrix(rng, r, c, 2), randomMatrix(rng, r, c, 0)
		want := New(r, c)
		for i := range r {
			for j := range c {
				want.Set(i, j, float32(float64(a.view.At(i, j))+float64(b.view.At(i, j))))
			}
		}
		for _, layout := range []string{"strided", "compact", "in-place"} {
			dst := randomMatrix(rng, r, c, 1).view
			switch layout {
			case "compact":
				dst = New(r, c)
			case "in-place":
				dst = b.view.Clone()
			}
			bIn := b.view
			if layout == "in-place" {
				bIn = dst
			}
			Add(dst, a.view, bIn)
			for i := range r {
				for j := range c {
					if dst.At(i, j) != want.At(i, j) {
						t.Fatalf("%dx%d %s: [%d,%d] = %g, want %g", r, c, layout, i, j, dst.At(i, j), want.At(i, j))
					}
				}
			}
		}
	}
}

func TestKernelSpecialValues(t *testing.T) {
	inf, nan := float32(math.Inf(1)), float32(math.NaN())
	x := FromSlice(1, 4, []float32{nan, inf, -inf, 0})
	cases := []struct {
		name  string
		apply func(dst, a *Matrix)
		want  []float64 // NaN means NaN
	}{
		{"Exp", Exp, []float64{math.NaN(), math.Inf(1), 0, 1}},
		{"Sigmoid", Sigmoid, []float64{math.NaN(), 1, 0, 0.5}},
		{"ReLU", ReLU, []float64{math.NaN(), math.Inf(1), 0, 0}},
		// -Inf·0 is NaN, as in PyTorch's x·Φ(x) and x·σ(1.702x).
		{"GELU", GELU, []float64{math.NaN(), math.Inf(1), math.NaN(), 0}},
		{"QuickGELU", QuickGELU, []float64{math.NaN(), math.Inf(1), math.NaN(), 0}},
	}
	for _, tc := range cases {
		got := New(1, 4)
		tc.apply(got, x)
		for j, w := range tc.want {
			g := float64(got.Data[j])
			if math.IsNaN(w) != math.IsNaN(g) || (!math.IsNaN(w) && g != w) {
				t.Errorf("%s(%g) = %g, want %g", tc.name, x.Data[j], g, w)
			}
		}
	}
	// Softmax stays finite for logits far beyond exp's range.
	s := New(1, 3)
	Softmax(s, FromSlice(1, 3, []float32{1000, 1000, -inf}))
	if s.Data[0] != 0.5 || s.Data[1] != 0.5 || s.Data[2] != 0 {
		t.Errorf("Softmax(1000, 1000, -Inf) = %v, want [0.5 0.5 0]", s.Data)
	}
	LogSoftmax(s, FromSlice(1, 3, []float32{1000, 0, -1000}))
	if want := []float32{0, -1000, -2000}; s.Data[0] != want[0] || s.Data[1] != want[1] || s.Data[2] != want[2] {
		t.Errorf("LogSoftmax(1000, 0, -1000) = %v, want %v", s.Data, want)
	}
}

func TestKernelShapeMismatchPanics(t *testing.T) {
	for name, f := range map[string]func(){
		"Add":       func() { Add(New(2, 3), New(2, 3), New(3, 2)) },
		"GELU":      func() { GELU(New(2, 3), New(2, 4)) },
		"AddBias":   func() { AddBias(New(2, 3), New(2, 3), make([]float32, 2)) },
		"LayerNorm": func() { LayerNorm(New(2, 3), New(2, 3), make([]float32, 3), make([]float32, 4), 1e-5) },
	} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("%s did not panic on mismatched shapes", name)
				}
			}()
			f()
		}()
	}
}

func TestArgmaxRows(t *testing.T) {
	nan := float32(math.NaN())
	m := FromSlice(4, 3, []float32{
		1, 3, 2, // largest in the middle
		5, 5, 1, // a tie: the first
		-3, -2, -1,
		nan, nan, nan,
	})
	got := ArgmaxRows(m.Slice(0, 4, 0, 3))
	if want := []int{1, 0, 2, 0}; !slices.Equal(got, want) {
		t.Errorf("ArgmaxRows = %v, want %v", got, want)
	}
}

// TestNormalizeRows checks rows against their norms computed in float64, a
// zero row with eps 0 (stays zero) and a tiny row with eps (divided by eps,
// as torch.nn.functional.normalize).
func TestNormalizeRows(t *testing.T) {
	m := FromSlice(3, 2, []float32{3, 4, 0, 0, 1e-14, 0})
	NormalizeRows(m, 0)
	for i, want := range [][]float32{{0.6, 0.8}, {0, 0}, {1, 0}} {
		for j, w := range want {
			if d := math.Abs(float64(m.At(i, j) - w)); d > 1e-7 {
				t.Errorf("eps 0: row %d = %v, want %v", i, m.Row(i), want)
				break
			}
		}
	}
	row := []float32{1e-14, 0}
	NormalizeRow(row, 1e-12)
	if math.Abs(float64(row[0])-1e-2) > 1e-9 || row[1] != 0 {
		t.Errorf("eps 1e-12: %v, want [0.01 0]", row)
	}
}
