// Package interop reads arrays written by other tools: feature matrices for
// importing into a feature store (NumPy .npy and .npz files, and the .pth
// caches that the reference UniMoS code writes with torch.save), and the
// weights of PyTorch checkpoints (OpenCheckpoint: TorchScript archives and
// torch.save files) for loading CLIP models.
//
// Every reader is strict and bounded. Pickles are interpreted by a small
// unpickler that can rebuild tensors and TorchScript module trees and
// nothing else: any other Python global is refused (see ErrUnsafePickle).
// No allocation is made before the input has been checked to hold the data
// it claims, and what a pickle builds is bounded by the size of its file
// (see ErrTooLarge), so a crafted file cannot make a reader allocate much
// more than its own size: the .npy and .npz readers check each array's
// header against what the caller wants (dtype, rank, the labels' row count)
// before reading its data, verify a .npz member's length and CRC-32 before
// allocating for it, and convert data piece by piece as it is read; the
// .pth readers check each tensor's storage type and shape from the pickle
// the same way, verify its storage's record, and convert only the bytes
// the tensor views. Only regular files are opened (see
// internal/regularfile).
package interop

import (
	"encoding/binary"
	"fmt"
	"math"
	"slices"
	"strings"

	"github.com/unimos/unimos/safetensors"
)

// Array is an n-dimensional array in row-major (C) order. Exactly one of
// Float32 and Int64 is non-nil, even for arrays with no elements.
type Array struct {
	// DType is the element type stored in the file: one of "float16",
	// "bfloat16", "float32", "float64", "int8", "uint8", "int16", "uint16",
	// "int32", "uint32" and "int64".
	DType string
	// Shape lists the dimensions, outermost first; empty for a scalar.
	Shape []int
	// Float32 holds the elements of floating-point arrays: float16 and
	// bfloat16 widened exactly, float64 rounded to nearest.
	Float32 []float32
	// Int64 holds the elements of integer arrays.
	Int64 []int64
}

// maxDims bounds the rank of an array, as NumPy does (NPY_MAXDIMS).
const maxDims = 64

// dtype describes one element type as stored in a file.
type dtype struct {
	name string
	size int  // bytes per element
	kind byte // 'f' IEEE 754 float, 'b' bfloat16, 'i' signed integer, 'u' unsigned integer
	st   safetensors.DType
}

func (d dtype) isFloat() bool { return d.kind == 'f' || d.kind == 'b' }

var (
	dtFloat16  = dtype{"float16", 2, 'f', safetensors.F16}
	dtBfloat16 = dtype{"bfloat16", 2, 'b', safetensors.BF16}
	dtFloat32  = dtype{"float32", 4, 'f', safetensors.F32}
	dtFloat64  = dtype{"float64", 8, 'f', safetensors.F64}
	dtInt8     = dtype{"int8", 1, 'i', safetensors.I8}
	dtUint8    = dtype{"uint8", 1, 'u', safetensors.U8}
	dtInt16    = dtype{"int16", 2, 'i', safetensors.I16}
	dtUint16   = dtype{"uint16", 2, 'u', safetensors.U16}
	dtInt32    = dtype{"int32", 4, 'i', safetensors.I32}
	dtUint32   = dtype{"uint32", 4, 'u', safetensors.U32}
	dtInt64    = dtype{"int64", 8, 'i', safetensors.I64}
)

// decode converts len(raw)/dt.size contiguous elements, stored in the given
// byte order, into a flat array.
func decode(dt dtype, order binary.ByteOrder, raw []byte) *Array {
	a := newArray(dt, len(raw)/dt.size)
	a.convert(0, dt, order, raw)
	return a
}

// newArray allocates a flat array of n elements of type dt, widened as
// Array describes.
func newArray(dt dtype, n int) *Array {
	a := &Array{DType: dt.name, Shape: []int{n}}
	if dt.isFloat() {
		a.Float32 = make([]float32, n)
	} else {
		a.Int64 = make([]int64, n)
	}
	return a
}

// convert writes the len(raw)/dt.size elements of raw, stored in the given
// byte order, into a's flat storage from element at on. Readers call it
// on successive pieces of a stream, so that the stored bytes are never
// held whole beside the converted array.
func (a *Array) convert(at int, dt dtype, order binary.ByteOrder, raw []byte) {
	n := len(raw) / dt.size
	if dt.isFloat() {
		out := a.Float32[at : at+n]
		switch {
		case dt.kind == 'b':
			for k := range out {
				out[k] = safetensors.BF16ToFloat32(order.Uint16(raw[2*k:]))
			}
		case dt.size == 2:
			for k := range out {
				out[k] = safetensors.F16ToFloat32(order.Uint16(raw[2*k:]))
			}
		case dt.size == 4:
			for k := range out {
				out[k] = math.Float32frombits(order.Uint32(raw[4*k:]))
			}
		default:
			for k := range out {
				out[k] = float32(math.Float64frombits(order.Uint64(raw[8*k:])))
			}
		}
		return
	}
	out := a.Int64[at : at+n]
	unused := uint(64 - 8*dt.size) // high bits beyond the stored width
	for k := range out {
		b := raw[k*dt.size:]
		var u uint64
		switch dt.size {
		case 1:
			u = uint64(b[0])
		case 2:
			u = uint64(order.Uint16(b))
		case 4:
			u = uint64(order.Uint32(b))
		default:
			u = order.Uint64(b)
		}
		if dt.kind == 'i' {
			out[k] = int64(u<<unused) >> unused // sign-extend
		} else {
			out[k] = int64(u)
		}
	}
}

// bytes returns the memory a's elements take, for allocation budgets.
func (a *Array) bytes() int { return 4*len(a.Float32) + 8*len(a.Int64) }

// numElements returns the product of shape, or an error when a dimension is
// negative or the product overflows.
func numElements(shape []int) (int, error) {
	if len(shape) > maxDims {
		return 0, fmt.Errorf("%d dimensions, more than the %d supported", len(shape), maxDims)
	}
	n := 1
	for _, d := range shape {
		if d < 0 {
			return 0, fmt.Errorf("negative dimension in shape %v", shape)
		}
		if d != 0 && n > math.MaxInt/d {
			return 0, fmt.Errorf("shape %v has too many elements", shape)
		}
		n *= d
	}
	return n, nil
}

// checkView verifies that the strided view (offset, shape, strides) of a
// buffer of size elements stays inside it, and returns its element count
// and the index just past its last element (0 for an empty view).
func checkView(size, offset int, shape, strides []int) (n, end int, err error) {
	n, err = numElements(shape)
	if err != nil {
		return 0, 0, err
	}
	if len(strides) != len(shape) {
		return 0, 0, fmt.Errorf("%d strides for %d dimensions", len(strides), len(shape))
	}
	if offset < 0 {
		return 0, 0, fmt.Errorf("negative storage offset %d", offset)
	}
	if n == 0 {
		return 0, 0, nil
	}
	last := offset // index of the view's last element
	for k, d := range shape {
		s := strides[k]
		if s < 0 {
			return 0, 0, fmt.Errorf("negative stride in %v", strides)
		}
		if d > 1 && s > (math.MaxInt-last)/(d-1) {
			return 0, 0, fmt.Errorf("strides %v overflow", strides)
		}
		last += (d - 1) * s
	}
	if last >= size {
		return 0, 0, fmt.Errorf("view with offset %d, shape %v and strides %v reaches element %d of a storage of %d",
			offset, shape, strides, last, size)
	}
	return n, last + 1, nil
}

// isContiguous reports whether strides lay shape out in row-major order
// without gaps. Dimensions of size 1 may have any stride.
func isContiguous(shape, strides []int) bool {
	want := 1
	for k := len(shape) - 1; k >= 0; k-- {
		if shape[k] != 1 && strides[k] != want {
			return false
		}
		want *= shape[k]
	}
	return true
}

// gather copies the strided view (offset, shape, strides) of src, whose
// element (i0, i1, ...) is src[offset + Σ ik·strides[k]], into a new
// row-major slice. The view must have passed checkView.
func gather[T any](src []T, offset int, shape, strides []int) []T {
	n, _ := numElements(shape)
	out := make([]T, n)
	if n == 0 {
		return out
	}
	if len(shape) == 0 {
		out[0] = src[offset]
		return out
	}
	last := len(shape) - 1
	inner, innerStride := shape[last], strides[last]
	idx := make([]int, last) // position in the outer dimensions
	pos := offset
	for k := 0; k < n; k += inner {
		row := out[k : k+inner]
		if innerStride == 1 {
			copy(row, src[pos:pos+inner])
		} else {
			for j, p := 0, pos; j < inner; j, p = j+1, p+innerStride {
				row[j] = src[p]
			}
		}
		for d := last - 1; d >= 0; d-- {
			idx[d]++
			pos += strides[d]
			if idx[d] < shape[d] {
				break
			}
			pos -= strides[d] * shape[d]
			idx[d] = 0
		}
	}
	return out
}

// gatherBytes copies the strided view (offset, shape, strides) of a
// storage of size-byte elements into a new row-major byte slice: the same
// gather over bytes, each element one more, innermost dimension of size
// bytes. The view must have passed checkView.
func gatherBytes(raw []byte, size, offset int, shape, strides []int) []byte {
	byteShape := append(slices.Clone(shape), size)
	byteStrides := make([]int, len(strides)+1)
	for k, s := range strides {
		if shape[k] > 1 { // a dimension of size 1 never steps; its stride may be anything
			byteStrides[k] = s * size
		}
	}
	byteStrides[len(strides)] = 1
	return gather(raw, offset*size, byteShape, byteStrides)
}

// view returns the strided view (offset, shape, strides) of the flat array
// a as a new row-major array. The view must have passed checkView.
func (a *Array) view(offset int, shape, strides []int) *Array {
	v := &Array{DType: a.DType, Shape: append([]int{}, shape...)}
	if a.Float32 != nil {
		v.Float32 = gather(a.Float32, offset, shape, strides)
	} else {
		v.Int64 = gather(a.Int64, offset, shape, strides)
	}
	return v
}

// arraySpec is what a caller expects of an array: its kind and shape. The
// readers check it against an array's header before reading the array's
// data, so that an array of the wrong type or size (a labels array of a
// billion bytes beside ten feature rows) is refused at the cost of its
// header. A nil spec accepts any array.
type arraySpec struct {
	name  string // the array, for messages: "features", `array "x"`
	want  string // the expectation in words: "a 2-D float array [N, d]"
	float bool   // a floating-point array, else an integer one
	shape []int  // the dimensions, anyDim where any size will do
}

// anyDim in arraySpec.shape accepts a dimension of any size.
const anyDim = -1

// check returns an error, naming the array, unless an array of dtype
// dt and the given shape meets the spec.
func (s *arraySpec) check(dt dtype, shape []int) error {
	if s == nil {
		return nil
	}
	ok := dt.isFloat() == s.float && len(shape) == len(s.shape)
	for k := 0; ok && k < len(shape); k++ {
		ok = s.shape[k] == anyDim || s.shape[k] == shape[k]
	}
	if !ok {
		return fmt.Errorf("%s: want %s, got %s %v", s.name, s.want, dt.name, shape)
	}
	return nil
}

// missingArray is the error for a multi-array file that lacks name. It
// lists a few of the arrays the file has, not all: a crafted file may have
// millions.
func missingArray(name string, have []string) error {
	if len(have) == 0 {
		return fmt.Errorf("no array %q (the file holds no arrays)", name)
	}
	return fmt.Errorf("no array %q (has: %s)", name, someNames(have))
}

// someNames lists the first few of names, and how many more there are.
func someNames(names []string) string {
	const show = 10
	list := strings.Join(names[:min(len(names), show)], ", ")
	if len(names) > show {
		list += fmt.Sprintf(" and %d more", len(names)-show)
	}
	return list
}
