// Package tensor provides row-major float32 matrices, the matrix-multiply
// seam (OpenBLAS loaded at run time where present, pure Go otherwise) and the
// element-wise kernels that the network layers and CLIP encoders are built on.
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
