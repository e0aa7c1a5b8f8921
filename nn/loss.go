package nn

import (
	"fmt"
	"math"

	"github.com/unimos/unimos/tensor"
)

// Losses return 1x1 Vars and reduce as PyTorch's defaults do.

// CrossEntropy returns the mean over rows of -log softmax(logits)[i, labels[i]]
// (torch.nn.CrossEntropyLoss): logits [N, K], labels in [0, K).
func (t *Tape) CrossEntropy(logits *Var, labels []int) *Var {
	n, k := logits.Value.Rows, logits.Value.Cols
	if len(labels) != n {
		panic(fmt.Sprintf("nn.CrossEntropy: %d labels for %d rows", len(labels), n))
	}
	out := t.result(1, 1, logits)
	// The gradient (softmax - onehot)/N is cheapest to form now, while the
	// labels are at hand: dlogits holds log softmax, then softmax.
	dlogits := t.buffer(n, k)
	tensor.LogSoftmax(dlogits, logits.Value)
	var loss float64
	for i, y := range labels {
		if y < 0 || y >= k {
			panic(fmt.Sprintf("nn.CrossEntropy: label %d of row %d outside [0, %d)", y, i, k))
		}
		loss -= float64(dlogits.At(i, y))
	}
	tensor.Exp(dlogits, dlogits)
	for i, y := range labels {
		dr := dlogits.Row(i)
		dr[y]--
		for j := range dr {
			dr[j] /= float32(n)
		}
	}
	out.Value.Data[0] = float32(loss / float64(n))
	t.record(out, func(g *tensor.Matrix) {
		addScaled(t.gradOf(logits), dlogits, g.Data[0])
	})
	return out
}

// BCEWithLogits returns the mean over all elements of the binary cross-entropy
// between sigmoid(logits) and targets (row-major, one per element), in the
// stable form max(x, 0) - x·y + log(1 + exp(-|x|)) of
// torch.nn.BCEWithLogitsLoss.
func (t *Tape) BCEWithLogits(logits *Var, targets []float32) *Var {
	rows, cols := logits.Value.Rows, logits.Value.Cols
	if len(targets) != rows*cols {
		panic(fmt.Sprintf("nn.BCEWithLogits: %d targets for %dx%d logits", len(targets), rows, cols))
	}
	count := float32(rows * cols)
	out := t.result(1, 1, logits)
	dlogits := t.buffer(rows, cols) // (sigmoid(x) - y)/count
	var loss float64
	for i := range rows {
		xr, dr := logits.Value.Row(i), dlogits.Row(i)
		for j, x := range xr {
			y := targets[i*cols+j]
			loss += float64(max(x, 0)-x*y) + math.Log1p(math.Exp(-math.Abs(float64(x))))
			dr[j] = (sigmoid(x) - y) / count
		}
	}
	out.Value.Data[0] = float32(loss / float64(count))
	t.record(out, func(g *tensor.Matrix) {
		addScaled(t.gradOf(logits), dlogits, g.Data[0])
	})
	return out
}

// KLWithLogits returns the mean over rows of Σ_k q_k (log q_k - log p_k) with
// q = softmax(qLogits) and p = softmax(pLogits): KL(q ‖ p) per row, as the
// UniMoS reference's kl_div_with_logit. Gradient reaches both arguments;
// Detach the one that is a fixed target.
func (t *Tape) KLWithLogits(qLogits, pLogits *Var) *Var {
	mustSameShape("KLWithLogits", qLogits, pLogits)
	logQ := t.LogSoftmax(qLogits)
	logP := t.LogSoftmax(pLogits)
	q := t.Softmax(qLogits)
	perElement := t.Mul(q, t.Sub(logQ, logP))
	return t.Scale(t.Sum(perElement), 1/float32(qLogits.Value.Rows))
}
