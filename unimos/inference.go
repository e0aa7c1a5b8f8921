package unimos

import (
	"github.com/unimos/unimos/eval"
	"github.com/unimos/unimos/nn"
	"github.com/unimos/unimos/tensor"
)

// testOutputs are the model's test-time outputs on target rows (section 5).
type testOutputs struct {
	epoch      int
	mix        float64        // weight l_e of the vision logits in the ensemble
	vision     *tensor.Matrix // VAC logits [N, K]
	language   *tensor.Matrix // LAC logits as the ensemble uses them [N, K]
	bottleneck *tensor.Matrix // Φ1 features [N, b]
	probs      *tensor.Matrix // softmax of the ensemble [N, K]
}

// infer tests model m on target features x [N, d] in evaluation mode as the
// reference's `test` does after epoch (−1: before training): the ensemble is
// softmax(l_e·VAC + (1−l_e)·LAC) with the LAC logits debiased by the class
// prior p̂, except that up to the end of epoch 0 the language term is the
// zero-shot teacher of x [N, K]. teacher is used only for epoch <= 0.
func infer(m *Model, cfg Config, prior classPrior, x, teacher *tensor.Matrix, epoch int) testOutputs {
	m.SetTrain(false)
	defer m.SetTrain(true)
	n, k, b := x.Rows, m.Text.Rows, cfg.BottleneckDim
	vision, language := tensor.New(n, k), tensor.New(n, k)
	bottleneck := tensor.New(n, b)
	// The reference's first test feeds the raw features to the bottleneck,
	// before any separation. After that, the separators feed only linear
	// maps at test time (Φ1's Linear, the product with µ̂), so each pair is
	// composed into one map: N·d·(b+K) multiply-adds instead of N·d·(2d+b+K).
	// The cosine variant normalises f_lac and needs it whole.
	bottleneckIn := m.Bottleneck
	var languageIn *nn.Linear
	if epoch >= 0 {
		bottleneckIn = composeLinear(m.Bottleneck.Weight.Value, m.Bottleneck.Bias.Value, m.VisionSeparator)
		if !m.cosineLAC {
			languageIn = composeLinear(m.Text, nil, m.TextSeparator)
		}
	}
	t := &nn.Tape{NoGrad: true}
	for lo := 0; lo < n; lo += evalChunk {
		hi := min(lo+evalChunk, n)
		t.Reset()
		input := nn.NewConst(x.Slice(lo, hi, 0, x.Cols))
		switch {
		case epoch < 0:
		case languageIn != nil: // scale·(x·(µ̂·W_txt)ᵀ + µ̂·b_txt) = scale·G_txt(x)·µ̂ᵀ
			tensor.Copy(language.Slice(lo, hi, 0, k), t.Scale(languageIn.Forward(t, input), m.logitScale).Value)
		default:
			tensor.Copy(language.Slice(lo, hi, 0, k), m.LanguageLogits(t, m.TextSeparator.Forward(t, input)).Value)
		}
		feats := m.BottleneckNorm.Forward(t, bottleneckIn.Forward(t, input))
		tensor.Copy(bottleneck.Slice(lo, hi, 0, b), feats.Value)
		tensor.Copy(vision.Slice(lo, hi, 0, k), m.VisionLogits(t, feats).Value)
	}
	switch {
	case epoch <= 0:
		language = teacher
	case !cfg.Ablations.NoDebias:
		prior.debias(language, language, float32(cfg.Tau))
	}

	mix := cfg.TestWeight(epoch)
	t.Reset()
	probs := ensembleLogits(t, nn.NewConst(vision), nn.NewConst(language), nn.NewConst(scalar(float32(mix)))).Value
	tensor.Softmax(probs, probs)
	return testOutputs{epoch: epoch, mix: mix, vision: vision, language: language, bottleneck: bottleneck, probs: probs}
}

// evaluation summarises the outputs: the ensemble's predictions and
// confidences, the label-free criteria (seed draws the SND sample) and,
// when labels [N] has a known label, the accuracies.
func (o testOutputs) evaluation(labels []int, seed uint64) Evaluation {
	n, k := o.probs.Rows, o.probs.Cols
	e := Evaluation{Epoch: o.epoch, TestWeight: o.mix, Predictions: tensor.ArgmaxRows(o.probs)}
	e.Confidences = make([]float32, n)
	for i, c := range e.Predictions {
		e.Confidences[i] = o.probs.At(i, c)
	}
	e.LabelFree = labelFree(o.probs, o.vision, o.language, seed)
	if eval.HasLabels(labels) {
		e.Metrics = mustEvaluate(e.Predictions, labels, k)
		e.Accuracy = &e.Metrics.Accuracy
		e.MeanClassAccuracy = &e.Metrics.MeanClassAccuracy
		e.VisionAccuracy = &mustEvaluate(tensor.ArgmaxRows(o.vision), labels, k).Accuracy
		e.LanguageAccuracy = &mustEvaluate(tensor.ArgmaxRows(o.language), labels, k).Accuracy
	}
	return e
}

// composeLinear returns the affine map x ↦ outer(inner(x)), where outer is
// x ↦ x·Wᵀ + bias (bias [1, out], nil for none): one Linear layer with
// weight W·W_inner [out, in] and bias b_inner·Wᵀ + bias [1, out]. Its
// parameters are constants, for evaluation only.
func composeLinear(w, bias *tensor.Matrix, inner *nn.Linear) *nn.Linear {
	weight := tensor.New(w.Rows, inner.Weight.Value.Cols)
	tensor.Gemm(false, false, 1, w, inner.Weight.Value, 0, weight) // [out, d]·[d, in]
	b := tensor.New(1, w.Rows)
	if bias != nil {
		tensor.Copy(b, bias)
	}
	tensor.Gemm(false, true, 1, inner.Bias.Value, w, 1, b) // [1, d]·[out, d]ᵀ
	return &nn.Linear{Weight: nn.NewConst(weight), Bias: nn.NewConst(b)}
}
