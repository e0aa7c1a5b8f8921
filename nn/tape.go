// Package nn is a small reverse-mode automatic differentiation engine over
// float32 matrices, with the layers, losses and SGD optimizer that UniMoS
// trains with.
//
// A Tape records operations as they run (Tape.MatMul, Tape.Add, ...; each
// returns a new *Var) and Tape.Backward walks them in reverse to fill the
// Grad of every parameter the loss depends on:
//
//	tape := nn.NewTape()
//	h := layer.Forward(tape, nn.NewConst(x))   // [N, out]
//	loss := tape.CrossEntropy(h, labels)        // [1, 1]
//	tape.Backward(loss)                         // accumulates into parameter Grads
//	opt.Step()
//	opt.ZeroGrad()
//	tape.Reset()                                // recycle the buffers for the next batch
//
// Parameters (NewParam) are persistent leaves whose Grad accumulates across
// Backward calls until zeroed, so two losses may be differentiated one after
// the other on the same graph. Ops keep references, not copies, to the
// values their backward pass reads, as PyTorch does: parameters and
// constants must not change between the forward pass and the last Backward
// on it. A change to a parameter there (an optimizer step before Backward)
// is detected and panics rather than giving the gradient at mixed values.
//
// A Tape is not safe for concurrent use.
package nn

import (
	"fmt"

	"github.com/unimos/unimos/tensor"
)

// Var is a matrix-valued node of a computation graph.
type Var struct {
	Value *tensor.Matrix
	// Grad is d(loss)/d(Value). For an op result it is set by the latest
	// Backward that reached the Var (nil otherwise); for a parameter it is
	// persistent and accumulates across Backward calls until ZeroGrad.
	Grad *tensor.Matrix

	requiresGrad bool
	// param marks a trainable leaf (NewParam); frozen points to the
	// parameter that a Detach of it reads. Tapes note the version of both
	// when an op first reads them.
	param  bool
	frozen *Var
	// version counts the changes of a parameter's Value: optimizer steps
	// and Changed calls.
	version uint64
	// packed holds a parameter's Value in the panels of products with its
	// transpose (a Linear layer's x·Wᵀ). Only an optimizer step writes it,
	// for the parameters such a product has read (transposed), so a Value
	// written by other code before any step cannot be multiplied stale; it
	// is current while packedVersion equals version.
	packed        *tensor.Packed
	packedVersion uint64
	transposed    bool
}

// NewParam returns a trainable leaf holding value (compact: Stride == Cols),
// with a zeroed gradient of the same shape. The Var takes ownership of value.
func NewParam(value *tensor.Matrix) *Var {
	if value.Stride != value.Cols {
		panic(fmt.Sprintf("nn.NewParam: value must be compact, has stride %d for %d columns", value.Stride, value.Cols))
	}
	return &Var{Value: value, Grad: tensor.New(value.Rows, value.Cols), requiresGrad: true, param: true}
}

// NewConst returns a leaf that receives no gradient: input data, targets,
// fixed class embeddings.
func NewConst(value *tensor.Matrix) *Var { return &Var{Value: value} }

// Detach returns v's value as a new leaf that receives no gradient
// (stop-gradient): nothing computed from the result sends gradient back to v.
// Detaching a parameter freezes it for the ops that read the result.
func Detach(v *Var) *Var {
	frozen := v.frozen
	if v.param {
		frozen = v
	}
	return &Var{Value: v.Value, frozen: frozen}
}

// Changed records that a parameter's Value was written other than by an
// optimizer step (re-initialised, restored from a checkpoint): products
// stop using the panels the last step packed (the next step repacks them),
// and a tape that read the old value refuses to differentiate it.
func (v *Var) Changed() { v.version++ }

// panelsForTransposed notes that a product multiplies by v's transpose and
// returns the panels of the parameter v is or reads (a Detach) when an
// optimizer step made them from its current Value; nil otherwise.
func (v *Var) panelsForTransposed() *tensor.Packed {
	p := v.frozen
	if v.param {
		p = v
	}
	if p == nil {
		return nil
	}
	p.transposed = true
	if p.packed == nil || p.packedVersion != p.version {
		return nil
	}
	return p.packed
}

// RequiresGrad reports whether a backward pass sends gradient to v, that is
// whether v is a parameter or computed from one without a Detach in between.
func (v *Var) RequiresGrad() bool { return v.requiresGrad }

// ZeroGrad sets v's gradient to zero, if it has one.
func (v *Var) ZeroGrad() {
	if v.Grad != nil {
		fill(v.Grad, 0)
	}
}

// Scalar returns the value of a 1x1 Var, such as a loss.
func (v *Var) Scalar() float32 {
	if v.Value.Rows != 1 || v.Value.Cols != 1 {
		panic(fmt.Sprintf("nn.Var.Scalar: value is %dx%d, not 1x1", v.Value.Rows, v.Value.Cols))
	}
	return v.Value.Data[0]
}

// step is one recorded op: its result and the function that, given the
// result's gradient g, adds the op's contribution to its inputs' gradients.
type step struct {
	out      *Var
	backward func(g *tensor.Matrix)
}

// Tape records ops in the order they run and differentiates them in reverse.
// It also owns every op result's storage: Reset hands all of it back for
// reuse, so a training loop that calls Reset once per batch stops allocating
// large buffers after the first batch.
type Tape struct {
	// NoGrad makes the tape record nothing, as torch.no_grad(): results need
	// no gradient, ops record no backward pass, and Backward does nothing.
	// Set it for evaluation.
	NoGrad bool

	steps []step
	// params are the parameters that recorded ops read, in first-use order;
	// versions holds the version of each parameter (frozen ones included)
	// when an op first read it; fresh marks the parameters whose gradient
	// BackwardFresh has yet to write.
	params   []*Var
	versions map[*Var]uint64
	fresh    map[*Var]bool
	free     map[int][]*tensor.Matrix // unused buffers by element count
	lent     []*tensor.Matrix         // buffers handed out since the last Reset
}

// NewTape returns an empty tape. The zero Tape is empty too.
func NewTape() *Tape { return &Tape{} }

// Reset forgets every recorded op and recycles all storage the tape handed
// out. Every Var the tape produced becomes invalid: Clone values to keep them.
func (t *Tape) Reset() {
	if t.free == nil {
		t.free = map[int][]*tensor.Matrix{}
	}
	for _, m := range t.lent {
		n := len(m.Data)
		t.free[n] = append(t.free[n], m)
	}
	t.lent = t.lent[:0]
	clear(t.steps) // drop the closures' references
	t.steps = t.steps[:0]
	clear(t.params)
	t.params = t.params[:0]
	clear(t.versions)
}

// Backward computes d(loss)/d(x) for every Var x recorded on the tape that
// loss depends on, and adds it to the Grad of every parameter reached.
// loss must be 1x1. Gradients of op results from an earlier Backward on the
// same tape are discarded first; parameter gradients are not.
func (t *Tape) Backward(loss *Var) {
	if loss.Value.Rows != 1 || loss.Value.Cols != 1 {
		panic(fmt.Sprintf("nn.Tape.Backward: loss is %dx%d, not 1x1", loss.Value.Rows, loss.Value.Cols))
	}
	seed := t.buffer(1, 1)
	seed.Data[0] = 1
	t.backward(loss, seed)
}

// BackwardFresh is Backward with parameter gradients overwritten instead of
// accumulated: afterwards every parameter that an op on the tape read holds
// exactly d(loss)/d(parameter), zero where loss does not depend on it. It
// saves the caller a ZeroGrad, and a matrix product that computes a weight's
// gradient writes it without first reading the old one: a pass and a half
// over every weight's memory per call.
func (t *Tape) BackwardFresh(loss *Var) {
	if t.fresh == nil {
		t.fresh = map[*Var]bool{}
	}
	for _, p := range t.params {
		t.fresh[p] = true
	}
	t.Backward(loss)
	for p := range t.fresh {
		fill(p.Grad, 0)
	}
	clear(t.fresh)
}

// backward runs the reverse pass from out with d(loss)/d(out) = seed.
func (t *Tape) backward(out *Var, seed *tensor.Matrix) {
	for p, v := range t.versions {
		if p.version != v {
			panic("nn.Tape.Backward: a parameter changed after the forward pass read it " +
				"(an optimizer step before Backward?); differentiate first, then step")
		}
	}
	for _, s := range t.steps {
		s.out.Grad = nil
	}
	if g := t.gradOf(out); g != nil {
		addScaled(g, seed, 1)
	}
	for i := len(t.steps) - 1; i >= 0; i-- {
		if s := t.steps[i]; s.out.Grad != nil {
			s.backward(s.out.Grad)
		}
	}
}

// buffer returns a zeroed rows x cols matrix owned by the tape until Reset.
func (t *Tape) buffer(rows, cols int) *tensor.Matrix { return t.take(rows, cols, true) }

// take returns a rows x cols matrix owned by the tape until Reset, zeroed
// when zero is set; otherwise a recycled buffer keeps old values, which
// saves a pass over memory where the caller overwrites every element.
func (t *Tape) take(rows, cols int, zero bool) *tensor.Matrix {
	n := rows * cols
	list := t.free[n]
	var m *tensor.Matrix
	if len(list) > 0 {
		m = list[len(list)-1]
		t.free[n] = list[:len(list)-1]
		m.Rows, m.Cols, m.Stride = rows, cols, cols
		if zero {
			clear(m.Data)
		}
	} else {
		m = tensor.New(rows, cols)
	}
	t.lent = append(t.lent, m)
	return m
}

// result returns a new, zeroed op result of the given shape; it needs a
// gradient when any of the inputs does.
func (t *Tape) result(rows, cols int, inputs ...*Var) *Var {
	return t.newResult(rows, cols, true, inputs)
}

// newResult is result, leaving a recycled buffer's old values in place
// unless zero is set.
func (t *Tape) newResult(rows, cols int, zero bool, inputs []*Var) *Var {
	out := &Var{Value: t.take(rows, cols, zero)}
	if !t.NoGrad {
		t.noteParams(inputs)
	}
	for _, in := range inputs {
		out.requiresGrad = out.requiresGrad || t.needsGrad(in)
	}
	return out
}

// noteParams remembers the parameters among an op's inputs, for
// BackwardFresh, and the versions of those and of frozen parameters.
func (t *Tape) noteParams(inputs []*Var) {
	for _, in := range inputs {
		p := in.frozen
		if in.param {
			p = in
		}
		if p == nil {
			continue
		}
		if _, seen := t.versions[p]; seen {
			continue
		}
		if t.versions == nil {
			t.versions = map[*Var]uint64{}
		}
		t.versions[p] = p.version
		if in.param {
			t.params = append(t.params, p)
		}
	}
}

// needsGrad reports whether ops on t must prepare gradient for v.
func (t *Tape) needsGrad(v *Var) bool { return v.requiresGrad && !t.NoGrad }

// record appends out's backward function to the tape, unless no gradient
// can flow through out.
func (t *Tape) record(out *Var, backward func(g *tensor.Matrix)) {
	if out.requiresGrad {
		t.steps = append(t.steps, step{out: out, backward: backward})
	}
}

// gradOf returns the gradient buffer that v's gradient is added to, creating
// a zeroed one for an op result, or nil when v needs no gradient.
func (t *Tape) gradOf(v *Var) *tensor.Matrix {
	g, beta := t.gradInto(v)
	if g != nil && beta == 0 {
		fill(g, 0)
	}
	return g
}

// gradInto returns v's gradient buffer (nil when v needs no gradient) and
// the factor its contents keep when v's gradient is added: 0 for a
// parameter's first contribution in BackwardFresh, whose stale contents the
// caller must overwrite, else 1.
func (t *Tape) gradInto(v *Var) (*tensor.Matrix, float32) {
	if !v.requiresGrad {
		return nil, 0
	}
	if v.Grad == nil {
		v.Grad = t.buffer(v.Value.Rows, v.Value.Cols)
	}
	if t.fresh[v] {
		delete(t.fresh, v)
		return v.Grad, 0
	}
	return v.Grad, 1
}
