package unimos

import (
	"github.com/unimos/unimos/nn"
	"github.com/unimos/unimos/tensor"
)

// Model holds the trainable modules of UniMoS (section 2) and the fixed
// text classifier they are scored against. Shapes: d = image embedding
// dimension, K = classes, b = bottleneck dimension (256).
type Model struct {
	// TextSeparator (G_txt) maps an image embedding [N, d] to its
	// language-associated component f_lac [N, d].
	TextSeparator *nn.Linear
	// VisionSeparator (G_vis) maps it to the vision-associated component f_vac [N, d].
	VisionSeparator *nn.Linear
	// Bottleneck (Φ1) is Linear d→b followed by BottleneckNorm.
	Bottleneck     *nn.Linear
	BottleneckNorm *nn.BatchNorm1d
	// Classifier (Φ2) is the weight-normalised Linear b→K giving the VAC logits.
	Classifier *nn.WeightNormLinear
	// WeightHidden and WeightOut form the MET weight generator W: target
	// f_vac [N, d] → [N, b] → [N, 1] → sigmoid (the reference has no
	// activation between the two layers).
	WeightHidden, WeightOut *nn.Linear
	// DiscriminatorHidden, DiscriminatorDropout and DiscriminatorOut form
	// the modality discriminator D: [N, d] → ReLU → Dropout(0.5) → [N, 1] logit.
	DiscriminatorHidden  *nn.Linear
	DiscriminatorDropout *nn.Dropout
	DiscriminatorOut     *nn.Linear

	// Text is the target domain's unit-norm text classifier µ̂ [K, d]. Fixed.
	Text *tensor.Matrix

	cosineLAC  bool
	logitScale float32
}

// newModel initialises every module as the reference does: PyTorch's
// default Linear initialisation except for the bottleneck (xavier normal
// weight, zero bias) and the classifier's bias (zero).
func newModel(cfg Config, text *tensor.Matrix, initRNG, dropoutRNG *nn.RNG) *Model {
	d, k, b := text.Cols, text.Rows, cfg.BottleneckDim
	m := &Model{
		TextSeparator:        nn.NewLinear(d, d, initRNG),
		VisionSeparator:      nn.NewLinear(d, d, initRNG),
		Bottleneck:           nn.NewLinear(d, b, initRNG),
		BottleneckNorm:       nn.NewBatchNorm1d(b),
		Classifier:           nn.NewWeightNormLinear(b, k, initRNG),
		WeightHidden:         nn.NewLinear(d, b, initRNG),
		WeightOut:            nn.NewLinear(b, 1, initRNG),
		DiscriminatorHidden:  nn.NewLinear(d, b, initRNG),
		DiscriminatorDropout: &nn.Dropout{P: 0.5, RNG: dropoutRNG},
		DiscriminatorOut:     nn.NewLinear(b, 1, initRNG),
		Text:                 text,
		cosineLAC:            cfg.Variants.CosineLAC,
		logitScale:           float32(cfg.LogitScale),
	}
	nn.InitXavierNormal(m.Bottleneck.Weight.Value, initRNG)
	clear(m.Bottleneck.Bias.Value.Data)
	clear(m.Classifier.Bias.Value.Data)
	return m
}

// SetTrain switches the modules with a training mode (BatchNorm, Dropout).
func (m *Model) SetTrain(train bool) {
	m.BottleneckNorm.SetTrain(train)
	m.DiscriminatorDropout.SetTrain(train)
}

// Separate splits image embeddings x [N, d] into the vision- and
// language-associated components f_vac, f_lac [N, d].
func (m *Model) Separate(t *nn.Tape, x *nn.Var) (vac, lac *nn.Var) {
	return m.VisionSeparator.Forward(t, x), m.TextSeparator.Forward(t, x)
}

// BottleneckFeatures returns Φ1(f_vac) [N, b].
func (m *Model) BottleneckFeatures(t *nn.Tape, vac *nn.Var) *nn.Var {
	return m.BottleneckNorm.Forward(t, m.Bottleneck.Forward(t, vac))
}

// VisionLogits returns the VAC logits Φ2 of bottleneck features [N, b]: [N, K].
func (m *Model) VisionLogits(t *nn.Tape, bottleneck *nn.Var) *nn.Var {
	return m.Classifier.Forward(t, bottleneck)
}

// LanguageLogits returns the LAC logits scale·f_lac·µ̂ᵀ [N, K]. The reference
// code does not normalise f_lac (section 9); the CosineLAC variant does.
func (m *Model) LanguageLogits(t *nn.Tape, lac *nn.Var) *nn.Var {
	if m.cosineLAC {
		lac = t.NormalizeRows(lac)
	}
	return t.Scale(t.MatMul(false, true, lac, nn.NewConst(m.Text)), m.logitScale)
}

// METWeight returns the MET weight w [1, 1]: the batch mean of
// sigmoid(W(f_vac)) over target rows f_vac [N, d].
func (m *Model) METWeight(t *nn.Tape, targetVAC *nn.Var) *nn.Var {
	return t.Mean(t.Sigmoid(m.WeightOut.Forward(t, m.WeightHidden.Forward(t, targetVAC))))
}

// Discriminate returns the modality discriminator's logits [N, 1] for
// components x [N, d] (high = language-associated). A frozen discriminator
// passes gradient to x but not to its own parameters.
func (m *Model) Discriminate(t *nn.Tape, x *nn.Var, frozen bool) *nn.Var {
	hidden, out := m.DiscriminatorHidden, m.DiscriminatorOut
	if frozen {
		hidden, out = hidden.Frozen(), out.Frozen()
	}
	h := m.DiscriminatorDropout.Forward(t, t.ReLU(hidden.Forward(t, x)))
	return out.Forward(t, h)
}

// resetWeightGenerator re-initialises each of W's four tensors with
// probability p (weights xavier uniform, biases zero), as the reference's
// reset_random_parameters at the start of every epoch (section 3.2).
func (m *Model) resetWeightGenerator(p float64, rng *nn.RNG) {
	for _, layer := range []*nn.Linear{m.WeightHidden, m.WeightOut} {
		if rng.Float64() < p {
			nn.InitXavierUniform(layer.Weight.Value, rng)
			layer.Weight.Changed()
		}
		if rng.Float64() < p {
			clear(layer.Bias.Value.Data)
			layer.Bias.Changed()
		}
	}
}

// Params returns every trainable parameter with a stable name, in a fixed order.
func (m *Model) Params() []NamedParam {
	var out []NamedParam
	add := func(prefix string, names []string, vs []*nn.Var) {
		for i, v := range vs {
			out = append(out, NamedParam{prefix + "." + names[i], v})
		}
	}
	linear := []string{"weight", "bias"}
	add("text_separator", linear, m.TextSeparator.Params())
	add("vision_separator", linear, m.VisionSeparator.Params())
	add("bottleneck", linear, m.Bottleneck.Params())
	add("bottleneck_norm", []string{"weight", "bias"}, m.BottleneckNorm.Params())
	add("classifier", []string{"weight_v", "weight_g", "bias"}, m.Classifier.Params())
	add("weight_generator.hidden", linear, m.WeightHidden.Params())
	add("weight_generator.out", linear, m.WeightOut.Params())
	add("discriminator.hidden", linear, m.DiscriminatorHidden.Params())
	add("discriminator.out", linear, m.DiscriminatorOut.Params())
	return out
}

// NamedParam is a parameter and its name in saved models.
type NamedParam struct {
	Name string
	Var  *nn.Var
}
