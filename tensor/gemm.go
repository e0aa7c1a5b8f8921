package tensor

import (
	"fmt"
	"sync/atomic"
	"unsafe"
)

// Gemm computes C = alpha·op(A)·op(B) + beta·C, where op(X) is X or its
// transpose as transA/transB say. Shapes: op(A) is [m, k], op(B) is [k, n],
// C is [m, n]. All three may be strided views (see Slice); their strides are
// passed to the backend, so views cost no copies. As in BLAS, beta == 0
// overwrites C without reading it (NaN or Inf already there is ignored), and
// alpha == 0 or k == 0 leaves beta·C without reading A and B.
//
// C must not share elements with A or B; Gemm panics if it does, and on a
// shape mismatch or a Matrix whose Data is shorter than its shape requires.
// It runs on the backend chosen by Init/UseBackend, on up to Threads()
// threads, with operands in the precision SetPrecision set (f32 unless set).
//
// Weights are stored [out, in] as in PyTorch, so a Linear layer's forward
// pass is Gemm(false, true, 1, x, w, 0, y).
func Gemm(transA, transB bool, alpha float32, a, b *Matrix, beta float32, c *Matrix) {
	gemmWith(productBackend(), 0, transA, transB, alpha, a, b, beta, c)
}

// GemmSerial is Gemm on one thread, the calling goroutine's. It is for
// callers that run independent products on goroutines of their own, one per
// core, where the backend's threads would only compete with them.
// Concurrent calls are safe. OpenBLAS keeps one global thread count, so a
// Gemm running at the same time on another goroutine may then run on one
// thread too; its result is as correct, but a product with a long inner
// dimension (Aᵀ·B over thousands of rows) then sums in another order and
// may differ in the last bits. Callers that need bit-reproducible results
// from concurrent products use one thread count for all (SetThreads(1)).
//
// Unlike Gemm, GemmSerial ignores SetPrecision: its products are always f32.
// Its caller, the ResNet's Winograd convolution, multiplies in the
// transformed domain, whose inverse transform amplifies rounding: with bf16
// products there, features of random-weight RN50 came within cosine 0.9978
// of the f32 ones, against 0.99998 with those products in f32.
func GemmSerial(transA, transB bool, alpha float32, a, b *Matrix, beta float32, c *Matrix) {
	gemmWith(*currentBackend(), 1, transA, transB, alpha, a, b, beta, c)
}

// gemmWith is Gemm on a given backend and number of threads (0: the
// threadsFor policy).
func gemmWith(be gemmBackend, threads int, transA, transB bool, alpha float32, a, b *Matrix, beta float32, c *Matrix) {
	m, n, k, work := prepareGemm(transA, transB, alpha, a, b, beta, c)
	if !work {
		return
	}
	if threads == 0 {
		threads = threadsFor(be, m, n, k)
	}
	be.gemm(transA, transB, alpha, a, b, beta, c, threads)
}

// prepareGemm checks a product's operands (panicking as Gemm documents),
// does the products with nothing to multiply (beta·C), and returns its
// dimensions and whether a multiplication is left to do.
func prepareGemm(transA, transB bool, alpha float32, a, b *Matrix, beta float32, c *Matrix) (m, n, k int, work bool) {
	m, k = a.Rows, a.Cols
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
	a.mustBeValid("tensor.Gemm: A")
	b.mustBeValid("tensor.Gemm: B")
	c.mustBeValid("tensor.Gemm: C")
	if overlaps(c, a) || overlaps(c, b) {
		panic("tensor.Gemm: C shares elements with A or B")
	}
	switch {
	case m == 0 || n == 0:
		return m, n, k, false
	case alpha == 0 || k == 0:
		scaleInPlace(c, beta)
		return m, n, k, false
	}
	gemmFlops.Add(uint64(2 * m * n * k))
	return m, n, k, true
}

// gemmFlops counts the floating-point operations of the products so far.
var gemmFlops atomic.Uint64

// GemmFlops returns the floating-point operations of every product since
// the program started, 2·m·n·k each (a multiply and an add per term, as
// the peak is counted): benchmarks divide its increase by their time to
// report GFLOP/s and the share of the machine's peak.
func GemmFlops() uint64 { return gemmFlops.Load() }

// scaleInPlace sets C = beta·C, writing zeros without reading C when beta
// is 0 (the BLAS convention, so NaN garbage in C does not survive).
func scaleInPlace(c *Matrix, beta float32) {
	if beta == 1 {
		return
	}
	for i := range c.Rows {
		row := c.Row(i)
		if beta == 0 {
			clear(row)
			continue
		}
		for j := range row {
			row[j] *= beta
		}
	}
}

// mustBeValid panics unless m's Stride and Data can hold its shape, which
// keeps the OpenBLAS backend from reading or writing outside Data.
func (m *Matrix) mustBeValid(what string) {
	if m.Rows < 0 || m.Cols < 0 || m.Stride < m.Cols {
		panic(fmt.Sprintf("%s: %dx%d matrix with stride %d", what, m.Rows, m.Cols, m.Stride))
	}
	if m.Rows > 0 && m.Cols > 0 && len(m.Data) < (m.Rows-1)*m.Stride+m.Cols {
		panic(fmt.Sprintf("%s: %dx%d matrix with stride %d needs %d values, has %d",
			what, m.Rows, m.Cols, m.Stride, (m.Rows-1)*m.Stride+m.Cols, len(m.Data)))
	}
}

// overlaps reports whether x and y share an element. Views of one parent
// (equal strides) are compared as rectangles, so disjoint column blocks of a
// matrix do not count as overlapping; for unequal strides any overlap of the
// address ranges counts.
func overlaps(x, y *Matrix) bool {
	if x.Rows == 0 || x.Cols == 0 || y.Rows == 0 || y.Cols == 0 {
		return false
	}
	const size = int(unsafe.Sizeof(float32(0)))
	xStart := uintptr(unsafe.Pointer(&x.Data[0]))
	yStart := uintptr(unsafe.Pointer(&y.Data[0]))
	xEnd := xStart + uintptr(((x.Rows-1)*x.Stride+x.Cols)*size)
	yEnd := yStart + uintptr(((y.Rows-1)*y.Stride+y.Cols)*size)
	if xEnd <= yStart || yEnd <= xStart {
		return false
	}
	if x.Stride != y.Stride || (yStart-xStart)%uintptr(size) != 0 {
		return true
	}
	if yStart < xStart {
		x, y = y, x
		xStart, yStart = yStart, xStart
	}
	// y's element (i, j) is x's element (i+dr, j+dc), wrapping into the next
	// row of x when j+dc passes the stride.
	d := int(yStart-xStart) / size
	dr, dc := d/x.Stride, d%x.Stride
	rowsMeet := func(r0 int) bool { return r0 < x.Rows && r0+y.Rows > 0 }
	if rowsMeet(dr) && dc < x.Cols {
		return true
	}
	wrapped := dc + y.Cols - x.Stride // columns of y that land in x's next row
	return wrapped > 0 && rowsMeet(dr+1)
}
