package nn

import (
	"math"
	"testing"

	"github.com/unimos/unimos/tensor"
)

// Gradient checks compare the tape's gradient of L = Σ R∘f(inputs), for a
// fixed random R, with central differences (L(x+h) - L(x-h))/(2h) per input
// element. Inputs are of order 1 and h = 1e-2, so the truncation error is
// about h²/6 ≈ 2e-5 times the third derivative. L is summed in float64 from
// the float32 outputs, whose rounding (about 1e-7 each) becomes ≈ 1e-5 after
// the division by 2h; smaller steps make rounding dominate. The check allows
// |numeric - analytic| ≤ 2e-4 + 5e-3·|numeric|; the largest error seen is
// under a third of that.
const (
	fdStep     = 1e-2
	gradAbsTol = 2e-4
	gradRelTol = 5e-3
)

// randMatrix returns a rows x cols matrix of draws from U(lo, hi).
func randMatrix(rng *RNG, rows, cols int, lo, hi float64) *tensor.Matrix {
	m := tensor.New(rows, cols)
	for k := range m.Data {
		m.Data[k] = float32(lo + (hi-lo)*rng.Float64())
	}
	return m
}

// awayFromZero returns a matrix of values in ±[0.1, 1.1], so that kinks at 0
// (ReLU) are farther than fdStep from every input.
func awayFromZero(rng *RNG, rows, cols int) *tensor.Matrix {
	m := randMatrix(rng, rows, cols, -1, 1)
	for k, v := range m.Data {
		m.Data[k] = float32(math.Copysign(0.1, float64(v))) + v
	}
	return m
}

// weightedSum returns Σ r∘m in float64.
func weightedSum(m, r *tensor.Matrix) float64 {
	var s float64
	for i := range m.Rows {
		for j, v := range m.Row(i) {
			s += float64(v) * float64(r.At(i, j))
		}
	}
	return s
}

// checkGrad differentiates f at inputs (made parameters) with the tape and
// with central differences, and fails t where they disagree.
func checkGrad(t *testing.T, inputs []*tensor.Matrix, f func(tp *Tape, in []*Var) *Var) {
	t.Helper()
	params := make([]*Var, len(inputs))
	for i, m := range inputs {
		params[i] = NewParam(m.Clone())
	}
	tp := NewTape()
	out := f(tp, params)
	r := randMatrix(NewRNG(99, 0), out.Value.Rows, out.Value.Cols, -1, 1)
	tp.backward(out, r)

	loss := func() float64 { return weightedSum(f(NewTape(), params).Value, r) }
	for pi, p := range params {
		for k, x := range p.Value.Data {
			p.Value.Data[k] = x + fdStep
			up, lossUp := p.Value.Data[k], loss()
			p.Value.Data[k] = x - fdStep
			down, lossDown := p.Value.Data[k], loss()
			p.Value.Data[k] = x
			numeric := (lossUp - lossDown) / float64(up-down)
			analytic := float64(p.Grad.Data[k])
			if math.Abs(numeric-analytic) > gradAbsTol+gradRelTol*math.Abs(numeric) {
				t.Errorf("input %d element %d: tape gradient %.6g, finite difference %.6g", pi, k, analytic, numeric)
			}
		}
	}
}

// assertClose fails t unless got and want agree within tol element-wise.
func assertClose(t *testing.T, what string, got *tensor.Matrix, want []float64, tol float64) {
	t.Helper()
	if got.Rows*got.Cols != len(want) {
		t.Fatalf("%s: %dx%d values, want %d", what, got.Rows, got.Cols, len(want))
	}
	for i := range got.Rows {
		for j, v := range got.Row(i) {
			if w := want[i*got.Cols+j]; math.Abs(float64(v)-w) > tol {
				t.Errorf("%s[%d,%d] = %.8g, want %.8g", what, i, j, v, w)
			}
		}
	}
}

// toFloat64 returns m's elements row-major.
func toFloat64(m *tensor.Matrix) []float64 {
	out := make([]float64, 0, m.Rows*m.Cols)
	for i := range m.Rows {
		for _, v := range m.Row(i) {
			out = append(out, float64(v))
		}
	}
	return out
}
