package nn

import (
	"fmt"
	"math"

	"github.com/unimos/unimos/tensor"
)

// BatchNorm1d normalises each feature (column) of a batch [N, C] and applies
// a learned affine map, as torch.nn.BatchNorm1d with its defaults:
//
//	training:   y = Gamma·(x - mean_B)/√(var_B + Eps) + Beta, with the batch mean
//	            and biased batch variance; then the running statistics move
//	            by Momentum towards the batch mean and the unbiased variance.
//	evaluation: the same with RunningMean and RunningVar in place of the
//	            batch statistics.
type BatchNorm1d struct {
	Gamma, Beta *Var // [1, C], initially 1 and 0

	RunningMean, RunningVar []float32 // [C], initially 0 and 1
	Momentum, Eps           float32   // 0.1 and 1e-5
	Train                   bool      // a new layer is in training mode
}

// NewBatchNorm1d returns a layer over the given number of features, in
// training mode.
func NewBatchNorm1d(features int) *BatchNorm1d {
	gamma := tensor.New(1, features)
	fill(gamma, 1)
	runningVar := make([]float32, features)
	for j := range runningVar {
		runningVar[j] = 1
	}
	return &BatchNorm1d{
		Gamma: NewParam(gamma), Beta: NewParam(tensor.New(1, features)),
		RunningMean: make([]float32, features), RunningVar: runningVar,
		Momentum: 0.1, Eps: 1e-5, Train: true,
	}
}

// Forward normalises x [N, C]. In training mode it needs N ≥ 2 and updates
// the running statistics.
func (b *BatchNorm1d) Forward(t *Tape, x *Var) *Var {
	n, c := x.Value.Rows, x.Value.Cols
	if c != len(b.RunningMean) {
		panic(fmt.Sprintf("nn.BatchNorm1d: %d features, layer has %d", c, len(b.RunningMean)))
	}
	mean, invStd := t.buffer(1, c), t.buffer(1, c)
	if !b.Train {
		for j := range c {
			mean.Data[j] = b.RunningMean[j]
			invStd.Data[j] = float32(1 / math.Sqrt(float64(b.RunningVar[j])+float64(b.Eps)))
		}
		return t.normalizeColumns(x, mean, invStd, b.Gamma, b.Beta, false)
	}
	if n < 2 {
		panic(fmt.Sprintf("nn.BatchNorm1d: training needs at least 2 rows, got %d", n))
	}
	for j := range c {
		var s, ss float64
		for i := range n {
			s += float64(x.Value.At(i, j))
		}
		mu := s / float64(n)
		for i := range n {
			d := float64(x.Value.At(i, j)) - mu
			ss += d * d
		}
		variance := ss / float64(n)
		mean.Data[j] = float32(mu)
		invStd.Data[j] = float32(1 / math.Sqrt(variance+float64(b.Eps)))
		m := b.Momentum
		b.RunningMean[j] = (1-m)*b.RunningMean[j] + m*float32(mu)
		b.RunningVar[j] = (1-m)*b.RunningVar[j] + m*float32(ss/float64(n-1))
	}
	return t.normalizeColumns(x, mean, invStd, b.Gamma, b.Beta, true)
}

// Params returns Gamma, Beta.
func (b *BatchNorm1d) Params() []*Var { return []*Var{b.Gamma, b.Beta} }

// SetTrain selects batch statistics (true) or running statistics (false).
func (b *BatchNorm1d) SetTrain(train bool) { b.Train = train }

// normalizeColumns returns gamma·(x - mean)·invStd + beta column-wise
// (mean, invStd, gamma, beta [1, C]). batchStats says that mean and invStd
// are x's own column statistics, so that gradient flows through them too.
func (t *Tape) normalizeColumns(x *Var, mean, invStd *tensor.Matrix, gamma, beta *Var, batchStats bool) *Var {
	n, c := x.Value.Rows, x.Value.Cols
	out := t.result(n, c, x, gamma, beta)
	xHat := t.buffer(n, c) // (x - mean)·invStd
	gammaRow, betaRow := gamma.Value.Row(0), beta.Value.Row(0)
	for i := range n {
		xr, hr, or := x.Value.Row(i), xHat.Row(i), out.Value.Row(i)
		for j, v := range xr {
			hr[j] = (v - mean.Data[j]) * invStd.Data[j]
			or[j] = gammaRow[j]*hr[j] + betaRow[j]
		}
	}
	t.record(out, func(g *tensor.Matrix) {
		if gb := t.gradOf(beta); gb != nil {
			columnSumInto(gb.Row(0), g, 1)
		}
		// Σ_i g and Σ_i g·x̂ per column serve both Gamma's gradient and x's.
		gSum, gHatSum := t.buffer(1, c).Data, t.buffer(1, c).Data
		for i := range n {
			gr, hr := g.Row(i), xHat.Row(i)
			for j := range c {
				gSum[j] += gr[j]
				gHatSum[j] += gr[j] * hr[j]
			}
		}
		if gg := t.gradOf(gamma); gg != nil {
			for j, v := range gHatSum {
				gg.Data[j] += v
			}
		}
		gx := t.gradOf(x)
		if gx == nil {
			return
		}
		// With batch statistics: dx = γ·invStd·(g - mean(g) - x̂·mean(g·x̂)).
		for i := range n {
			gr, hr, gxr := g.Row(i), xHat.Row(i), gx.Row(i)
			for j := range c {
				d := gr[j]
				if batchStats {
					d -= (gSum[j] + hr[j]*gHatSum[j]) / float32(n)
				}
				gxr[j] += gammaRow[j] * invStd.Data[j] * d
			}
		}
	})
	return out
}
