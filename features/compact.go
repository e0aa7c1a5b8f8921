package features

import (
	"encoding/binary"
	"fmt"
	"math"

	"github.com/unimos/unimos/safetensors"
	"github.com/unimos/unimos/tensor"
)

// Rows is read access to a matrix of float32 rows, however it is held in
// memory: a *tensor.Matrix, or a *HalfMatrix.
type Rows interface {
	Dims() (rows, cols int)
	// RowInto writes row i into dst, of length cols.
	RowInto(dst []float32, i int)
}

// HalfMatrix is a [Rows, Cols] row-major matrix of IEEE 754 half-precision
// values: an F16 domain's features as the store holds them, in half the
// memory of float32. Every float16 value is exact in float32, so its rows
// read as the same numbers Domain decodes.
type HalfMatrix struct {
	Rows, Cols int
	Data       []uint16 // Rows*Cols elements
}

// Dims returns the shape, rows then columns.
func (h *HalfMatrix) Dims() (rows, cols int) { return h.Rows, h.Cols }

// RowInto converts row i into dst, of length Cols.
func (h *HalfMatrix) RowInto(dst []float32, i int) {
	row := h.Data[i*h.Cols : (i+1)*h.Cols]
	for j, v := range row {
		dst[j] = safetensors.F16ToFloat32(v)
	}
}

// CompactDomain loads one domain's features and labels as Domain does, but
// keeps F16 features as stored, in half the memory, when no row needs
// normalising: a *HalfMatrix then, and a *tensor.Matrix otherwise (F32
// files, or F16 files with rows off unit norm, which Domain normalises and
// reports). Either way the rows read as Domain's do.
func (s *Store) CompactDomain(name string) (Rows, []int, error) {
	f, feats, labels, err := s.openDomain(name)
	if err != nil {
		return nil, nil, err
	}
	defer f.Close()
	if feats.DType == safetensors.F16 {
		h, err := s.halfMatrix(f.Path(), feats)
		if err != nil {
			return nil, nil, err
		}
		if h != nil {
			return h, labels, nil
		}
	}
	m, err := s.decodeMatrix(f.Path(), feats)
	if err != nil {
		return nil, nil, err
	}
	return m, labels, nil
}

// halfMatrix copies a checked F16 [rows, Dim] tensor and validates its rows
// as decodeMatrix does. It returns nil, and no error, when a row is finite
// and non-zero but off unit norm: normalising it needs float32.
func (s *Store) halfMatrix(path string, t *safetensors.Tensor) (*HalfMatrix, error) {
	h := &HalfMatrix{Rows: t.Shape[0], Cols: t.Shape[1], Data: make([]uint16, t.NumElements())}
	if len(t.Data) != 2*len(h.Data) {
		return nil, fmt.Errorf("features: %s: %q holds %d bytes for %d F16 elements", path, t.Name, len(t.Data), len(h.Data))
	}
	for i := range h.Data {
		h.Data[i] = binary.LittleEndian.Uint16(t.Data[2*i:])
	}
	row := make([]float32, h.Cols)
	for i := range h.Rows {
		h.RowInto(row, i)
		norm, err := rowNorm(row)
		if err != nil {
			return nil, fmt.Errorf("features: %s: %q row %d %v", path, t.Name, i, err)
		}
		if math.Abs(norm-1) > NormTolerance {
			return nil, nil
		}
	}
	return h, nil
}

// The two forms of Rows.
var (
	_ Rows = (*tensor.Matrix)(nil)
	_ Rows = (*HalfMatrix)(nil)
)
