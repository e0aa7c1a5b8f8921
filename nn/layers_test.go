package nn

import (
	"fmt"
	"math"
	"testing"

	"github.com/unimos/unimos/tensor"
)

func TestBatchNorm1d(t *testing.T) {
	rng := NewRNG(20, 0)
	bn := NewBatchNorm1d(3)
	copy(bn.Gamma.Value.Data, []float32{1.5, -0.5, 2})
	copy(bn.Beta.Value.Data, []float32{0.1, 0.2, -0.3})
	wantMean, wantVar := []float64{0, 0, 0}, []float64{1, 1, 1}
	for range 2 {
		x := randMatrix(rng, 6, 3, -2, 3)
		var want []float64
		for i := range 6 {
			for j := range 3 {
				var mu, v float64
				for r := range 6 {
					mu += at(x, r, j) / 6
				}
				for r := range 6 {
					v += (at(x, r, j) - mu) * (at(x, r, j) - mu)
				}
				if i == 0 {
					wantMean[j] = 0.9*wantMean[j] + 0.1*mu
					wantVar[j] = 0.9*wantVar[j] + 0.1*v/5 // unbiased
				}
				xHat := (at(x, i, j) - mu) / math.Sqrt(v/6+1e-5) // biased
				want = append(want, float64(bn.Gamma.Value.Data[j])*xHat+float64(bn.Beta.Value.Data[j]))
			}
		}
		got := bn.Forward(NewTape(), NewConst(x))
		assertClose(t, "train output", got.Value, want, 1e-5)
		assertClose(t, "running mean", tensor.FromSlice(1, 3, bn.RunningMean), wantMean, 1e-6)
		assertClose(t, "running var", tensor.FromSlice(1, 3, bn.RunningVar), wantVar, 1e-6)
	}

	bn.SetTrain(false)
	x := randMatrix(rng, 2, 3, -2, 2)
	var want []float64
	for i := range 2 {
		for j := range 3 {
			xHat := (at(x, i, j) - wantMean[j]) / math.Sqrt(wantVar[j]+1e-5)
			want = append(want, float64(bn.Gamma.Value.Data[j])*xHat+float64(bn.Beta.Value.Data[j]))
		}
	}
	before := append([]float32(nil), bn.RunningMean...)
	assertClose(t, "eval output", bn.Forward(NewTape(), NewConst(x)).Value, want, 1e-5)
	assertClose(t, "running mean after eval", tensor.FromSlice(1, 3, bn.RunningMean), toFloat64(tensor.FromSlice(1, 3, before)), 0)
}

func TestBatchNorm1dDefaults(t *testing.T) {
	bn := NewBatchNorm1d(2)
	if !bn.Train || bn.Momentum != 0.1 || bn.Eps != 1e-5 {
		t.Errorf("defaults: train %v momentum %v eps %v, want true 0.1 1e-5", bn.Train, bn.Momentum, bn.Eps)
	}
	assertClose(t, "gamma", bn.Gamma.Value, []float64{1, 1}, 0)
	assertClose(t, "beta", bn.Beta.Value, []float64{0, 0}, 0)
	assertClose(t, "running var", tensor.FromSlice(1, 2, bn.RunningVar), []float64{1, 1}, 0)
}

func TestWeightNormLinear(t *testing.T) {
	l := NewWeightNormLinear(5, 3, NewRNG(21, 0))
	for i := range 3 {
		if got, want := float64(l.G.Value.Data[i]), norm2(l.V.Value.Row(i)); math.Abs(got-want) > 1e-6 {
			t.Errorf("g[%d] = %v, want ‖v_%d‖ = %v", i, got, i, want)
		}
	}
	// At initialisation W = V, so the layer equals a plain Linear with V.
	x := NewConst(randMatrix(NewRNG(22, 0), 4, 5, -1, 1))
	tp := NewTape()
	want := (&Linear{Weight: l.V, Bias: l.Bias}).Forward(tp, x)
	assertClose(t, "initial output", l.Forward(tp, x).Value, toFloat64(want.Value), 1e-6)

	// Doubling g doubles W·x; scaling v leaves it unchanged.
	for k := range l.V.Value.Data {
		l.V.Value.Data[k] *= 3
	}
	for k := range l.G.Value.Data {
		l.G.Value.Data[k] *= 2
	}
	var doubled []float64
	for i := range 4 {
		for j := range 3 {
			doubled = append(doubled, 2*(at(want.Value, i, j)-float64(l.Bias.Value.Data[j]))+float64(l.Bias.Value.Data[j]))
		}
	}
	assertClose(t, "rescaled output", l.Forward(tp, x).Value, doubled, 1e-5)
}

func TestDropout(t *testing.T) {
	const p = 0.25
	x := NewParam(randMatrix(NewRNG(23, 0), 40, 50, 0.5, 1)) // no zeros, so drops are visible
	tp := NewTape()
	out := tp.Dropout(x, p, NewRNG(24, 0))
	tp.Backward(tp.Sum(out))
	dropped := 0
	for k, v := range out.Value.Data {
		g := x.Grad.Data[k]
		switch {
		case v == 0:
			dropped++
			if g != 0 {
				t.Fatalf("element %d dropped in forward but has gradient %v", k, g)
			}
		case math.Abs(float64(v-x.Value.Data[k]/(1-p))) > 1e-6 || g != 1/(1-p):
			t.Fatalf("element %d kept: output %v for input %v, gradient %v; want scaling %v", k, v, x.Value.Data[k], g, 1/(1-p))
		}
	}
	// 2000 Bernoulli(0.25) draws: standard deviation ≈ 19.4, allow 5σ.
	if dropped < 500-97 || dropped > 500+97 {
		t.Errorf("dropped %d of 2000, want about 500", dropped)
	}

	// Same seed, same mask; evaluation mode is the identity.
	again := NewTape().Dropout(x, p, NewRNG(24, 0))
	assertClose(t, "same seed", again.Value, toFloat64(out.Value), 0)
	layer := &Dropout{P: p, RNG: NewRNG(24, 0)}
	if layer.Forward(tp, x) != x {
		t.Error("a new Dropout layer (evaluation mode) changed its input")
	}
	Sequential{layer}.SetTrain(true)
	assertClose(t, "layer in training", layer.Forward(tp, x).Value, toFloat64(out.Value), 0)
}

// TestLinearFrozen checks that a frozen Linear layer passes the same
// gradient to its input as the layer itself and leaves its parameters'
// gradients alone.
func TestLinearFrozen(t *testing.T) {
	rng := NewRNG(21, 0)
	l := NewLinear(3, 2, rng)
	x := NewParam(randMatrix(rng, 4, 3, -1, 1))
	loss := func(tp *Tape, layer *Linear) *Var {
		y := layer.Forward(tp, x)
		return tp.Sum(tp.Mul(y, y))
	}
	tp := NewTape()
	tp.BackwardFresh(loss(tp, l))
	want := toFloat64(x.Grad)

	for _, p := range l.Params() {
		fill(p.Grad, 5)
	}
	tp = NewTape()
	tp.BackwardFresh(loss(tp, l.Frozen()))
	assertClose(t, "input gradient through the frozen layer", x.Grad, want, 0)
	for _, p := range l.Params() {
		for _, g := range p.Grad.Data {
			if g != 5 {
				t.Fatalf("a frozen parameter's gradient was written: %v", p.Grad.Data)
			}
		}
	}
}

// TestLinearFollowsWeightChanges checks that a Linear layer's products,
// which keep its weight packed, always multiply by the current weight: after
// an optimizer step (which repacks in its own pass), after a write announced
// with Changed, and through a Frozen copy, on every GEMM backend.
func TestLinearFollowsWeightChanges(t *testing.T) {
	defer tensor.UseBackend(tensor.BackendAuto)
	for _, backend := range []string{tensor.BackendGo, tensor.BackendOpenBLAS} {
		t.Run(backend, func(t *testing.T) {
			if err := tensor.UseBackend(backend); err != nil {
				t.Skipf("%s: %v", backend, err)
			}
			rng := NewRNG(5, 0)
			layer := NewLinear(70, 100, rng) // 100 rows: three full panels of 32 and a partial one
			x := randMatrix(rng, 9, 70, -1, 1)
			check := func(what string, l *Linear) {
				t.Helper()
				want := tensor.New(9, 100)
				tensor.Gemm(false, true, 1, x, layer.Weight.Value, 0, want) // no panels: packs W itself
				for i := range 9 {
					for j := range 100 {
						want.Set(i, j, want.At(i, j)+layer.Bias.Value.At(0, j))
					}
				}
				tp := NewTape()
				got := l.Forward(tp, NewConst(x)).Value
				for i, v := range got.Data {
					if v != want.Data[i] {
						t.Fatalf("%s: output %d is %v, want %v", what, i, v, want.Data[i])
					}
				}
			}
			check("fresh", layer)

			opt := NewSGD(0.9, 0, ParamGroup{Params: layer.Params(), LR: 0.5})
			for step := range 3 {
				tp := NewTape()
				tp.BackwardFresh(tp.Sum(layer.Forward(tp, NewConst(x))))
				opt.Step()
				check(fmt.Sprintf("after step %d", step+1), layer)
			}

			InitXavierUniform(layer.Weight.Value, rng)
			layer.Weight.Changed()
			check("after re-initialisation", layer)
			check("frozen", layer.Frozen())
		})
	}
}
