package nn

import "testing"

// BenchmarkMLPStep times one training step of a 64-row batch through
// Linear 1024→512, ReLU, 512→512, ReLU, 512→256, ReLU, 256→65 with
// cross-entropy: forward, backward, SGD-momentum step, ZeroGrad, Reset.
func BenchmarkMLPStep(b *testing.B) {
	rng := NewRNG(50, 0)
	net := Sequential{
		NewLinear(1024, 512, rng), ReLU{},
		NewLinear(512, 512, rng), ReLU{},
		NewLinear(512, 256, rng), ReLU{},
		NewLinear(256, 65, rng),
	}
	x := NewConst(randMatrix(rng, 64, 1024, -1, 1))
	labels := make([]int, 64)
	for i := range labels {
		labels[i] = rng.IntN(65)
	}
	opt := NewSGD(0.9, 0, ParamGroup{Params: net.Params(), LR: 0.003})
	tp := NewTape()
	b.ReportAllocs()
	for b.Loop() {
		tp.Backward(tp.CrossEntropy(net.Forward(tp, x), labels))
		opt.Step()
		opt.ZeroGrad()
		tp.Reset()
	}
}
