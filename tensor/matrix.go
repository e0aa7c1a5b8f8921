// Package tensor provides row-major float32 matrices, the matrix-multiply
// seam (OpenBLAS loaded at run time where present, pure Go otherwise) and the
// element-wise kernels that the network layers and CLIP encoders are built on.
//
// # GEMM backends
//
// Gemm runs on one of two implementations, chosen when the package first
// needs one (see Init):
//
//   - "openblas": sgemm from libopenblas.so.0, opened at run time through
//     purego, so that neither building nor running needs cgo or OpenBLAS.
//     Strides go to the library as leading dimensions, so views are not
//     copied. Unless OPENBLAS_CORETYPE is set, the kernels are chosen by the
//     CPU's instruction set (old OpenBLAS releases misdetect new CPUs and
//     fall back to SSE3 kernels several times slower).
//   - "go": a blocked GEMM in Go with AVX-512 or AVX2 assembly micro-kernels
//     on amd64 CPUs that have them and a portable Go micro-kernel elsewhere.
//
// The environment variable UNIMOS_BLAS=go|openblas|auto forces one (auto,
// the default, prefers OpenBLAS); UseBackend switches at run time and
// Backend describes the one in use. The OpenBLAS loader makes the binary
// link the system's C library dynamically even with CGO_ENABLED=0; build
// with the noopenblas tag for a fully static binary that always uses Go.
//
// # Threads
//
// SetThreads bounds the threads of both backends and of the element-wise
// kernels (default GOMAXPROCS). Each GEMM below a measured size runs on one
// thread, where waking a second costs more than it saves, and the
// element-wise kernels split only inputs large enough to repay a goroutine.
// Calls run one at a time from one goroutine never have OpenBLAS threads and
// Go workers competing for cores; a caller that runs several GEMMs
// concurrently, one goroutine per core, calls GemmSerial instead.
//
// # Precision
//
// SetPrecision(PrecisionBF16) makes every Gemm round its operands to
// bfloat16 (ties to even, as PyTorch) and sum the products in float32 with
// AVX512_BF16's VDPBF16PS, on the Go backend's blocked GEMM; alpha, beta and
// C stay float32. GemmSerial stays f32 (the Winograd convolutions' transformed
// domain amplifies the rounding; see GemmSerial). It is process-wide and meant for inference (extract sets it for
// its run); training never sets it. ChoosePrecision resolves a request:
// bf16 falls back to f32 on CPUs without AVX512_BF16, and auto times the
// f32 and bf16 micro-kernels once (a few milliseconds) and takes bf16 only
// when it ran at least 1.25 times as fast. VDPBF16PS runs at half the f32 FMA
// rate on Intel Emerald Rapids (172 against 352 GFLOP/s on two cores; the
// bf16 kernel measures about 0.5 times the f32 one's speed, so auto takes
// f32) and at twice it on AMD Zen 4 (by the figures; not measured here),
// where auto should take bf16.
package tensor

import "fmt"

// Matrix is a dense row-major float32 matrix. Element (i, j) is
// Data[i*Stride+j]. Stride >= Cols; a Stride larger than Cols describes a view
// into a wider matrix (see Slice), which shares Data with its parent.
type Matrix struct {
	Rows, Cols int
	Stride     int
	Data       []float32
}

// New returns a zeroed rows x cols matrix.
func New(rows, cols int) *Matrix {
	if rows < 0 || cols < 0 {
		panic(fmt.Sprintf("tensor.New: negative shape %dx%d", rows, cols))
	}
	return &Matrix{Rows: rows, Cols: cols, Stride: cols, Data: make([]float32, rows*cols)}
}

// FromSlice wraps data (len rows*cols, row-major) as a matrix without copying.
func FromSlice(rows, cols int, data []float32) *Matrix {
	if len(data) != rows*cols {
		panic(fmt.Sprintf("tensor.FromSlice: %d values for a %dx%d matrix", len(data), rows, cols))
	}
	return &Matrix{Rows: rows, Cols: cols, Stride: cols, Data: data}
}

// At returns element (i, j).
func (m *Matrix) At(i, j int) float32 { return m.Data[i*m.Stride+j] }

// Set sets element (i, j) to v.
func (m *Matrix) Set(i, j int, v float32) { m.Data[i*m.Stride+j] = v }

// Row returns row i as a slice sharing the matrix's storage.
func (m *Matrix) Row(i int) []float32 { return m.Data[i*m.Stride : i*m.Stride+m.Cols] }

// Dims returns the shape, rows then columns.
func (m *Matrix) Dims() (rows, cols int) { return m.Rows, m.Cols }

// RowInto copies row i into dst, of length Cols.
func (m *Matrix) RowInto(dst []float32, i int) { copy(dst[:m.Cols], m.Row(i)) }

// Slice returns the view of rows [r0, r1) and columns [c0, c1), sharing storage.
func (m *Matrix) Slice(r0, r1, c0, c1 int) *Matrix {
	if r0 < 0 || r1 < r0 || r1 > m.Rows || c0 < 0 || c1 < c0 || c1 > m.Cols {
		panic(fmt.Sprintf("tensor.Slice: [%d:%d, %d:%d] out of a %dx%d matrix", r0, r1, c0, c1, m.Rows, m.Cols))
	}
	if r1 == r0 || c1 == c0 {
		return &Matrix{Rows: r1 - r0, Cols: c1 - c0, Stride: m.Stride}
	}
	start := r0*m.Stride + c0
	end := (r1-1)*m.Stride + c1
	return &Matrix{Rows: r1 - r0, Cols: c1 - c0, Stride: m.Stride, Data: m.Data[start:end]}
}

// Clone returns a compact copy of m (Stride == Cols).
func (m *Matrix) Clone() *Matrix {
	c := New(m.Rows, m.Cols)
	for i := 0; i < m.Rows; i++ {
		copy(c.Row(i), m.Row(i))
	}
	return c
}

// Copy copies src into dst, row by row; both are [r, c] (views of other
// matrices, with their own strides, included).
func Copy(dst, src *Matrix) {
	if dst.Rows != src.Rows || dst.Cols != src.Cols {
		panic(fmt.Sprintf("tensor.Copy: shapes %dx%d and %dx%d differ", dst.Rows, dst.Cols, src.Rows, src.Cols))
	}
	for i := range src.Rows {
		copy(dst.Row(i), src.Row(i))
	}
}
