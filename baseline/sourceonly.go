package baseline

import (
	"fmt"

	"github.com/unimos/unimos/nn"
	"github.com/unimos/unimos/tensor"
)

// ProbeConfig sets up the source-only linear probe.
type ProbeConfig struct {
	Epochs    int     // passes over the source
	BatchSize int     // rows per SGD step
	LR        float64 // initial learning rate of the inverse schedule
	Momentum  float64
	Seed      uint64
}

// DefaultProbeConfig trains with the optimizer family UniMoS uses (SGD with
// momentum 0.9 and the inverse learning-rate schedule). Features are
// unit-norm, so logits start tiny: a large learning rate is what makes the
// probe converge in a few epochs.
func DefaultProbeConfig() ProbeConfig {
	return ProbeConfig{Epochs: 30, BatchSize: 32, LR: 10, Momentum: 0.9, Seed: 2023}
}

// Probe is a multinomial logistic regression on image features.
type Probe struct {
	layer *nn.Linear
}

// TrainProbe fits a linear classifier x·Wᵀ + b on labelled source features
// x [N, d] with labels in [0, classes), by minimising cross-entropy.
func TrainProbe(x *tensor.Matrix, labels []int, classes int, cfg ProbeConfig) (*Probe, error) {
	if len(labels) != x.Rows {
		return nil, fmt.Errorf("source-only probe: %d rows but %d labels", x.Rows, len(labels))
	}
	for i, y := range labels {
		if y < 0 || y >= classes {
			return nil, fmt.Errorf("source-only probe: row %d has label %d, outside [0, %d)", i, y, classes)
		}
	}
	if x.Rows < 2 || cfg.BatchSize < 1 || cfg.Epochs < 1 {
		return nil, fmt.Errorf("source-only probe: need at least 2 rows, a batch size and an epoch count (got %d rows, batch %d, %d epochs)", x.Rows, cfg.BatchSize, cfg.Epochs)
	}
	rng := nn.NewRNG(cfg.Seed, 1)
	p := &Probe{layer: nn.NewLinear(x.Cols, classes, rng)}
	opt := nn.NewSGD(float32(cfg.Momentum), 0, nn.ParamGroup{Params: p.layer.Params(), LR: float32(cfg.LR)})
	tape := nn.NewTape()
	batch := tensor.New(cfg.BatchSize, x.Cols)
	iteration := 0
	for range cfg.Epochs {
		order := rng.Perm(x.Rows)
		for lo := 0; lo < len(order); lo += cfg.BatchSize {
			idx := order[lo:min(lo+cfg.BatchSize, len(order))]
			b := batch.Slice(0, len(idx), 0, x.Cols)
			y := make([]int, len(idx))
			for r, i := range idx {
				copy(b.Row(r), x.Row(i))
				y[r] = labels[i]
			}
			tape.Reset()
			opt.SetLR(float32(nn.InvLR(cfg.LR, iteration, 0.001, 0.75)))
			iteration++
			opt.ZeroGrad()
			tape.Backward(tape.CrossEntropy(p.layer.Forward(tape, nn.NewConst(b)), y))
			opt.Step()
		}
	}
	return p, nil
}

// Logits returns the probe's logits for features x [N, d]: [N, K].
func (p *Probe) Logits(x *tensor.Matrix) *tensor.Matrix {
	tape := &nn.Tape{NoGrad: true}
	return p.layer.Forward(tape, nn.NewConst(x)).Value.Clone()
}
