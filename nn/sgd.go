package nn

import (
	"math"

	"github.com/unimos/unimos/tensor"
)

// ParamGroup is a set of parameters trained with one learning rate.
type ParamGroup struct {
	Params []*Var
	LR     float32
}

// SGD is stochastic gradient descent with momentum, as torch.optim.SGD
// without dampening or Nesterov: for each parameter p with gradient g,
//
//	d = g + WeightDecay·p
//	buf = d on the first step, Momentum·buf + d after
//	p -= LR·buf
//
// Every parameter is updated at every Step (PyTorch skips parameters whose
// .grad is None; here a parameter that received nothing has a zero Grad).
type SGD struct {
	Groups      []ParamGroup
	Momentum    float32
	WeightDecay float32

	buf map[*Var]*tensor.Matrix // momentum buffers, created zero on first step
}

// NewSGD returns an optimizer over groups.
func NewSGD(momentum, weightDecay float32, groups ...ParamGroup) *SGD {
	return &SGD{Groups: groups, Momentum: momentum, WeightDecay: weightDecay, buf: map[*Var]*tensor.Matrix{}}
}

// SetLR sets the learning rate of every group.
func (o *SGD) SetLR(lr float32) {
	for i := range o.Groups {
		o.Groups[i].LR = lr
	}
}

// sgdChunk is about the number of elements of one piece of the update (and
// of the repacking that goes with it): a large model's step is worth
// spreading over the cores, in pieces small enough to stay in cache between
// the update and the repacking.
const sgdChunk = 1 << 15

// Step updates every parameter from its Grad. A weight that products
// multiply transposed (nn.Linear's x·Wᵀ) gets its panels refreshed in the
// same pass, each chunk of rows repacked right after its update, while its
// new values are still in cache, instead of packed again by every product
// until the next step (the first step packs it whole).
func (o *SGD) Step() {
	var chunks []func() // independent updates of rows of one parameter each
	var first []*Var    // weights packed for the first time, after their update
	for _, g := range o.Groups {
		for _, p := range g.Params {
			var packed *tensor.Packed
			switch {
			case !p.transposed:
			case p.packed == nil || p.packed.W != p.Value: // never packed, or Value replaced
				first = append(first, p)
			default:
				packed = p.packed
			}
			p.version++
			rows := max(1, sgdChunk/max(1, p.Value.Cols))
			if packed != nil {
				p.packedVersion = p.version
				align := packed.RowAlign()
				rows = max(align, rows/align*align) // each panel repacked by one chunk
			}
			value, grad, buf := p.Value.Data, p.Grad.Data, o.momentumBuffer(p)
			for r0 := 0; r0 < p.Value.Rows; r0 += rows {
				r1 := min(r0+rows, p.Value.Rows)
				lo, hi := r0*p.Value.Cols, r1*p.Value.Cols
				var chunkBuf []float32
				if buf != nil {
					chunkBuf = buf[lo:hi]
				}
				chunks = append(chunks, func() {
					o.update(value[lo:hi], grad[lo:hi], chunkBuf, g.LR)
					if packed != nil {
						packed.Repack(r0, r1)
					}
				})
			}
		}
	}
	tensor.ParallelRanges(len(chunks), sgdChunk, func(lo, hi int) { // on up to tensor.Threads() cores
		for _, update := range chunks[lo:hi] {
			update()
		}
	})
	for _, p := range first {
		p.packed, p.packedVersion = tensor.Pack(p.Value), p.version
	}
}

// momentumBuffer returns p's momentum buffer, creating it zeroed on p's
// first step, or nil without momentum.
func (o *SGD) momentumBuffer(p *Var) []float32 {
	if o.Momentum == 0 {
		return nil
	}
	buf, ok := o.buf[p]
	if !ok {
		buf = tensor.New(p.Value.Rows, p.Value.Cols)
		o.buf[p] = buf
	}
	return buf.Data
}

// update applies one step to a parameter's values, gradient and momentum
// buffer (nil without momentum). A new buffer is zero, and m·0 + d = d
// exactly, so the first step needs no special case.
func (o *SGD) update(value, grad, buf []float32, lr float32) {
	wd, m := o.WeightDecay, o.Momentum
	value = value[:len(grad)]
	if m == 0 {
		for k, g := range grad {
			value[k] -= lr * (g + wd*value[k])
		}
		return
	}
	done := momentumStepBlocks(value, grad, buf, lr, m, wd)
	momentumStep(value[done:], grad[done:], buf[done:len(grad)], lr, m, wd)
}

// momentumStep is the update with momentum, element by element:
// d = momentum·buf + (grad + weightDecay·value), buf = d, value −= lr·d.
// The conversions round every product on its own, as the vector kernel
// does, so that no compiler fuses them into FMAs.
func momentumStep(value, grad, buf []float32, lr, momentum, weightDecay float32) {
	for k, g := range grad {
		d := float32(momentum*buf[k]) + (g + float32(weightDecay*value[k]))
		buf[k] = d
		value[k] -= float32(lr * d)
	}
}

// ZeroGrad sets the gradient of every parameter to zero.
func (o *SGD) ZeroGrad() {
	for _, g := range o.Groups {
		for _, p := range g.Params {
			p.ZeroGrad()
		}
	}
}

// MomentumBuffer returns p's momentum buffer, or nil before p's first step.
// Checkpoints save it; writing into it changes the optimizer's state.
func (o *SGD) MomentumBuffer(p *Var) *tensor.Matrix { return o.buf[p] }

// SetMomentumBuffer replaces p's momentum buffer (a copy is stored), as when
// resuming from a checkpoint; nil makes p's next step a first step.
func (o *SGD) SetMomentumBuffer(p *Var, buf *tensor.Matrix) {
	if buf == nil {
		delete(o.buf, p)
		return
	}
	o.buf[p] = buf.Clone()
}

// InvLR is the "inv" learning-rate schedule lr0·(1 + gamma·iter)^(-power);
// UniMoS uses gamma 0.001 and power 0.75 with iter the global iteration.
func InvLR(lr0 float64, iter int, gamma, power float64) float64 {
	return lr0 * math.Pow(1+gamma*float64(iter), -power)
}
