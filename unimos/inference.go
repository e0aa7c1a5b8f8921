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
	t := &nn.Tape{NoGrad: true}
	for lo := 0; lo < n; lo += evalChunk {
		hi := min(lo+evalChunk, n)
		t.Reset()
		input := nn.NewConst(x.Slice(lo, hi, 0, x.Cols))
		var vac *nn.Var
		if epoch < 0 {
			// The reference's first test feeds the raw features to the
			// bottleneck, before any separation.
			vac = input
		} else {
			var lac *nn.Var
			vac, lac = m.Separate(t, input)
			copyInto(language.Slice(lo, hi, 0, k), m.LanguageLogits(t, lac).Value)
		}
		feats := m.BottleneckFeatures(t, vac)
		copyInto(bottleneck.Slice(lo, hi, 0, b), feats.Value)
		copyInto(vision.Slice(lo, hi, 0, k), m.VisionLogits(t, feats).Value)
	}
	switch {
	case epoch <= 0:
		language = teacher
	case !cfg.Ablations.NoDebias:
		prior.debias(language, language, float32(cfg.Tau))
	}

	mix := cfg.MixWeight(epoch)
	probs := tensor.New(n, k)
	for i := range n {
		e, v, l := probs.Row(i), vision.Row(i), language.Row(i)
		for j := range e {
			e[j] = float32(mix)*v[j] + float32(1-mix)*l[j]
		}
	}
	tensor.Softmax(probs, probs)
	return testOutputs{epoch: epoch, mix: mix, vision: vision, language: language, bottleneck: bottleneck, probs: probs}
}

// evaluation summarises the outputs: the ensemble's predictions and
// confidences, the label-free criteria (seed draws the SND sample) and,
// when labels [N] has a known label, the accuracies.
func (o testOutputs) evaluation(labels []int, seed uint64) Evaluation {
	n, k := o.probs.Rows, o.probs.Cols
	e := Evaluation{Epoch: o.epoch, Mix: o.mix, Predictions: tensor.ArgmaxRows(o.probs)}
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
