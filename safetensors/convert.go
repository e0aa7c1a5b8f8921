package safetensors

import (
	"encoding/binary"
	"math"
)

// F16ToFloat32 converts an IEEE 754 binary16 value to float32 exactly,
// subnormals, infinities and NaN payloads included.
func F16ToFloat32(h uint16) float32 {
	sign := uint32(h&0x8000) << 16
	exp := uint32(h>>10) & 0x1f
	mant := uint32(h & 0x3ff)
	switch exp {
	case 0:
		// Zero or subnormal: mant × 2^-24, exact in float32.
		v := float32(mant) * (1.0 / (1 << 24))
		return math.Float32frombits(sign | math.Float32bits(v))
	case 0x1f:
		return math.Float32frombits(sign | 0x7f800000 | mant<<13)
	}
	// Rebias the exponent from 15 to 127.
	return math.Float32frombits(sign | (exp+127-15)<<23 | mant<<13)
}

// Float32ToF16 converts f to the nearest binary16 value, ties to even.
// Values beyond the half range become ±Inf, values too small become ±0, and
// NaN stays NaN (quiet, keeping the payload's top bits).
func Float32ToF16(f float32) uint16 {
	b := math.Float32bits(f)
	sign := uint16(b>>16) & 0x8000
	exp := int(b>>23) & 0xff
	mant := b & 0x7fffff
	if exp == 0xff {
		if mant == 0 {
			return sign | 0x7c00
		}
		return sign | 0x7c00 | 0x200 | uint16(mant>>13)
	}
	e := exp - 127 + 15 // half's biased exponent
	switch {
	case e >= 0x1f:
		return sign | 0x7c00
	case e <= 0:
		// Half subnormal: the value in units of 2^-24 is the 24-bit
		// significand shifted right by 14-e. Below 2^-25 it rounds to zero.
		shift := 14 - e
		if shift > 24 {
			return sign
		}
		return sign | uint16(roundShift(mant|0x800000, uint(shift)))
	}
	// A carry out of the mantissa correctly bumps the exponent, up to Inf.
	return sign | uint16(roundShift(uint32(e)<<23|mant, 13))
}

// roundShift returns v >> s rounded to nearest, ties to even (1 <= s <= 31).
func roundShift(v uint32, s uint) uint32 {
	q := v >> s
	r := v & (1<<s - 1)
	half := uint32(1) << (s - 1)
	if r > half || r == half && q&1 == 1 {
		q++
	}
	return q
}

// BF16ToFloat32 converts a bfloat16 value to float32 exactly.
func BF16ToFloat32(h uint16) float32 { return math.Float32frombits(uint32(h) << 16) }

// Float32ToBF16 converts f to the nearest bfloat16 value, ties to even; NaN
// stays NaN.
func Float32ToBF16(f float32) uint16 {
	b := math.Float32bits(f)
	if b&0x7fffffff > 0x7f800000 {
		return uint16(b>>16) | 0x40
	}
	return uint16(roundShift(b, 16))
}

// Float32 returns the tensor's elements as float32; F16, BF16, F32 and F64
// tensors are converted (F64 rounds to nearest).
func (t *Tensor) Float32() ([]float32, error) {
	dst := make([]float32, len(t.Data)/max(t.DType.Size(), 1))
	if err := t.Float32Into(dst); err != nil {
		return nil, err
	}
	return dst, nil
}

// Float32Into converts the tensor's elements into dst, whose length must be
// the tensor's element count; it lets callers decode straight into their own
// storage without an intermediate copy.
func (t *Tensor) Float32Into(dst []float32) error {
	if err := t.checkData(); err != nil {
		return err
	}
	if len(dst) != t.NumElements() {
		return t.errorf("%d elements into a buffer of %d", t.NumElements(), len(dst))
	}
	d := t.Data
	le := binary.LittleEndian
	switch t.DType {
	case F16:
		for i := range dst {
			dst[i] = F16ToFloat32(le.Uint16(d[2*i:]))
		}
	case BF16:
		for i := range dst {
			dst[i] = BF16ToFloat32(le.Uint16(d[2*i:]))
		}
	case F32:
		for i := range dst {
			dst[i] = math.Float32frombits(le.Uint32(d[4*i:]))
		}
	case F64:
		for i := range dst {
			dst[i] = float32(math.Float64frombits(le.Uint64(d[8*i:])))
		}
	default:
		return t.errorf("cannot convert dtype %s to float32 (want F16, BF16, F32 or F64)", t.DType)
	}
	return nil
}

// Int64 returns the tensor's elements as int64, from any signed or unsigned
// integer dtype; U64 values above math.MaxInt64 are an error.
func (t *Tensor) Int64() ([]int64, error) {
	if err := t.checkData(); err != nil {
		return nil, err
	}
	d := t.Data
	le := binary.LittleEndian
	dst := make([]int64, t.NumElements())
	switch t.DType {
	case I8:
		for i := range dst {
			dst[i] = int64(int8(d[i]))
		}
	case U8:
		for i := range dst {
			dst[i] = int64(d[i])
		}
	case I16:
		for i := range dst {
			dst[i] = int64(int16(le.Uint16(d[2*i:])))
		}
	case U16:
		for i := range dst {
			dst[i] = int64(le.Uint16(d[2*i:]))
		}
	case I32:
		for i := range dst {
			dst[i] = int64(int32(le.Uint32(d[4*i:])))
		}
	case U32:
		for i := range dst {
			dst[i] = int64(le.Uint32(d[4*i:]))
		}
	case I64, U64:
		for i := range dst {
			v := le.Uint64(d[8*i:])
			if t.DType == U64 && v > math.MaxInt64 {
				return nil, t.errorf("element %d = %d does not fit in int64", i, v)
			}
			dst[i] = int64(v)
		}
	default:
		return nil, t.errorf("cannot convert dtype %s to int64 (want an integer dtype)", t.DType)
	}
	return dst, nil
}

// checkData verifies that the tensor's shape, dtype and data length agree, so
// that conversions never index out of range, even for tensors built by hand.
func (t *Tensor) checkData() error {
	size := t.DType.Size()
	if size == 0 {
		return t.errorf("unknown dtype %q", t.DType)
	}
	n, err := numElements(t.Shape)
	if err != nil {
		return t.errorf("%v", err)
	}
	if n > math.MaxInt/size || n*size != len(t.Data) {
		return t.errorf("%s shape %v does not match %d data bytes", t.DType, t.Shape, len(t.Data))
	}
	return nil
}

// FromFloat32 builds a tensor of dtype F16, BF16, F32 or F64 holding values
// (row-major, len = product of shape), rounding to nearest even where the
// dtype is narrower.
func FromFloat32(name string, dtype DType, shape []int, values []float32) (*Tensor, error) {
	switch dtype {
	case F16, BF16, F32, F64:
	default:
		return nil, (&Tensor{Name: name}).errorf("cannot store float32 values as %s (want F16, BF16, F32 or F64)", dtype)
	}
	t, err := newTensor(name, dtype, shape, len(values))
	if err != nil {
		return nil, err
	}
	d := t.Data
	le := binary.LittleEndian
	switch dtype {
	case F16:
		for i, v := range values {
			le.PutUint16(d[2*i:], Float32ToF16(v))
		}
	case BF16:
		for i, v := range values {
			le.PutUint16(d[2*i:], Float32ToBF16(v))
		}
	case F32:
		for i, v := range values {
			le.PutUint32(d[4*i:], math.Float32bits(v))
		}
	case F64:
		for i, v := range values {
			le.PutUint64(d[8*i:], math.Float64bits(float64(v)))
		}
	}
	return t, nil
}

// FromInt64 builds a tensor of an integer dtype (I8, U8, I16, U16, I32, U32,
// I64) holding values (row-major, len = product of shape); a value outside
// the dtype's range is an error.
func FromInt64(name string, dtype DType, shape []int, values []int64) (*Tensor, error) {
	size := dtype.Size()
	var lo, hi int64
	switch dtype {
	case I8, I16, I32, I64:
		hi = math.MaxInt64 >> (64 - 8*size)
		lo = -hi - 1
	case U8, U16, U32:
		hi = 1<<(8*size) - 1
	default:
		return nil, (&Tensor{Name: name}).errorf("cannot store int64 values as %s (want I8, U8, I16, U16, I32, U32 or I64)", dtype)
	}
	t, err := newTensor(name, dtype, shape, len(values))
	if err != nil {
		return nil, err
	}
	for i, v := range values {
		if v < lo || v > hi {
			return nil, t.errorf("element %d = %d out of range for %s", i, v, dtype)
		}
		// The low bytes of the two's complement, little-endian, encode
		// every integer width.
		u := uint64(v)
		for b := range size {
			t.Data[i*size+b] = byte(u >> (8 * b))
		}
	}
	return t, nil
}

// newTensor allocates a zeroed tensor after checking that shape is valid and
// holds count elements.
func newTensor(name string, dtype DType, shape []int, count int) (*Tensor, error) {
	t := &Tensor{Name: name, DType: dtype, Shape: append([]int(nil), shape...)}
	n, err := numElements(shape)
	if err != nil {
		return nil, t.errorf("%v", err)
	}
	if n != count {
		return nil, t.errorf("shape %v holds %d elements, got %d values", shape, n, count)
	}
	size := dtype.Size()
	if size == 0 {
		return nil, t.errorf("unknown dtype %q", dtype)
	}
	if n > math.MaxInt/size {
		return nil, t.errorf("shape %v overflows", shape)
	}
	t.Data = make([]byte, n*size)
	return t, nil
}
