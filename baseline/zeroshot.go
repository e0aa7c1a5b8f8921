// Package baseline holds the reference points that UniMoS is measured
// against: CLIP zero-shot classification and a source-only linear probe.
package baseline

import (
	"fmt"
	"math"

	"github.com/unimos/unimos/eval"
	"github.com/unimos/unimos/features"
	"github.com/unimos/unimos/tensor"
)

// LogitScale is CLIP's learned logit scale (1/T with T = 0.01), which the
// reference UniMoS code uses for every cosine logit.
const LogitScale = 100

// ZeroShotLogits returns LogitScale * images · textᵀ, the [N, K] cosine
// logits of unit-norm image features [N, D] against unit-norm text features
// [K, D].
func ZeroShotLogits(images, text *tensor.Matrix) (*tensor.Matrix, error) {
	if images.Cols != text.Cols {
		return nil, fmt.Errorf("zero-shot: image features have dim %d but text features have dim %d", images.Cols, text.Cols)
	}
	logits := tensor.New(images.Rows, text.Rows)
	tensor.Gemm(false, true, LogitScale, images, text, 0, logits)
	return logits, nil
}

// Prediction is a class and the softmax probability the model gives it.
type Prediction struct {
	Class      int
	Confidence float32
}

// Predict returns, per row of logits [N, K], the argmax class and its
// softmax probability.
func Predict(logits *tensor.Matrix) []Prediction {
	classes := tensor.ArgmaxRows(logits)
	out := make([]Prediction, logits.Rows)
	for i, best := range classes {
		row := logits.Row(i)
		// p(best) = 1 / Σ_k exp(l_k − l_best): stable since every exponent is ≤ 0.
		var sum float64
		for _, v := range row {
			sum += math.Exp(float64(v - row[best]))
		}
		out[i] = Prediction{Class: best, Confidence: float32(1 / sum)}
	}
	return out
}

// ZeroShot classifies unit-norm image features [N, D] by the nearest text
// prototype [K, D] in cosine similarity, as CLIP's zero-shot classifier does.
func ZeroShot(images, text *tensor.Matrix) ([]Prediction, error) {
	logits, err := ZeroShotLogits(images, text)
	if err != nil {
		return nil, err
	}
	return Predict(logits), nil
}

// Classes extracts the predicted classes.
func Classes(preds []Prediction) []int {
	c := make([]int, len(preds))
	for i, p := range preds {
		c[i] = p.Class
	}
	return c
}

// EvaluateZeroShot scores CLIP zero-shot on a loaded, labelled domain of a
// feature store, against that domain's text features.
func EvaluateZeroShot(store *features.Store, d *features.Domain) (eval.Metrics, error) {
	if !eval.HasLabels(d.Labels) {
		return eval.Metrics{}, fmt.Errorf("domain %s has no labels (all -1): accuracy cannot be measured", d.Name)
	}
	text, err := store.Text(d.Name)
	if err != nil {
		return eval.Metrics{}, err
	}
	preds, err := ZeroShot(d.Features, text)
	if err != nil {
		return eval.Metrics{}, fmt.Errorf("domain %s: %w", d.Name, err)
	}
	m, err := eval.Evaluate(Classes(preds), d.Labels, len(store.Meta.Classes))
	if err != nil {
		return eval.Metrics{}, fmt.Errorf("domain %s: %w", d.Name, err)
	}
	return m, nil
}
