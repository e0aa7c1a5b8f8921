package nn

import (
	"slices"
	"testing"
)

// TestBackwardFreshMatchesZeroGradBackward compares BackwardFresh with
// ZeroGrad + Backward on a graph where one weight is used twice, a bias is
// added, and one parameter is on the tape but does not reach the loss
// (its gradient must come out zero). Gradients start as garbage, which
// BackwardFresh must not let through.
func TestBackwardFreshMatchesZeroGradBackward(t *testing.T) {
	rng := NewRNG(1, 1)
	w := NewParam(randMatrix(rng, 4, 3, -1, 1))
	b := NewParam(randMatrix(rng, 1, 4, -1, 1))
	unused := NewParam(randMatrix(rng, 4, 3, -1, 1))
	x := NewConst(randMatrix(rng, 5, 3, -1, 1))
	params := []*Var{w, b, unused}

	forward := func(tp *Tape) *Var {
		h := tp.AddRow(tp.MatMul(false, true, x, w), b)                               // [5, 4]
		again := tp.MatMul(false, false, h, w)                                        // [5, 3], w read twice
		_ = tp.MatMul(false, true, x, unused)                                         // on the tape, not in the loss
		return tp.Sum(tp.Mul(again, NewConst(randMatrix(NewRNG(2, 2), 5, 3, -1, 1)))) // a fixed weighting
	}
	var want [][]float32
	tp := NewTape()
	for _, p := range params {
		p.ZeroGrad()
	}
	tp.Backward(forward(tp))
	for _, p := range params {
		want = append(want, slices.Clone(p.Grad.Data))
	}

	for _, p := range params {
		fill(p.Grad, 7) // stale values from an earlier step
	}
	tp.Reset()
	tp.BackwardFresh(forward(tp))
	for i, p := range params {
		if !slices.Equal(p.Grad.Data, want[i]) {
			t.Errorf("parameter %d: BackwardFresh gave %v, ZeroGrad+Backward %v", i, p.Grad.Data, want[i])
		}
	}
	for _, v := range unused.Grad.Data {
		if v != 0 {
			t.Fatalf("unreached parameter has gradient %v", unused.Grad.Data)
		}
	}
}
