package tensor

import (
	"fmt"
	"math"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"
)

// Precision is the precision of the operands of Gemm's products. The
// accumulation, alpha, beta and C are float32 in every precision.
type Precision string

// Precisions accepted by ParsePrecision and ChoosePrecision.
const (
	PrecisionF32  Precision = "f32"  // float32 operands: the default
	PrecisionBF16 Precision = "bf16" // operands rounded to bfloat16, products summed in float32
	PrecisionAuto Precision = "auto" // bf16 where calibration finds it faster, else f32
)

// ParsePrecision reads "f32", "bf16" or "auto", as a --precision flag takes
// them.
func ParsePrecision(s string) (Precision, error) {
	switch p := Precision(s); p {
	case PrecisionF32, PrecisionBF16, PrecisionAuto:
		return p, nil
	}
	return "", fmt.Errorf("precision %q: want %s, %s or %s", s, PrecisionF32, PrecisionBF16, PrecisionAuto)
}

// bf16AutoSpeedup is how much faster than the f32 micro-kernel the bf16 one
// must run in calibration for auto to choose it. The calibration times the
// kernels alone, while a bf16 product also rounds its operands as it packs
// them; and the ratio is far from 1 on the CPUs measured (about 0.5 on Intel
// Emerald Rapids, where VDPBF16PS runs at half the FMA rate, and about 2 on
// AMD Zen 4), so a margin keeps noise from flipping the choice.
const bf16AutoSpeedup = 1.25

// ChoosePrecision returns the precision that products run in here when p
// is requested, and why: f32 stays f32; bf16 falls back to f32 on CPUs
// without AVX512_BF16; auto picks bf16 only where it has the instruction and
// a calibration of a few milliseconds, run at the first such call, finds
// the bf16 micro-kernel at least bf16AutoSpeedup times as fast as the f32
// one.
func ChoosePrecision(p Precision) (Precision, string, error) {
	if _, err := ParsePrecision(string(p)); err != nil {
		return "", "", fmt.Errorf("tensor: %w", err)
	}
	switch {
	case p == PrecisionF32:
		return PrecisionF32, "requested", nil
	case kernelBF16 == nil:
		return PrecisionF32, fmt.Sprintf("%s requested, but this CPU lacks AVX512_BF16", p), nil
	case p == PrecisionBF16:
		return PrecisionBF16, "requested", nil
	}
	speedup := bf16Speedup()
	why := fmt.Sprintf("auto: the bf16 kernel ran at %.2f× the f32 kernel's speed (bf16 needs %.2f×)", speedup, bf16AutoSpeedup)
	if speedup >= bf16AutoSpeedup {
		return PrecisionBF16, why, nil
	}
	return PrecisionF32, why, nil
}

// bf16Products is set while products run in bf16 (SetPrecision).
var bf16Products atomic.Bool

// SetPrecision makes every Gemm in the process, on every goroutine, run
// its products in p (GemmSerial stays f32: see there), f32 or bf16 as ChoosePrecision returns
// them, and returns a function that restores the precision set before. It
// is process-wide because the CLIP encoders reach Gemm through many layers:
// an inference command (extract) sets it for its run, and tests restore it
// with t.Cleanup. Training code never sets it, so that gradients and
// optimizer state stay f32; do not train while it is bf16.
//
// bf16 products run on the Go backend's bf16 kernel whichever backend
// Backend names. SetPrecision panics on bf16 where the CPU lacks
// AVX512_BF16 and on auto: resolve the request with ChoosePrecision first.
func SetPrecision(p Precision) (restore func()) {
	switch {
	case p == PrecisionBF16 && kernelBF16 == nil:
		panic("tensor.SetPrecision: bf16 on a CPU without AVX512_BF16")
	case p != PrecisionF32 && p != PrecisionBF16:
		panic(fmt.Sprintf("tensor.SetPrecision: %q; want f32 or bf16 (from ChoosePrecision)", p))
	}
	was := bf16Products.Swap(p == PrecisionBF16)
	return func() { bf16Products.Store(was) }
}

// CurrentPrecision returns the precision products run in now.
func CurrentPrecision() Precision {
	if bf16Products.Load() {
		return PrecisionBF16
	}
	return PrecisionF32
}

// BackendFor describes, as Backend does, what runs products in p (as
// ChoosePrecision returns it): Backend for f32, the Go backend's bf16 kernel
// for bf16.
func BackendFor(p Precision) string {
	if p == PrecisionBF16 && kernelBF16 != nil {
		return goBackend{kernelBF16}.describe(Threads())
	}
	return Backend()
}

// productBackend is the backend for the next product: the bf16 kernel while
// SetPrecision(bf16) is in force, else the one Init/UseBackend chose.
func productBackend() gemmBackend {
	if bf16Products.Load() {
		return goBackend{kernelBF16}
	}
	return *currentBackend()
}

// bf16Speedup times the f32 and bf16 micro-kernels on the same 12×32×256
// tile product from L1, alternating, best of several rounds of a few hundred
// microseconds, and returns how many times faster bf16 ran.
var bf16Speedup = sync.OnceValue(func() float64 {
	const k, calls, rounds = 256, 64, 8
	f32, bf16 := kernels[0], kernelBF16
	time1 := func(mk *microKernel, steps int) time.Duration {
		a, b, c := make([]float32, mk.mr*steps), make([]float32, mk.nr*steps), make([]float32, mk.mr*mk.nr)
		for i := range a {
			a[i] = 1
		}
		for i := range b {
			b[i] = 1
		}
		start := time.Now()
		for range calls {
			mk.run(steps, a, b, c, mk.nr, 1, 0)
		}
		return time.Since(start)
	}
	best32, best16 := time.Duration(math.MaxInt64), time.Duration(math.MaxInt64)
	for range rounds {
		best32 = min(best32, time1(f32, k))
		best16 = min(best16, time1(bf16, k/2))
	}
	return best32.Seconds() / best16.Seconds()
})

// BF16Round rounds f to the nearest bfloat16, ties to even, as PyTorch's
// float-to-bfloat16 conversion does, and returns its bits: the high half of
// the float32's. Overflow rounds to ±Inf, and every NaN becomes the quiet
// NaN 0x7fc0. The bits shifted into the high half of a float32 are the
// rounded value exactly.
func BF16Round(f float32) uint16 {
	bits := math.Float32bits(f)
	if bits&0x7fffffff > 0x7f800000 {
		return 0x7fc0
	}
	return uint16((bits + 0x7fff + (bits>>16)&1) >> 16)
}

// bf16Pair packs the bf16 values of k steps 2p and 2p+1 into one 32-bit slot,
// the even step in the low half: the order in which VDPBF16PS pairs them.
func bf16Pair(even, odd float32) uint32 {
	return uint32(BF16Round(even)) | uint32(BF16Round(odd))<<16
}

// packBF16Pairs is pack (the same panels of w lanes) for the bf16 kernel:
// each 32-bit slot of dst holds the rounded values of two consecutive steps
// (bf16Pair), so panel q holds lanes [q·w, q·w+w) pair by pair, slot
// q·w·ks + p·w + l for ks = ⌈steps/2⌉. An odd last step is paired with a
// zero, and lanes past the end are zero.
func (o operand) packBF16Pairs(dst []float32, lanes, steps, w int) int {
	ks := (steps + 1) / 2
	out := unsafe.Slice((*uint32)(unsafe.Pointer(unsafe.SliceData(dst))), len(dst))
	for l0 := 0; l0 < lanes; l0 += w {
		nl := min(w, lanes-l0)
		panel := out[l0*ks : (l0+w)*ks]
		if o.lanesContiguous {
			for p := range ks {
				d := panel[p*w : p*w+w]
				even := o.data[2*p*o.stride+l0:][:nl]
				if 2*p+1 < steps {
					odd := o.data[(2*p+1)*o.stride+l0:][:nl]
					for l, v := range even {
						d[l] = bf16Pair(v, odd[l])
					}
				} else {
					for l, v := range even {
						d[l] = bf16Pair(v, 0)
					}
				}
				clear(d[nl:])
			}
			continue
		}
		for l := range nl {
			row := o.data[(l0+l)*o.stride:][:steps]
			p := 0
			for ; 2*p+1 < steps; p++ {
				panel[p*w+l] = bf16Pair(row[2*p], row[2*p+1])
			}
			if steps%2 == 1 {
				panel[p*w+l] = bf16Pair(row[steps-1], 0)
			}
		}
		for l := nl; l < w; l++ {
			for p := range ks {
				panel[p*w+l] = 0
			}
		}
	}
	return ks
}
