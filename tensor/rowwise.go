package tensor

import (
	"fmt"
	"math"
)

// Softmax sets each row of dst to the softmax of the same row of a,
// exp(x - max)/Σ exp(x - max), which cannot overflow. A row holding NaN or
// +Inf gives NaN, as in PyTorch.
func Softmax(dst, a *Matrix) {
	mapSegments("Softmax", costSoftmax, true, func(s [][]float32) {
		d, x := s[0], s[1]
		m := rowMax(x)
		for j, v := range x {
			d[j] = v - m
		}
		expSlice(d, d)
		var sum float64
		for _, v := range d {
			sum += float64(v)
		}
		inv := float32(1 / sum)
		for j := range d {
			d[j] *= inv
		}
	}, dst, a)
}

// LogSoftmax sets each row of dst to the log-softmax of the same row of a,
// x - max - log Σ exp(x - max): finite for finite input however far the
// logits spread, where log(Softmax) would give -Inf.
func LogSoftmax(dst, a *Matrix) {
	mapSegments("LogSoftmax", costSoftmax, true, func(s [][]float32) {
		d, x := s[0], s[1]
		m := rowMax(x)
		for j, v := range x {
			d[j] = v - m
		}
		var e [chunk]float32
		var sum float64
		for lo := 0; lo < len(d); lo += chunk {
			part := e[:min(chunk, len(d)-lo)]
			expSlice(part, d[lo:lo+len(part)])
			for _, v := range part {
				sum += float64(v)
			}
		}
		logSum := float32(math.Log(sum))
		for j := range d {
			d[j] -= logSum
		}
	}, dst, a)
}

// rowMax returns the largest element of a non-empty row (NaN if any is NaN).
func rowMax(x []float32) float32 {
	m := float32(math.Inf(-1))
	for _, v := range x {
		if v > m || v != v {
			m = v
		}
	}
	return m
}

// LayerNorm normalises each row of a to zero mean and unit variance and
// applies the per-column affine map: dst[i, j] = (a[i, j] - μᵢ)/√(σᵢ² + eps) ·
// gamma[j] + beta[j], with the biased variance σᵢ², as torch.nn.LayerNorm
// over the last dimension. Sums are accumulated in float64.
func LayerNorm(dst, a *Matrix, gamma, beta []float32, eps float32) {
	if len(gamma) != a.Cols || len(beta) != a.Cols {
		panic(fmt.Sprintf("tensor.LayerNorm: gamma of %d and beta of %d for %d columns", len(gamma), len(beta), a.Cols))
	}
	mapSegments("LayerNorm", costNorm, true, func(s [][]float32) {
		d, x := s[0], s[1]
		gamma, beta := gamma[:len(x)], beta[:len(x)]
		var sum float64
		for _, v := range x {
			sum += float64(v)
		}
		mean := sum / float64(len(x))
		var sq float64
		for _, v := range x {
			sq += (float64(v) - mean) * (float64(v) - mean)
		}
		rstd := float32(1 / math.Sqrt(sq/float64(len(x))+float64(eps)))
		mean32 := float32(mean)
		for j, v := range x {
			d[j] = (v-mean32)*rstd*gamma[j] + beta[j]
		}
	}, dst, a)
}

// NormalizeRows divides each row of m by its L2 norm, in place, as
// torch.nn.functional.normalize does: by max(‖row‖, eps), so that with eps
// > 0 a tiny row does not blow up, and with eps = 0 a row of zeros stays
// zero. The sum of squares is taken in float64; each element is multiplied
// by the float32 inverse of the norm.
func NormalizeRows(m *Matrix, eps float64) {
	for i := range m.Rows {
		NormalizeRow(m.Row(i), eps)
	}
}

// NormalizeRow is NormalizeRows for one row.
func NormalizeRow(row []float32, eps float64) {
	var ss float64
	for _, v := range row {
		ss += float64(v) * float64(v)
	}
	norm := max(math.Sqrt(ss), eps)
	if norm == 0 {
		return
	}
	inv := float32(1 / norm)
	for j := range row {
		row[j] *= inv
	}
}

// ArgmaxRows returns the column of each row's largest value, the first on
// ties. NaN never wins a comparison, so a row of NaN gives 0.
func ArgmaxRows(m *Matrix) []int {
	out := make([]int, m.Rows)
	for i := range out {
		row := m.Row(i)
		best := 0
		for k, v := range row {
			if v > row[best] {
				best = k
			}
		}
		out[i] = best
	}
	return out
}
