package nn

import (
	"math"
	"testing"

	"github.com/unimos/unimos/tensor"
)

func TestSGDClosedForm(t *testing.T) {
	p := NewParam(tensor.FromSlice(1, 2, []float32{1, -2}))
	q := NewParam(tensor.FromSlice(1, 1, []float32{3}))
	opt := NewSGD(0.9, 0.01, ParamGroup{Params: []*Var{p}, LR: 0.1}, ParamGroup{Params: []*Var{q}, LR: 0.5})
	setGrads := func() {
		copy(p.Grad.Data, []float32{0.5, 0.25})
		q.Grad.Data[0] = 1
	}
	// Step 1: d = g + 0.01·p, buf = d, p -= lr·buf.
	//   p: d = (0.51, 0.23) → (0.949, -2.023); q: d = 1.03 → 2.485.
	setGrads()
	opt.Step()
	assertClose(t, "p after step 1", p.Value, []float64{0.949, -2.023}, 1e-6)
	assertClose(t, "q after step 1", q.Value, []float64{2.485}, 1e-6)
	saved := opt.MomentumBuffer(p).Clone()

	// Step 2: buf = 0.9·buf + d.
	//   p: d = (0.50949, 0.22977), buf = (0.96849, 0.43677) → (0.852151, -2.066677);
	//   q: d = 1.02485, buf = 1.95185 → 1.509075.
	setGrads()
	opt.Step()
	assertClose(t, "p after step 2", p.Value, []float64{0.852151, -2.066677}, 1e-6)
	assertClose(t, "q after step 2", q.Value, []float64{1.509075}, 1e-6)

	opt.ZeroGrad()
	assertClose(t, "gradient after ZeroGrad", p.Grad, []float64{0, 0}, 0)

	// A fresh optimizer given the saved buffer continues as the first did.
	copy(p.Value.Data, []float32{0.949, -2.023})
	resumed := NewSGD(0.9, 0.01, ParamGroup{Params: []*Var{p}})
	resumed.SetLR(0.1)
	resumed.SetMomentumBuffer(p, saved)
	setGrads()
	resumed.Step()
	assertClose(t, "p after resumed step", p.Value, []float64{0.852151, -2.066677}, 1e-6)
}

func TestSGDWithoutMomentum(t *testing.T) {
	p := NewParam(tensor.FromSlice(1, 2, []float32{1, -2}))
	opt := NewSGD(0, 0.01, ParamGroup{Params: []*Var{p}, LR: 0.1})
	for range 2 {
		copy(p.Grad.Data, []float32{0.5, 0.25})
		opt.Step()
	}
	// p -= 0.1·(g + 0.01·p), twice: (0.949, -2.023), then (0.8980510, -2.0459770).
	assertClose(t, "p after two steps", p.Value, []float64{0.898051, -2.045977}, 1e-6)
	if opt.MomentumBuffer(p) != nil {
		t.Error("momentum buffer without momentum")
	}
}

// TestSGDChunks checks a parameter larger than one goroutine's chunk: every
// element, including the last partial chunk, gets the same update.
func TestSGDChunks(t *testing.T) {
	n := 2*sgdChunk + 100
	rng := NewRNG(60, 0)
	p := NewParam(randMatrix(rng, 1, n, -1, 1))
	initial := p.Value.Clone()
	opt := NewSGD(0.9, 0.1, ParamGroup{Params: []*Var{p}, LR: 0.01})
	copy(p.Grad.Data, randMatrix(rng, 1, n, -1, 1).Data)
	opt.Step()
	opt.Step()
	want := make([]float64, n)
	for k := range want {
		x, g := float64(initial.Data[k]), float64(p.Grad.Data[k])
		d := g + 0.1*x
		x -= 0.01 * d
		d = 0.9*d + g + 0.1*x
		want[k] = x - 0.01*d
	}
	assertClose(t, "p after two steps", p.Value, want, 1e-6)
}

func TestInvLR(t *testing.T) {
	cases := []struct {
		iter        int
		gamma, pow  float64
		want        float64
		description string
	}{
		{0, 0.001, 0.75, 0.003, "lr0 at the start"},
		{1000, 0.001, 0.75, 0.003 / math.Sqrt(math.Sqrt(8)), "2^-0.75 = 8^-1/4"},
		{3000, 0.001, 0.75, 0.003 / (2 * math.Sqrt2), "4^-0.75"},
		{10, 0.1, 1, 0.0015, "(1+1)^-1"},
	}
	for _, c := range cases {
		if got := InvLR(0.003, c.iter, c.gamma, c.pow); math.Abs(got-c.want) > 1e-15 {
			t.Errorf("InvLR(0.003, %d, %v, %v) = %v, want %v (%s)", c.iter, c.gamma, c.pow, got, c.want, c.description)
		}
	}
}

// TestMLPTrainingSteps trains a 3→4→2 ReLU network with cross-entropy for two
// SGD-momentum steps (two parameter groups) and compares every parameter with
// a float64 reference written out by hand, independent of the tape.
func TestMLPTrainingSteps(t *testing.T) {
	x := [2][3]float64{{1, -2, 0.5}, {0.3, 0.8, -1.5}}
	labels := []int{1, 0}
	// Parameters as flat row-major slices: w1 [4,3], b1 [4], w2 [2,4], b2 [2].
	ref := [][]float64{
		{0.2, -0.1, 0.4, -0.3, 0.5, 0.1, 0.6, 0.2, -0.2, -0.1, -0.4, 0.3},
		{0.1, -0.2, 0.05, 0},
		{0.3, -0.2, 0.5, 0.1, -0.4, 0.6, 0.2, -0.3},
		{0.01, -0.02},
	}
	shapes := [][2]int{{4, 3}, {1, 4}, {2, 4}, {1, 2}}
	lrs := []float64{0.1, 0.1, 0.05, 0.05}
	const momentum = 0.9

	params := make([]*Var, 4)
	for i, v := range ref {
		params[i] = NewParam(tensor.FromSlice(shapes[i][0], shapes[i][1], toFloat32(v)))
	}
	l1 := &Linear{Weight: params[0], Bias: params[1]}
	l2 := &Linear{Weight: params[2], Bias: params[3]}
	opt := NewSGD(momentum, 0,
		ParamGroup{Params: []*Var{params[0], params[1]}, LR: 0.1},
		ParamGroup{Params: []*Var{params[2], params[3]}, LR: 0.05})
	input := NewConst(tensor.FromSlice(2, 3, []float32{1, -2, 0.5, 0.3, 0.8, -1.5}))

	// refGrads is the hand-derived backward pass of mean cross-entropy.
	refGrads := func() [][]float64 {
		w1, b1, w2, b2 := ref[0], ref[1], ref[2], ref[3]
		g := [][]float64{make([]float64, 12), make([]float64, 4), make([]float64, 8), make([]float64, 2)}
		for n := range 2 {
			var pre, h [4]float64
			for i := range 4 {
				pre[i] = b1[i]
				for j := range 3 {
					pre[i] += w1[i*3+j] * x[n][j]
				}
				if math.Abs(pre[i]) < 1e-3 {
					t.Fatalf("pre-activation %d of sample %d is %v: too close to the ReLU kink", i, n, pre[i])
				}
				h[i] = math.Max(pre[i], 0)
			}
			var z [2]float64
			for k := range 2 {
				z[k] = b2[k]
				for i := range 4 {
					z[k] += w2[k*4+i] * h[i]
				}
			}
			zMax := math.Max(z[0], z[1])
			e0, e1 := math.Exp(z[0]-zMax), math.Exp(z[1]-zMax)
			dz := [2]float64{e0 / (e0 + e1), e1 / (e0 + e1)}
			dz[labels[n]]--
			for k := range 2 {
				dz[k] /= 2 // mean over the batch
				g[3][k] += dz[k]
				for i := range 4 {
					g[2][k*4+i] += dz[k] * h[i]
				}
			}
			for i := range 4 {
				if pre[i] <= 0 {
					continue
				}
				dPre := dz[0]*w2[i] + dz[1]*w2[4+i]
				g[1][i] += dPre
				for j := range 3 {
					g[0][i*3+j] += dPre * x[n][j]
				}
			}
		}
		return g
	}

	var bufs [][]float64
	for step := range 2 {
		g := refGrads()
		for i, gi := range g {
			if step == 0 {
				bufs = append(bufs, append([]float64(nil), gi...))
			} else {
				for k := range gi {
					bufs[i][k] = momentum*bufs[i][k] + gi[k]
				}
			}
			for k := range ref[i] {
				ref[i][k] -= lrs[i] * bufs[i][k]
			}
		}

		tp := NewTape()
		tp.Backward(tp.CrossEntropy(l2.Forward(tp, tp.ReLU(l1.Forward(tp, input))), labels))
		opt.Step()
		opt.ZeroGrad()
		for i, p := range params {
			assertClose(t, "parameter", p.Value, ref[i], 1e-6)
		}
	}
}

// TestMomentumStepVectorMatchesScalar checks that the vector kernel gives
// the scalar loop's bits, on lengths around its 16-element blocks and on
// values that expose a fused multiply-add or a changed order (ties near
// rounding boundaries, signed zeros, huge and tiny magnitudes).
func TestMomentumStepVectorMatchesScalar(t *testing.T) {
	if momentumStepBlocks(make([]float32, 16), make([]float32, 16), make([]float32, 16), 1, 1, 1) == 0 {
		t.Skip("no vector kernel on this CPU: the scalar loop does every update")
	}
	rng := NewRNG(7, 0)
	special := []float32{0, float32(math.Copysign(0, -1)), 1e-38, -3e38, 1 + 1.0/(1<<23), 0.1}
	for _, n := range []int{1, 15, 16, 17, 33, 1000} {
		value, grad, buf := make([]float32, n), make([]float32, n), make([]float32, n)
		for i := range n {
			value[i], grad[i], buf[i] = float32(rng.NormFloat64()), float32(rng.NormFloat64()), float32(rng.NormFloat64())
			if i%7 == 3 {
				grad[i] = special[i%len(special)]
			}
		}
		wantValue, wantBuf := append([]float32{}, value...), append([]float32{}, buf...)
		momentumStep(wantValue, grad, wantBuf, 0.0123, 0.9, 0.0005)
		opt := NewSGD(0.9, 0.0005)
		opt.update(value, grad, buf, 0.0123)
		for i := range n {
			if math.Float32bits(value[i]) != math.Float32bits(wantValue[i]) || math.Float32bits(buf[i]) != math.Float32bits(wantBuf[i]) {
				t.Fatalf("n %d, element %d: value %v buf %v, scalar loop %v %v", n, i, value[i], buf[i], wantValue[i], wantBuf[i])
			}
		}
	}
}
