package nn

import (
	"testing"

	"github.com/unimos/unimos/tensor"
)

// TestGradients checks every op, loss and layer against finite differences
// (see checkGrad for the tolerance).
func TestGradients(t *testing.T) {
	rng := NewRNG(1, 0)
	u := func(rows, cols int) *tensor.Matrix { return randMatrix(rng, rows, cols, -1, 1) }
	logits := func(rows, cols int) *tensor.Matrix { return randMatrix(rng, rows, cols, -2, 2) }
	labels := []int{2, 0, 3, 3, 1}
	bn := NewBatchNorm1d(3)
	bnEval := NewBatchNorm1d(3)
	bnEval.Train = false
	copy(bnEval.RunningMean, []float32{0.2, -0.1, 0.3})
	copy(bnEval.RunningVar, []float32{0.5, 1.5, 0.8})
	lin := NewLinear(4, 3, NewRNG(2, 0))
	wn := NewWeightNormLinear(4, 3, NewRNG(3, 0))

	cases := []struct {
		name   string
		inputs []*tensor.Matrix
		f      func(tp *Tape, in []*Var) *Var
	}{
		// Each product is taken twice so that every gradient branch must accumulate.
		{"MatMul", []*tensor.Matrix{u(3, 4), u(4, 5)}, func(tp *Tape, in []*Var) *Var { return matMulTwice(tp, false, false, in[0], in[1]) }},
		{"MatMulTransA", []*tensor.Matrix{u(4, 3), u(4, 5)}, func(tp *Tape, in []*Var) *Var { return matMulTwice(tp, true, false, in[0], in[1]) }},
		{"MatMulTransB", []*tensor.Matrix{u(3, 4), u(5, 4)}, func(tp *Tape, in []*Var) *Var { return matMulTwice(tp, false, true, in[0], in[1]) }},
		{"MatMulTransAB", []*tensor.Matrix{u(4, 3), u(5, 4)}, func(tp *Tape, in []*Var) *Var { return matMulTwice(tp, true, true, in[0], in[1]) }},
		{"MatMulSelf", []*tensor.Matrix{u(3, 4)}, func(tp *Tape, in []*Var) *Var { return tp.MatMul(false, true, in[0], in[0]) }},
		{"Add", []*tensor.Matrix{u(3, 4), u(3, 4)}, func(tp *Tape, in []*Var) *Var { return tp.Add(in[0], in[1]) }},
		{"Sub", []*tensor.Matrix{u(3, 4), u(3, 4)}, func(tp *Tape, in []*Var) *Var { return tp.Sub(in[0], in[1]) }},
		{"Scale", []*tensor.Matrix{u(3, 4)}, func(tp *Tape, in []*Var) *Var { return tp.Scale(in[0], -2.5) }},
		{"MulScalar", []*tensor.Matrix{u(3, 4), u(1, 1)}, func(tp *Tape, in []*Var) *Var { return tp.MulScalar(in[0], in[1]) }},
		{"ScaleRows", []*tensor.Matrix{u(3, 4), u(3, 1)}, func(tp *Tape, in []*Var) *Var { return tp.ScaleRows(in[0], in[1]) }},
		{"Mul", []*tensor.Matrix{u(3, 4), u(3, 4)}, func(tp *Tape, in []*Var) *Var { return tp.Mul(in[0], in[1]) }},
		{"MulSelf", []*tensor.Matrix{u(3, 4)}, func(tp *Tape, in []*Var) *Var { return tp.Mul(in[0], in[0]) }},
		{"AddRow", []*tensor.Matrix{u(3, 4), u(1, 4)}, func(tp *Tape, in []*Var) *Var { return tp.AddRow(in[0], in[1]) }},
		{"ConcatRows", []*tensor.Matrix{u(2, 3), u(1, 3), u(3, 3)}, func(tp *Tape, in []*Var) *Var { return tp.ConcatRows(in[0], in[1], in[2]) }},
		{"SliceRows", []*tensor.Matrix{u(5, 3)}, func(tp *Tape, in []*Var) *Var { return tp.SliceRows(in[0], 1, 4) }},
		{"SliceOfResult", []*tensor.Matrix{u(5, 3)}, func(tp *Tape, in []*Var) *Var {
			return tp.SliceRows(tp.Mul(in[0], in[0]), 2, 5)
		}},
		{"Sum", []*tensor.Matrix{u(3, 4)}, func(tp *Tape, in []*Var) *Var { return tp.Sum(in[0]) }},
		{"Mean", []*tensor.Matrix{u(3, 4)}, func(tp *Tape, in []*Var) *Var { return tp.Mean(in[0]) }},
		{"ColumnSum", []*tensor.Matrix{u(3, 4)}, func(tp *Tape, in []*Var) *Var { return tp.ColumnSum(in[0]) }},
		{"ColumnMean", []*tensor.Matrix{u(3, 4)}, func(tp *Tape, in []*Var) *Var { return tp.ColumnMean(in[0]) }},
		{"RowSum", []*tensor.Matrix{u(3, 4)}, func(tp *Tape, in []*Var) *Var { return tp.RowSum(in[0]) }},
		{"ReLU", []*tensor.Matrix{awayFromZero(rng, 3, 4)}, func(tp *Tape, in []*Var) *Var { return tp.ReLU(in[0]) }},
		{"Sigmoid", []*tensor.Matrix{logits(3, 4)}, func(tp *Tape, in []*Var) *Var { return tp.Sigmoid(in[0]) }},
		{"Dropout", []*tensor.Matrix{u(4, 5)}, func(tp *Tape, in []*Var) *Var { return tp.Dropout(in[0], 0.3, NewRNG(7, 0)) }},
		{"NormalizeRows", []*tensor.Matrix{u(3, 4)}, func(tp *Tape, in []*Var) *Var { return tp.NormalizeRows(in[0]) }},
		{"LogSoftmax", []*tensor.Matrix{logits(3, 5)}, func(tp *Tape, in []*Var) *Var { return tp.LogSoftmax(in[0]) }},
		{"Softmax", []*tensor.Matrix{logits(3, 5)}, func(tp *Tape, in []*Var) *Var { return tp.Softmax(in[0]) }},
		{"XLogX", []*tensor.Matrix{randMatrix(rng, 3, 4, 0.3, 1)}, func(tp *Tape, in []*Var) *Var { return tp.XLogX(in[0], 1e-5) }},

		{"CrossEntropy", []*tensor.Matrix{logits(5, 4)}, func(tp *Tape, in []*Var) *Var { return tp.CrossEntropy(in[0], labels) }},
		{"BCEWithLogits", []*tensor.Matrix{logits(4, 2)}, func(tp *Tape, in []*Var) *Var {
			return tp.BCEWithLogits(in[0], []float32{0, 1, 1, 0, 1, 1, 0, 0})
		}},
		{"KLWithLogits", []*tensor.Matrix{logits(3, 5), logits(3, 5)}, func(tp *Tape, in []*Var) *Var { return tp.KLWithLogits(in[0], in[1]) }},

		{"Linear", []*tensor.Matrix{u(5, 4), lin.Weight.Value, lin.Bias.Value}, func(tp *Tape, in []*Var) *Var {
			return (&Linear{Weight: in[1], Bias: in[2]}).Forward(tp, in[0])
		}},
		{"WeightNormLinear", []*tensor.Matrix{u(5, 4), wn.V.Value, wn.G.Value, wn.Bias.Value}, func(tp *Tape, in []*Var) *Var {
			return (&WeightNormLinear{V: in[1], G: in[2], Bias: in[3]}).Forward(tp, in[0])
		}},
		{"BatchNormTrain", []*tensor.Matrix{u(5, 3), u(1, 3), u(1, 3)}, func(tp *Tape, in []*Var) *Var {
			bn.Gamma, bn.Beta = in[1], in[2]
			return bn.Forward(tp, in[0])
		}},
		{"BatchNormEval", []*tensor.Matrix{u(5, 3), u(1, 3), u(1, 3)}, func(tp *Tape, in []*Var) *Var {
			bnEval.Gamma, bnEval.Beta = in[1], in[2]
			return bnEval.Forward(tp, in[0])
		}},
		{"Discriminator", []*tensor.Matrix{u(4, 3), u(5, 3), u(1, 5), u(1, 5), u(1, 1)}, func(tp *Tape, in []*Var) *Var {
			d := Sequential{
				&Linear{Weight: in[1], Bias: in[2]}, ReLU{},
				&Dropout{P: 0.5, Train: true, RNG: NewRNG(5, 0)},
				&Linear{Weight: in[3], Bias: in[4]},
			}
			return tp.BCEWithLogits(d.Forward(tp, in[0]), []float32{0, 0, 1, 1})
		}},
		{"EnsembleMix", []*tensor.Matrix{logits(3, 4), logits(3, 4), u(1, 1)}, func(tp *Tape, in []*Var) *Var {
			// w·VAC + (1-w)·LAC with w = sigmoid(·) as UniMoS's MET.
			w := tp.Sigmoid(in[2])
			oneMinusW := tp.Sub(NewConst(tensor.FromSlice(1, 1, []float32{1})), w)
			return tp.Add(tp.MulScalar(in[0], w), tp.MulScalar(in[1], oneMinusW))
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) { checkGrad(t, c.inputs, c.f) })
	}
}

// matMulTwice returns op(a)·op(b) + 2·op(a)·op(b), computed as two products.
func matMulTwice(tp *Tape, transA, transB bool, a, b *Var) *Var {
	return tp.Add(tp.MatMul(transA, transB, a, b), tp.Scale(tp.MatMul(transA, transB, a, b), 2))
}
