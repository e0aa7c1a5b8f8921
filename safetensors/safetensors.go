// Package safetensors reads and writes the safetensors tensor file format
// (https://github.com/huggingface/safetensors): an 8-byte little-endian header
// length, a JSON header mapping tensor names to dtype, shape and byte offsets
// (plus an optional "__metadata__" string map), then the raw little-endian
// tensor data.
//
// Reading is strict, as the reference implementation is: every tensor's byte
// range must match its dtype and shape, and the ranges, sorted, must tile the
// data region exactly, from its first byte to the end of the file, with no
// overlaps, gaps or trailing bytes. Files are memory-mapped.
package safetensors

import (
	"fmt"
	"slices"
	"strings"

	"github.com/unimos/unimos/internal/mmapfile"
)

// DType names a tensor element type as spelled in safetensors headers.
type DType string

// Element types understood by this package.
const (
	BOOL DType = "BOOL"
	U8   DType = "U8"
	I8   DType = "I8"
	I16  DType = "I16"
	U16  DType = "U16"
	F16  DType = "F16"
	BF16 DType = "BF16"
	I32  DType = "I32"
	U32  DType = "U32"
	F32  DType = "F32"
	F64  DType = "F64"
	I64  DType = "I64"
	U64  DType = "U64"
)

// Size returns the size of one element in bytes, or 0 for an unknown dtype.
func (d DType) Size() int {
	switch d {
	case BOOL, U8, I8:
		return 1
	case I16, U16, F16, BF16:
		return 2
	case I32, U32, F32:
		return 4
	case I64, U64, F64:
		return 8
	}
	return 0
}

// Tensor is one named tensor. When it comes from a File, Data aliases the
// file's memory: it is read-only and valid only until the File is closed.
type Tensor struct {
	Name  string
	DType DType
	Shape []int
	Data  []byte // little-endian elements, row-major
	file  string // for error messages; empty for tensors built in memory
}

// NumElements returns the product of the shape (1 for a scalar, 0 for an
// invalid shape).
func (t *Tensor) NumElements() int {
	n, _ := numElements(t.Shape)
	return n
}

// errorf returns an error naming the tensor and, when known, its file.
func (t *Tensor) errorf(format string, args ...any) error {
	where := fmt.Sprintf("tensor %q", t.Name)
	if t.file != "" {
		where = t.file + ": " + where
	}
	return fmt.Errorf("safetensors: %s: %s", where, fmt.Sprintf(format, args...))
}

// File is a parsed safetensors file.
type File struct {
	path     string
	metadata map[string]string
	tensors  map[string]*Tensor
	order    []string     // tensor names by ascending data offset
	release  func() error // unmaps the file; nil when the data is on the heap
}

// Open reads and validates the safetensors file at path, which must be a
// regular file (a named pipe or a device is refused before it is opened).
// The file is memory-mapped (read into memory where mapping fails); Close
// releases the mapping. A mapped file must not be truncated in place while
// open (replace it by rename, as WriteFile does).
func Open(path string) (*File, error) {
	data, release, err := mmapfile.Open(path, "a safetensors file")
	if err != nil {
		return nil, fmt.Errorf("safetensors: %w", err)
	}
	if len(data) < 8 {
		release()
		return nil, fmt.Errorf("safetensors: %s: file is %d bytes, shorter than the 8-byte header length", path, len(data))
	}
	f, err := Parse(path, data)
	if err != nil {
		release()
		return nil, err
	}
	f.release = release
	return f, nil
}

// Close releases the file's memory mapping, if any. Tensor data obtained from
// the file must not be used afterwards. Close is idempotent.
func (f *File) Close() error {
	release := f.release
	f.release = nil
	f.tensors = nil
	f.order = nil
	if release == nil {
		return nil
	}
	if err := release(); err != nil {
		return fmt.Errorf("safetensors: %s: unmap: %w", f.path, err)
	}
	return nil
}

// Path returns the name the file was opened or parsed under.
func (f *File) Path() string { return f.path }

// Names returns the tensor names in the order their data lies in the file.
func (f *File) Names() []string { return slices.Clone(f.order) }

// Metadata returns the header's "__metadata__" map (nil when absent). The map
// is the file's own; callers must not modify it.
func (f *File) Metadata() map[string]string { return f.metadata }

// Tensor returns the named tensor, or an error naming the file and listing
// the tensors it has.
func (f *File) Tensor(name string) (*Tensor, error) {
	if t, ok := f.tensors[name]; ok {
		return t, nil
	}
	if f.tensors == nil {
		return nil, fmt.Errorf("safetensors: %s: file is closed", f.path)
	}
	return nil, fmt.Errorf("safetensors: %s: no tensor %q (has: %s)", f.path, name, strings.Join(f.order, ", "))
}
