package nn

import (
	"math"

	"github.com/unimos/unimos/tensor"
)

// Layer is a differentiable function of a batch [N, in] with parameters.
type Layer interface {
	// Forward records the layer's computation on t and returns its output.
	Forward(t *Tape, x *Var) *Var
	// Params returns the layer's parameters in a fixed order.
	Params() []*Var
}

// modal is a layer that behaves differently in training and evaluation.
type modal interface {
	SetTrain(train bool)
}

// Sequential applies its layers in order.
type Sequential []Layer

// Forward feeds x through every layer.
func (s Sequential) Forward(t *Tape, x *Var) *Var {
	for _, l := range s {
		x = l.Forward(t, x)
	}
	return x
}

// Params returns all layers' parameters, layer by layer.
func (s Sequential) Params() []*Var {
	var ps []*Var
	for _, l := range s {
		ps = append(ps, l.Params()...)
	}
	return ps
}

// SetTrain switches every layer that has a training mode (BatchNorm1d,
// Dropout) to training (true) or evaluation (false).
func (s Sequential) SetTrain(train bool) {
	for _, l := range s {
		if m, ok := l.(modal); ok {
			m.SetTrain(train)
		}
	}
}

// Linear is the affine map y = x·Wᵀ + b, W [out, in], b [1, out], as
// torch.nn.Linear.
type Linear struct {
	Weight, Bias *Var
}

// NewLinear returns a Linear layer with PyTorch's default initialisation:
// W and b from U(-1/√in, 1/√in). For other schemes overwrite Weight.Value
// with InitXavierNormal or InitXavierUniform (and Bias.Value as wanted).
func NewLinear(in, out int, rng *RNG) *Linear {
	l := &Linear{Weight: NewParam(tensor.New(out, in)), Bias: NewParam(tensor.New(1, out))}
	bound := 1 / math.Sqrt(float64(in))
	InitUniform(l.Weight.Value, bound, rng)
	InitUniform(l.Bias.Value, bound, rng)
	return l
}

// Forward returns x·Wᵀ + b for x [N, in].
func (l *Linear) Forward(t *Tape, x *Var) *Var {
	return t.AddRow(t.MatMul(false, true, x, l.Weight), l.Bias)
}

// Params returns Weight, Bias.
func (l *Linear) Params() []*Var { return []*Var{l.Weight, l.Bias} }

// Frozen returns the layer with its parameters detached: the same function,
// through which gradient reaches the input but not the weights.
func (l *Linear) Frozen() *Linear { return &Linear{Weight: Detach(l.Weight), Bias: Detach(l.Bias)} }

// WeightNormLinear is a Linear layer whose weight is re-parametrised per
// output row as W_i = g_i · v_i/‖v_i‖ (torch.nn.utils.weight_norm, dim 0):
// gradients reach the direction V [out, in] and the length G [out, 1].
type WeightNormLinear struct {
	V, G, Bias *Var
}

// NewWeightNormLinear returns a weight-normalised Linear layer initialised as
// weight_norm(nn.Linear(in, out)) is: V and Bias from PyTorch's default
// Linear initialisation, G = ‖V_i‖, so that W = V at the start.
func NewWeightNormLinear(in, out int, rng *RNG) *WeightNormLinear {
	base := NewLinear(in, out, rng)
	g := tensor.New(out, 1)
	for i := range out {
		g.Data[i] = float32(norm2(base.Weight.Value.Row(i)))
	}
	return &WeightNormLinear{V: base.Weight, G: NewParam(g), Bias: base.Bias}
}

// Forward returns x·Wᵀ + b with W = G·V/‖V‖ row by row, for x [N, in].
func (l *WeightNormLinear) Forward(t *Tape, x *Var) *Var {
	w := t.ScaleRows(t.NormalizeRows(l.V), l.G)
	return t.AddRow(t.MatMul(false, true, x, w), l.Bias)
}

// Params returns V, G, Bias.
func (l *WeightNormLinear) Params() []*Var { return []*Var{l.V, l.G, l.Bias} }

// ReLU is the layer form of Tape.ReLU.
type ReLU struct{}

// Forward returns max(x, 0).
func (ReLU) Forward(t *Tape, x *Var) *Var { return t.ReLU(x) }

// Params returns nil.
func (ReLU) Params() []*Var { return nil }

// Sigmoid is the layer form of Tape.Sigmoid.
type Sigmoid struct{}

// Forward returns 1/(1+exp(-x)).
func (Sigmoid) Forward(t *Tape, x *Var) *Var { return t.Sigmoid(x) }

// Params returns nil.
func (Sigmoid) Params() []*Var { return nil }

// Dropout zeroes elements with probability P in training, drawing masks from
// RNG, and is the identity in evaluation. A new Dropout is in evaluation mode.
type Dropout struct {
	P     float32
	Train bool
	RNG   *RNG
}

// Forward applies dropout to x in training mode; it returns x in evaluation.
func (d *Dropout) Forward(t *Tape, x *Var) *Var {
	if !d.Train {
		return x
	}
	return t.Dropout(x, d.P, d.RNG)
}

// Params returns nil.
func (d *Dropout) Params() []*Var { return nil }

// SetTrain selects training (true) or evaluation (false) behaviour.
func (d *Dropout) SetTrain(train bool) { d.Train = train }
