package tensor

import "fmt"

// Gemm computes C = alpha*op(A)*op(B) + beta*C, where op(X) is X or its
// transpose as transA/transB say. Shapes: op(A) is m x k, op(B) is k x n,
// C is m x n. All three may be strided views. C must not alias A or B.
//
// Weights are stored [out, in] as in PyTorch, so a Linear layer's forward
// pass is Gemm(false, true, 1, x, w, 0, y).
func Gemm(transA, transB bool, alpha float32, a, b *Matrix, beta float32, c *Matrix) {
	m, k := a.Rows, a.Cols
	if transA {
		m, k = k, m
	}
	kb, n := b.Rows, b.Cols
	if transB {
		kb, n = n, kb
	}
	if k != kb || c.Rows != m || c.Cols != n {
		panic(fmt.Sprintf("tensor.Gemm: op(A) %dx%d, op(B) %dx%d, C %dx%d", m, k, kb, n, c.Rows, c.Cols))
	}
	gemmNaive(transA, transB, alpha, a, b, beta, c)
}

// gemmNaive is the reference implementation: a plain triple loop.
func gemmNaive(transA, transB bool, alpha float32, a, b *Matrix, beta float32, c *Matrix) {
	at := func(i, p int) float32 {
		if transA {
			return a.At(p, i)
		}
		return a.At(i, p)
	}
	bt := func(p, j int) float32 {
		if transB {
			return b.At(j, p)
		}
		return b.At(p, j)
	}
	k := a.Cols
	if transA {
		k = a.Rows
	}
	for i := 0; i < c.Rows; i++ {
		for j := 0; j < c.Cols; j++ {
			var s float32
			for p := 0; p < k; p++ {
				s += at(i, p) * bt(p, j)
			}
			if beta == 0 {
				c.Set(i, j, alpha*s)
			} else {
				c.Set(i, j, alpha*s+beta*c.At(i, j))
			}
		}
	}
}
