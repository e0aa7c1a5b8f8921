package tensor

import (
	"fmt"
	"math"
)

// The element-wise kernels write dst, which must have the shape of their
// inputs and may be one of them (in place); a dst that partly overlaps an
// input gives undefined results. They respect Stride, run serially on small
// inputs and split rows (or, for compact matrices, elements) across
// Threads() goroutines on large ones. A shape mismatch panics.

// Serial cost per element of each kernel in the units of
// elementwiseParallelMin (about 0.5 ns), measured on amd64 with AVX2.
const (
	costAdd     = 1 // also Scale, AddBias, ReLU and the vectorised Exp
	costSigmoid = 5 // also QuickGELU
	costNorm    = 5
	costSoftmax = 8
	costGELU    = 14
)

// chunk is the length of the stack buffers that kernels stage intermediate
// values in: small enough for L1 and for the goroutine stack.
const chunk = 256

// mapSegments calls f with matching segments of the matrices ms (dst first,
// all of one shape), in parallel for large inputs. Segments are whole rows
// when rowwise is set or some matrix is strided; otherwise they are any
// slices of the flattened elements, so that a wide 1×n or a tall n×1 input
// splits as well as a square one.
func mapSegments(op string, cost int, rowwise bool, f func(seg [][]float32), ms ...*Matrix) {
	dst := ms[0]
	for _, m := range ms[1:] {
		if m.Rows != dst.Rows || m.Cols != dst.Cols {
			panic(fmt.Sprintf("tensor.%s: input %dx%d, output %dx%d", op, m.Rows, m.Cols, dst.Rows, dst.Cols))
		}
	}
	flat := !rowwise
	for _, m := range ms {
		flat = flat && (m.Stride == m.Cols || m.Rows <= 1)
	}
	if flat {
		n := dst.Rows * dst.Cols
		ParallelRanges(n, cost, func(lo, hi int) {
			seg := make([][]float32, len(ms))
			for k, m := range ms {
				seg[k] = m.Data[lo:hi]
			}
			f(seg)
		})
		return
	}
	ParallelRanges(dst.Rows, dst.Cols*cost, func(r0, r1 int) {
		seg := make([][]float32, len(ms))
		for i := r0; i < r1; i++ {
			for k, m := range ms {
				seg[k] = m.Row(i)
			}
			f(seg)
		}
	})
}

// Add sets dst = a + b.
func Add(dst, a, b *Matrix) {
	mapSegments("Add", costAdd, false, func(s [][]float32) {
		d, a, b := s[0], s[1], s[2]
		a, b = a[:len(d)], b[:len(d)]
		for i := range d {
			d[i] = a[i] + b[i]
		}
	}, dst, a, b)
}

// Scale sets dst = alpha·a.
func Scale(dst, a *Matrix, alpha float32) {
	mapSegments("Scale", costAdd, false, func(s [][]float32) {
		d, a := s[0], s[1]
		a = a[:len(d)]
		for i := range d {
			d[i] = alpha * a[i]
		}
	}, dst, a)
}

// AddBias sets each row of dst to the same row of a plus bias, a row vector
// of length a.Cols: dst[i, j] = a[i, j] + bias[j].
func AddBias(dst, a *Matrix, bias []float32) {
	if len(bias) != a.Cols {
		panic(fmt.Sprintf("tensor.AddBias: bias of %d for %d columns", len(bias), a.Cols))
	}
	mapSegments("AddBias", costAdd, true, func(s [][]float32) {
		d, a := s[0], s[1]
		a, bias := a[:len(d)], bias[:len(d)]
		for j := range d {
			d[j] = a[j] + bias[j]
		}
	}, dst, a)
}

// ReLU sets dst = max(a, 0); NaN stays NaN.
func ReLU(dst, a *Matrix) {
	mapSegments("ReLU", costAdd, false, func(s [][]float32) {
		d, a := s[0], s[1]
		a = a[:len(d)]
		for i, x := range a {
			d[i] = max(x, 0) // branch-free; keeps NaN
		}
	}, dst, a)
}

// Exp sets dst = e^a with FastExp's accuracy.
func Exp(dst, a *Matrix) {
	mapSegments("Exp", costAdd, false, func(s [][]float32) { expSlice(s[0], s[1]) }, dst, a)
}

// Sigmoid sets dst = 1/(1+e^-a) with a relative error below 2.5e-7 for
// every result in the normal float32 range (a > -87), the negative tail
// included.
func Sigmoid(dst, a *Matrix) {
	mapSegments("Sigmoid", costSigmoid, false, func(s [][]float32) { sigmoidSlice(s[0], s[1], 1) }, dst, a)
}

// sigmoidSlice sets dst[i] = σ(k·src[i]) = 1/(1+e^(-k·src[i])); dst may be
// src.
func sigmoidSlice(dst, src []float32, k float32) {
	dst = dst[:len(src)]
	for i, v := range src {
		dst[i] = -k * v
	}
	expSlice(dst, dst)
	for i, e := range dst {
		dst[i] = 1 / (1 + e)
	}
}

// QuickGELU sets dst = a·σ(1.702·a), the activation of OpenAI's CLIP
// weights, with FastExp's accuracy.
func QuickGELU(dst, a *Matrix) {
	mapSegments("QuickGELU", costSigmoid, false, func(s [][]float32) {
		d, a := s[0], s[1]
		var sig [chunk]float32
		for lo := 0; lo < len(a); lo += chunk {
			x := a[lo:min(lo+chunk, len(a))]
			sigmoidSlice(sig[:len(x)], x, 1.702)
			for i, v := range x {
				d[lo+i] = v * sig[i]
			}
		}
	}, dst, a)
}

// GELU sets dst = a·Φ(a) = a/2·(1 + erf(a/√2)), the exact (erf) form that is
// PyTorch's nn.GELU default, not the tanh approximation. Its error is below
// 1e-6·max(1, |a|) in absolute terms (TestGELU); the negative tail is
// computed through erfc, so it keeps its relative accuracy instead of
// cancelling to 0 as 1 + erf would.
func GELU(dst, a *Matrix) {
	mapSegments("GELU", costGELU, false, func(s [][]float32) { geluSlice(s[0], s[1]) }, dst, a)
}

// geluSlice is GELU on a segment; dst may be src.
func geluSlice(dst, src []float32) {
	// erfc(z) = t·exp(-z² - 1.26551223 + t·P(t)) with t = 1/(1 + z/2), for
	// z ≥ 0, has a relative error below 1.2e-7 everywhere (the Chebyshev
	// fit of Numerical Recipes, erfcc). With z = |x|/√2:
	// GELU(x) = x·(1 - erfc(z)/2) for x ≥ 0 and x·erfc(z)/2 for x < 0.
	var t, e [chunk]float32
	for lo := 0; lo < len(src); lo += chunk {
		x := src[lo:min(lo+chunk, len(src))]
		d, t, e := dst[lo:lo+len(x)], t[:len(x)], e[:len(x)]
		for i, v := range x {
			z := math.Float32frombits(math.Float32bits(v)&^(1<<31)) * (1 / math.Sqrt2) // |v|/√2
			ti := 1 / (1 + 0.5*z)
			p := -0.82215223 + ti*0.17087277
			p = 1.48851587 + ti*p
			p = -1.13520398 + ti*p
			p = 0.27886807 + ti*p
			p = -0.18628806 + ti*p
			p = 0.09678418 + ti*p
			p = 0.37409196 + ti*p
			p = 1.00002368 + ti*p
			t[i] = ti
			e[i] = -z*z - 1.26551223 + ti*p
		}
		expSlice(e, e)
		for i, v := range x {
			half := 0.5 * t[i] * e[i] // erfc(z)/2
			// Φ(x) is 1 - half for x ≥ 0 and half for x < 0; select by the
			// sign bit without a branch, which random signs would
			// mispredict half the time.
			neg := uint32(int32(math.Float32bits(v)) >> 31)
			phi := math.Float32bits(half)&neg | math.Float32bits(1-half)&^neg
			d[i] = v * math.Float32frombits(phi)
		}
	}
}
