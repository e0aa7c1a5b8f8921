package safetensors

import (
	"math"
	"math/rand/v2"
	"slices"
	"testing"
)

// TestFloat32ToF16KnownValues checks values whose binary16 encodings follow
// from the IEEE 754 definition.
func TestFloat32ToF16KnownValues(t *testing.T) {
	cases := []struct {
		name string
		in   float32
		want uint16
	}{
		{"zero", 0, 0x0000},
		{"negative zero", float32(math.Copysign(0, -1)), 0x8000},
		{"one", 1, 0x3c00},
		{"minus one", -1, 0xbc00},
		{"two", 2, 0x4000},
		{"one third", 1.0 / 3, 0x3555},
		{"max finite", 65504, 0x7bff},
		{"just below the overflow tie", 65519, 0x7bff},
		{"overflow tie rounds to even = Inf", 65520, 0x7c00},
		{"beyond range", 1e6, 0x7c00},
		{"-beyond range", -1e6, 0xfc00},
		{"+Inf", float32(math.Inf(1)), 0x7c00},
		{"-Inf", float32(math.Inf(-1)), 0xfc00},
		{"smallest normal", 0x1p-14, 0x0400},
		{"largest subnormal", 1023 * 0x1p-24, 0x03ff},
		{"smallest subnormal", 0x1p-24, 0x0001},
		{"-smallest subnormal", -0x1p-24, 0x8001},
		{"half the smallest subnormal ties to 0", 0x1p-25, 0x0000},
		{"just above half the smallest subnormal", 0x1.000002p-25, 0x0001},
		{"three halves of the smallest subnormal ties to 2", 3 * 0x1p-25, 0x0002},
		{"five halves of the smallest subnormal ties to 2", 5 * 0x1p-25, 0x0002},
		{"far below the subnormals", 0x1p-40, 0x0000},
		{"float32 subnormal", 0x1p-140, 0x0000},
		{"1+2^-11 ties down to 1", 1 + 0x1p-11, 0x3c00},
		{"1+3*2^-11 ties up to 1+2^-9", 1 + 3*0x1p-11, 0x3c02},
		{"just above the tie rounds up", 1 + 0x1p-11 + 0x1p-23, 0x3c01},
		{"2049 ties to 2048", 2049, 0x6800},
		{"2051 ties to 2052", 2051, 0x6802},
		{"subnormal to normal carry", 0x1.ffcp-15 + 0x1p-26, 0x0400},
	}
	for _, c := range cases {
		if got := Float32ToF16(c.in); got != c.want {
			t.Errorf("%s: Float32ToF16(%g) = %#04x, want %#04x", c.name, c.in, got, c.want)
		}
	}
}

func TestFloat32ToF16NaN(t *testing.T) {
	for _, bits := range []uint32{0x7fc00000, 0x7f800001, 0xffc00000, 0x7f800100} {
		h := Float32ToF16(math.Float32frombits(bits))
		if h&0x7c00 != 0x7c00 || h&0x3ff == 0 {
			t.Errorf("NaN %#08x -> %#04x, not a half NaN", bits, h)
		}
		if h>>15 != uint16(bits>>31) {
			t.Errorf("NaN %#08x -> %#04x lost its sign", bits, h)
		}
	}
}

// TestF16ToFloat32Exhaustive compares every half value with the textbook
// formula (-1)^s 2^(e-15) (1 + m/1024), or 2^-14 m/1024 for subnormals.
func TestF16ToFloat32Exhaustive(t *testing.T) {
	for h := range 1 << 16 {
		s, e, m := h>>15, (h>>10)&0x1f, h&0x3ff
		got := F16ToFloat32(uint16(h))
		var want float64
		switch e {
		case 0x1f:
			if m != 0 {
				if !math.IsNaN(float64(got)) {
					t.Fatalf("%#04x -> %g, want NaN", h, got)
				}
				if back := Float32ToF16(got); back != uint16(h)|0x200 {
					t.Fatalf("NaN %#04x -> %g -> %#04x, payload not kept", h, got, back)
				}
				continue
			}
			want = math.Inf(1)
		case 0:
			want = math.Ldexp(float64(m), -24)
		default:
			want = math.Ldexp(1+float64(m)/1024, e-15)
		}
		if s == 1 {
			want = -want
		}
		if float64(got) != want || math.Signbit(float64(got)) != (s == 1) {
			t.Fatalf("F16ToFloat32(%#04x) = %g, want %g", h, got, want)
		}
		if back := Float32ToF16(got); back != uint16(h) {
			t.Fatalf("round trip %#04x -> %g -> %#04x", h, got, back)
		}
	}
}

// TestFloat32ToF16Nearest compares Float32ToF16 with a brute-force reference:
// the nearest of all finite half values (plus the overflow threshold), ties
// to the even encoding.
func TestFloat32ToF16Nearest(t *testing.T) {
	// Non-negative finite halves in increasing order; encoding = index.
	halves := make([]float64, 0x7c00)
	for h := range halves {
		halves[h] = float64(F16ToFloat32(uint16(h)))
	}
	reference := func(x float32) uint16 {
		v := math.Abs(float64(x))
		var sign uint16
		if math.Signbit(float64(x)) {
			sign = 0x8000
		}
		// IEEE: values at or beyond 65520 (max + half an ulp) overflow.
		if v >= 65520 {
			return sign | 0x7c00
		}
		i, _ := slices.BinarySearch(halves, v)
		if i == len(halves) {
			return sign | 0x7bff
		}
		if i == 0 || halves[i] == v {
			return sign | uint16(i)
		}
		lo, hi := halves[i-1], halves[i]
		switch {
		case v-lo < hi-v:
			return sign | uint16(i-1)
		case v-lo > hi-v:
			return sign | uint16(i)
		case (i-1)%2 == 0:
			return sign | uint16(i-1)
		}
		return sign | uint16(i)
	}
	rng := rand.New(rand.NewPCG(1, 2))
	n := 200000
	if testing.Short() {
		n = 20000
	}
	for range n {
		var x float32
		switch rng.IntN(3) {
		case 0: // any finite float32 in the half range and a bit beyond
			x = float32(math.Ldexp(rng.Float64(), rng.IntN(45)-28))
		case 1: // exact midpoints between neighbouring halves
			h := rng.IntN(0x7bff)
			x = float32((halves[h] + halves[h+1]) / 2)
		case 2: // one float32 ulp off a midpoint
			h := rng.IntN(0x7bff)
			mid := float32((halves[h] + halves[h+1]) / 2)
			x = math.Nextafter32(mid, float32(math.Inf(1-2*rng.IntN(2))))
		}
		if rng.IntN(2) == 0 {
			x = -x
		}
		if got, want := Float32ToF16(x), reference(x); got != want {
			t.Fatalf("Float32ToF16(%g = %#08x) = %#04x, want %#04x", x, math.Float32bits(x), got, want)
		}
	}
}

func TestBF16(t *testing.T) {
	cases := []struct {
		in   float32
		want uint16
	}{
		{0, 0x0000},
		{1, 0x3f80},
		{-2, 0xc000},
		{float32(math.Inf(1)), 0x7f80},
		{math.MaxFloat32, 0x7f80},                  // rounds up past the largest bf16
		{1 + 0x1p-8, 0x3f80},                       // tie, even stays
		{1 + 3*0x1p-8, 0x3f82},                     // tie, odd rounds up
		{1 + 0x1p-8 + 0x1p-20, 0x3f81},             // above the tie
		{math.Float32frombits(0x00010000), 0x0001}, // float32 subnormal
	}
	for _, c := range cases {
		if got := Float32ToBF16(c.in); got != c.want {
			t.Errorf("Float32ToBF16(%g) = %#04x, want %#04x", c.in, got, c.want)
		}
		if back := BF16ToFloat32(c.want); Float32ToBF16(back) != c.want {
			t.Errorf("BF16 %#04x does not round-trip", c.want)
		}
	}
	if h := Float32ToBF16(math.Float32frombits(0x7f800001)); h&0x7f80 != 0x7f80 || h&0x7f == 0 {
		t.Errorf("NaN with low payload -> %#04x, not NaN", h)
	}
	if got := BF16ToFloat32(0x3f80); got != 1 {
		t.Errorf("BF16ToFloat32(0x3f80) = %g, want 1", got)
	}
}

func TestFromFloat32RoundTrip(t *testing.T) {
	values := []float32{0, 1, -1.5, 0.1, 3e-5, 65504}
	for _, dt := range []DType{F16, BF16, F32, F64} {
		tensor, err := FromFloat32("x", dt, []int{2, 3}, values)
		if err != nil {
			t.Fatal(err)
		}
		if len(tensor.Data) != 6*dt.Size() {
			t.Fatalf("%s: %d bytes", dt, len(tensor.Data))
		}
		got, err := tensor.Float32()
		if err != nil {
			t.Fatal(err)
		}
		for i, v := range values {
			want := v
			switch dt {
			case F16:
				want = F16ToFloat32(Float32ToF16(v))
			case BF16:
				want = BF16ToFloat32(Float32ToBF16(v))
			}
			if got[i] != want {
				t.Errorf("%s: element %d = %g, want %g", dt, i, got[i], want)
			}
		}
	}
	if _, err := FromFloat32("x", I32, []int{1}, []float32{1}); err == nil {
		t.Error("FromFloat32 accepted I32")
	}
	if _, err := FromFloat32("x", F32, []int{2, 2}, []float32{1}); err == nil {
		t.Error("FromFloat32 accepted 1 value for shape [2 2]")
	}
}

func TestFromInt64RoundTrip(t *testing.T) {
	cases := []struct {
		dtype  DType
		values []int64
		bad    int64
	}{
		{I8, []int64{-128, 127, -1}, 128},
		{U8, []int64{0, 255, 7}, -1},
		{I16, []int64{-32768, 32767, -1}, 32768},
		{U16, []int64{0, 65535, 9}, 65536},
		{I32, []int64{math.MinInt32, math.MaxInt32, -1}, math.MaxInt32 + 1},
		{U32, []int64{0, math.MaxUint32, 1}, -1},
		{I64, []int64{math.MinInt64, math.MaxInt64, -1}, 0},
	}
	for _, c := range cases {
		tensor, err := FromInt64("y", c.dtype, []int{3}, c.values)
		if err != nil {
			t.Fatal(err)
		}
		got, err := tensor.Int64()
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(got, c.values) {
			t.Errorf("%s: got %v, want %v", c.dtype, got, c.values)
		}
		if c.dtype != I64 {
			if _, err := FromInt64("y", c.dtype, []int{1}, []int64{c.bad}); err == nil {
				t.Errorf("%s accepted out-of-range %d", c.dtype, c.bad)
			}
		}
	}
	if _, err := FromInt64("y", F32, []int{1}, []int64{1}); err == nil {
		t.Error("FromInt64 accepted F32")
	}
}

func TestConversionErrors(t *testing.T) {
	u8 := &Tensor{Name: "b", DType: U8, Shape: []int{2}, Data: []byte{1, 2}}
	if _, err := u8.Float32(); err == nil {
		t.Error("U8 converted to float32")
	}
	f32 := &Tensor{Name: "f", DType: F32, Shape: []int{1}, Data: make([]byte, 4)}
	if _, err := f32.Int64(); err == nil {
		t.Error("F32 converted to int64")
	}
	short := &Tensor{Name: "s", DType: F32, Shape: []int{3}, Data: make([]byte, 8)}
	if _, err := short.Float32(); err == nil {
		t.Error("converted a tensor with too little data")
	}
	if err := f32.Float32Into(make([]float32, 2)); err == nil {
		t.Error("Float32Into accepted a wrong-sized buffer")
	}
	big := &Tensor{Name: "u", DType: U64, Shape: []int{1}, Data: []byte{0, 0, 0, 0, 0, 0, 0, 0x80}}
	if _, err := big.Int64(); err == nil {
		t.Error("U64 2^63 converted to int64")
	}
}

func BenchmarkF16ToFloat32(b *testing.B) {
	tensor, _ := FromFloat32("x", F16, []int{1 << 16}, make([]float32, 1<<16))
	dst := make([]float32, 1<<16)
	b.SetBytes(int64(len(tensor.Data)))
	for b.Loop() {
		tensor.Float32Into(dst)
	}
}

func BenchmarkFloat32ToF16(b *testing.B) {
	rng := rand.New(rand.NewPCG(3, 4))
	values := make([]float32, 1<<16)
	for i := range values {
		values[i] = float32(rng.NormFloat64())
	}
	b.SetBytes(int64(2 * len(values)))
	for b.Loop() {
		FromFloat32("x", F16, []int{len(values)}, values)
	}
}
