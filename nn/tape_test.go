package nn

import (
	"testing"

	"github.com/unimos/unimos/tensor"
)

// smallNet is a two-layer network shared by the tape tests.
type smallNet struct {
	l1, l2 *Linear
	x      *Var
}

func newSmallNet() *smallNet {
	rng := NewRNG(30, 0)
	return &smallNet{l1: NewLinear(3, 4, rng), l2: NewLinear(4, 2, rng), x: NewConst(randMatrix(rng, 5, 3, -1, 1))}
}

func (n *smallNet) params() []*Var { return append(n.l1.Params(), n.l2.Params()...) }

// losses records two losses that share the first layer.
func (n *smallNet) losses(tp *Tape) (a, b *Var) {
	h := tp.Sigmoid(n.l1.Forward(tp, n.x))
	a = tp.CrossEntropy(n.l2.Forward(tp, h), []int{0, 1, 1, 0, 1})
	b = tp.Scale(tp.Sum(tp.Mul(h, h)), 0.5)
	return a, b
}

// grads returns copies of the parameters' gradients and zeroes them.
func grads(ps []*Var) []*tensor.Matrix {
	var gs []*tensor.Matrix
	for _, p := range ps {
		gs = append(gs, p.Grad.Clone())
		p.ZeroGrad()
	}
	return gs
}

func TestTwoBackwardPassesAccumulate(t *testing.T) {
	n := newSmallNet()
	tp := NewTape()
	a, _ := n.losses(tp)
	tp.Backward(a)
	gradA := grads(n.params())

	tp = NewTape()
	_, b := n.losses(tp)
	tp.Backward(b)
	gradB := grads(n.params())

	tp = NewTape()
	a, b = n.losses(tp)
	tp.Backward(a)
	tp.Backward(b)
	for i, p := range n.params() {
		var want []float64
		for k := range p.Grad.Data {
			want = append(want, float64(gradA[i].Data[k]+gradB[i].Data[k]))
		}
		assertClose(t, "accumulated gradient", p.Grad, want, 1e-6)
	}
}

// TestBackwardAfterStepPanics checks that a gradient is never taken at
// parameters an optimizer changed after the forward pass, directly or
// through a Detach (a frozen layer).
func TestBackwardAfterStepPanics(t *testing.T) {
	for _, frozen := range []bool{false, true} {
		n := newSmallNet()
		tp := NewTape()
		w := n.params()[0]
		read := w
		if frozen {
			read = Detach(w)
		}
		other := NewParam(tensor.FromSlice(1, 1, []float32{2}))
		loss := tp.Sum(tp.MulScalar(tp.MatMul(false, true, n.x, read), other))
		NewSGD(0.9, 0, ParamGroup{Params: []*Var{w}, LR: 0.1}).Step()
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("frozen=%v: Backward after the parameter's optimizer step did not panic", frozen)
				}
			}()
			tp.Backward(loss)
		}()
	}
}

func TestDetach(t *testing.T) {
	a := NewParam(tensor.FromSlice(1, 3, []float32{1, 2, 3}))
	b := NewParam(tensor.FromSlice(1, 3, []float32{4, 5, 6}))
	tp := NewTape()
	d := Detach(tp.Scale(a, 2))
	if d.RequiresGrad() {
		t.Fatal("a detached Var requires gradient")
	}
	tp.Backward(tp.Sum(tp.Mul(d, b)))
	assertClose(t, "detached side", a.Grad, []float64{0, 0, 0}, 0)
	assertClose(t, "other side", b.Grad, []float64{2, 4, 6}, 0)
}

func TestResetReusesBuffersCleanly(t *testing.T) {
	n := newSmallNet()
	tp := NewTape()
	var first []float64
	for iter := range 3 {
		a, b := n.losses(tp)
		tp.Backward(tp.Add(a, b))
		g := grads(n.params())
		vals := append(toFloat64(a.Value), toFloat64(g[0])...)
		if iter == 0 {
			first = vals
		} else {
			assertClose(t, "repeated iteration", tensor.FromSlice(1, len(vals), toFloat32(vals)), first, 0)
		}
		tp.Reset()
	}
}

func toFloat32(v []float64) []float32 {
	out := make([]float32, len(v))
	for i, x := range v {
		out[i] = float32(x)
	}
	return out
}

func TestNoGrad(t *testing.T) {
	n := newSmallNet()
	a, _ := n.losses(NewTape())
	tp := &Tape{NoGrad: true}
	b, _ := n.losses(tp)
	if b.RequiresGrad() || len(tp.steps) != 0 {
		t.Fatalf("NoGrad tape: loss requires gradient %v, %d recorded steps", b.RequiresGrad(), len(tp.steps))
	}
	assertClose(t, "NoGrad loss", b.Value, toFloat64(a.Value), 0)
	tp.Backward(b)
	for _, p := range n.params() {
		assertClose(t, "gradient after NoGrad backward", p.Grad, make([]float64, len(p.Grad.Data)), 0)
	}
	tp.Reset()
}
