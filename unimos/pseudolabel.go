package unimos

import (
	"math"

	"github.com/unimos/unimos/tensor"
)

// teacherLogits returns the zero-shot teacher y_lac for image embeddings
// x [N, d] and text classifier µ̂ [K, d]: scale·x·µ̂ᵀ minus each row's mean
// over classes (section 1; the reference's `normalize`). [N, K]
func teacherLogits(x, text *tensor.Matrix, scale float32) *tensor.Matrix {
	logits := tensor.New(x.Rows, text.Rows)
	tensor.Gemm(false, true, scale, x, text, 0, logits)
	for i := range logits.Rows {
		row := logits.Row(i)
		var mean float32
		for _, v := range row {
			mean += v
		}
		mean /= float32(len(row))
		for j := range row {
			row[j] -= mean
		}
	}
	return logits
}

// classPrior is p̂ [K], the running estimate of how often the
// language-associated branch predicts each class on the target, used to
// debias it (ACDE, section 3.3). It starts uniform.
type classPrior []float32

func newClassPrior(k int) classPrior {
	p := make(classPrior, k)
	for i := range p {
		p[i] = 1 / float32(k)
	}
	return p
}

// update moves p̂ towards the batch mean of softmax(logits [N, K]):
// p̂ = m·p̂ + (1−m)·mean_i softmax(logits)_i.
func (p classPrior) update(logits *tensor.Matrix, momentum float32) {
	probs := tensor.New(logits.Rows, logits.Cols)
	tensor.Softmax(probs, logits)
	mean := make([]float32, len(p))
	for i := range probs.Rows {
		for k, v := range probs.Row(i) {
			mean[k] += v
		}
	}
	for k := range p {
		p[k] = momentum*p[k] + (1-momentum)*mean[k]/float32(probs.Rows)
	}
}

// debias sets dst = logits − τ·log p̂, row by row (paper Eq. 9). dst may be logits.
func (p classPrior) debias(dst, logits *tensor.Matrix, tau float32) {
	shift := make([]float32, len(p))
	for k, v := range p {
		shift[k] = tau * float32(math.Log(float64(v)))
	}
	for i := range logits.Rows {
		d, l := dst.Row(i), logits.Row(i)
		for k := range l {
			d[k] = l[k] - shift[k]
		}
	}
}

// centroidLabels assigns each row to its nearest class centroid in cosine
// similarity (paper Eq. 8 and 10; the reference's `clustering`/`cal_dis`):
// with f̄ the L2-normalised bottleneck features [N, b] and affinities
// a = softmax(ensemble) [N, K], the centroid of class k is
// φ_k = Σ_i a_ik·f̄_i / (Σ_i a_ik + 1e-8), and row i gets argmax_k cos(f̄_i, φ_k).
// It is one assignment step, without further k-means iterations.
func centroidLabels(affinity, bottleneck *tensor.Matrix) []int {
	n, k := affinity.Rows, affinity.Cols
	normed := bottleneck.Clone()
	for i := range n {
		tensor.NormalizeRow(normed.Row(i), 1e-12)
	}
	centroids := tensor.New(k, normed.Cols) // [K, b]
	tensor.Gemm(true, false, 1, affinity, normed, 0, centroids)
	mass := make([]float64, k)
	for i := range n {
		for c, v := range affinity.Row(i) {
			mass[c] += float64(v)
		}
	}
	for c := range k {
		row := centroids.Row(c)
		for j := range row {
			row[j] /= float32(mass[c] + 1e-8)
		}
		// cos(f̄_i, φ_c) = f̄_i·φ_c / max(‖φ_c‖, eps) as f̄_i is unit-norm.
		tensor.NormalizeRow(row, 1e-8)
	}
	similarity := tensor.New(n, k)
	tensor.Gemm(false, true, 1, normed, centroids, 0, similarity)
	return tensor.ArgmaxRows(similarity)
}
