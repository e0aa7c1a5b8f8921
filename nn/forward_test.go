package nn

import (
	"math"
	"testing"

	"github.com/unimos/unimos/tensor"
)

// Forward values are compared with naive float64 formulas.

const forwardTol = 1e-5

// at returns element (i, j) of m as float64.
func at(m *tensor.Matrix, i, j int) float64 { return float64(m.At(i, j)) }

func TestMatMulForward(t *testing.T) {
	rng := NewRNG(10, 0)
	for _, tr := range [][2]bool{{false, false}, {true, false}, {false, true}, {true, true}} {
		transA, transB := tr[0], tr[1]
		// op(a) is 3x4, op(b) is 4x2.
		a, b := randMatrix(rng, 3, 4, -1, 1), randMatrix(rng, 4, 2, -1, 1)
		if transA {
			a = randMatrix(rng, 4, 3, -1, 1)
		}
		if transB {
			b = randMatrix(rng, 2, 4, -1, 1)
		}
		opA := func(i, p int) float64 {
			if transA {
				return at(a, p, i)
			}
			return at(a, i, p)
		}
		opB := func(p, j int) float64 {
			if transB {
				return at(b, j, p)
			}
			return at(b, p, j)
		}
		var want []float64
		for i := range 3 {
			for j := range 2 {
				var s float64
				for p := range 4 {
					s += opA(i, p) * opB(p, j)
				}
				want = append(want, s)
			}
		}
		got := NewTape().MatMul(transA, transB, NewConst(a), NewConst(b))
		assertClose(t, "MatMul", got.Value, want, forwardTol)
	}
}

func TestElementwiseForward(t *testing.T) {
	x := tensor.FromSlice(2, 3, []float32{-1.5, 0, 2, 100, -100, 0.25})
	tp := NewTape()
	v := NewConst(x)
	var relu, sig, scaled []float64
	for _, e := range toFloat64(x) {
		relu = append(relu, math.Max(e, 0))
		sig = append(sig, 1/(1+math.Exp(-e)))
		scaled = append(scaled, -3*e)
	}
	assertClose(t, "ReLU", tp.ReLU(v).Value, relu, 0)
	assertClose(t, "Sigmoid", tp.Sigmoid(v).Value, sig, forwardTol)
	assertClose(t, "Scale", tp.Scale(v, -3).Value, scaled, 0)

	s := NewConst(tensor.FromSlice(2, 1, []float32{2, -1}))
	assertClose(t, "ScaleRows", tp.ScaleRows(v, s).Value, []float64{-3, 0, 4, -100, 100, -0.25}, 0)
	w := NewConst(tensor.FromSlice(1, 1, []float32{0.5}))
	assertClose(t, "MulScalar", tp.MulScalar(v, w).Value, []float64{-0.75, 0, 1, 50, -50, 0.125}, 0)
	b := NewConst(tensor.FromSlice(1, 3, []float32{1, 2, 3}))
	assertClose(t, "AddRow", tp.AddRow(v, b).Value, []float64{-0.5, 2, 5, 101, -98, 3.25}, 0)
	assertClose(t, "Sum", tp.Sum(v).Value, []float64{0.75}, forwardTol)
	assertClose(t, "Mean", tp.Mean(v).Value, []float64{0.125}, forwardTol)
	assertClose(t, "ColumnSum", tp.ColumnSum(v).Value, []float64{98.5, -100, 2.25}, forwardTol)
	assertClose(t, "ColumnMean", tp.ColumnMean(v).Value, []float64{49.25, -50, 1.125}, forwardTol)
	assertClose(t, "RowSum", tp.RowSum(v).Value, []float64{0.5, 0.25}, forwardTol)
	assertClose(t, "Sub", tp.Sub(v, v).Value, make([]float64, 6), 0)

	c := tp.ConcatRows(v, NewConst(tensor.FromSlice(1, 3, []float32{7, 8, 9})))
	assertClose(t, "ConcatRows", c.Value, append(toFloat64(x), 7, 8, 9), 0)
	assertClose(t, "SliceRows", tp.SliceRows(c, 1, 3).Value, []float64{100, -100, 0.25, 7, 8, 9}, 0)
}

func TestRowwiseForward(t *testing.T) {
	// Row 2 is shifted by 1000 to exercise the max-shifted log-sum-exp.
	x := tensor.FromSlice(3, 3, []float32{1, 2, 3, -1, 0.5, 0, 1000, 1001, 999})
	tp := NewTape()
	v := NewConst(x)
	var softmax, logSoftmax, normalized []float64
	for i := range 3 {
		var z, n float64
		for j := range 3 {
			z += math.Exp(at(x, i, j) - at(x, i, 0))
			n += at(x, i, j) * at(x, i, j)
		}
		for j := range 3 {
			logp := at(x, i, j) - at(x, i, 0) - math.Log(z)
			softmax = append(softmax, math.Exp(logp))
			logSoftmax = append(logSoftmax, logp)
			normalized = append(normalized, at(x, i, j)/math.Sqrt(n))
		}
	}
	assertClose(t, "Softmax", tp.Softmax(v).Value, softmax, forwardTol)
	assertClose(t, "LogSoftmax", tp.LogSoftmax(v).Value, logSoftmax, forwardTol)
	assertClose(t, "NormalizeRows", tp.NormalizeRows(v).Value, normalized, forwardTol)

	zero := NewParam(tensor.New(1, 2))
	tp.Backward(tp.Sum(tp.NormalizeRows(zero)))
	assertClose(t, "NormalizeRows(0)", zero.Grad, []float64{1 / normalizeEps, 1 / normalizeEps}, 1e-6/normalizeEps)
}

func TestLossForward(t *testing.T) {
	rng := NewRNG(11, 0)
	z := randMatrix(rng, 4, 5, -3, 3)
	z2 := randMatrix(rng, 4, 5, -3, 3)
	labels := []int{4, 0, 2, 2}
	targets := []float32{1, 0, 0, 1, 1, 0, 1, 0, 1, 1, 0, 0, 1, 0, 1, 0, 0, 0, 1, 1}
	probs := func(m *tensor.Matrix, i int) []float64 {
		var s float64
		p := make([]float64, m.Cols)
		for j := range m.Cols {
			p[j] = math.Exp(at(m, i, j))
			s += p[j]
		}
		for j := range p {
			p[j] /= s
		}
		return p
	}
	var ce, bce, kl float64
	for i := range 4 {
		p, q := probs(z, i), probs(z2, i)
		ce -= math.Log(p[labels[i]]) / 4
		for k := range 5 {
			kl += p[k] * (math.Log(p[k]) - math.Log(q[k])) / 4
			s, y := 1/(1+math.Exp(-at(z, i, k))), float64(targets[i*5+k])
			bce -= (y*math.Log(s) + (1-y)*math.Log(1-s)) / 20
		}
	}
	tp := NewTape()
	a, b := NewConst(z), NewConst(z2)
	assertClose(t, "CrossEntropy", tp.CrossEntropy(a, labels).Value, []float64{ce}, forwardTol)
	assertClose(t, "BCEWithLogits", tp.BCEWithLogits(a, targets).Value, []float64{bce}, forwardTol)
	assertClose(t, "KLWithLogits", tp.KLWithLogits(a, b).Value, []float64{kl}, forwardTol)

	// Large logits must not overflow the stable forms.
	big := NewConst(tensor.FromSlice(1, 2, []float32{200, -200}))
	assertClose(t, "BCEWithLogits(±200)", tp.BCEWithLogits(big, []float32{0, 1}).Value, []float64{200}, forwardTol)
	assertClose(t, "CrossEntropy(±200)", tp.CrossEntropy(big, []int{1}).Value, []float64{400}, forwardTol)
}
