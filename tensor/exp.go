package tensor

import "math"

// FastExp returns e^x in float32. For x in [-87, 88], which covers every
// result in the normal float32 range, the relative error is below 1e-7, at
// most 2 ulp (TestFastExpAccuracy checks it against math.Exp; the largest
// error seen over every 7th float32 in the interval was 8.2e-8). Outside that
// interval it defers to math.Exp, so overflow gives +Inf, underflow gives
// subnormals and then 0, and NaN and ±Inf behave as in math.Exp. The
// element-wise kernels use the same approximation on whole rows, eight
// values at a time with AVX2 where the CPU has it.
func FastExp(x float32) float32 {
	v := [1]float32{x}
	expScalar(v[:], v[:])
	return v[0]
}

// The constants of FastExp's algorithm: e^x = 2^n · e^r with
// n = round(x/ln2) in [-126, 127] and |r| ≤ ln2/2.
const (
	log2e = 1.44269504088896341
	// ln2 is split in two (Cody–Waite) so that n·ln2Hi is exact and r
	// keeps its low bits.
	ln2Hi = 0.693359375
	ln2Lo = -2.12194440e-4
	// expRound is 1.5·2^23: adding it to x·log2e leaves the sum's last
	// mantissa bit worth 1, so the addition rounds to the nearest integer,
	// which the low mantissa bits then hold.
	expRound = 12582912
	// Minimax polynomial for (e^r - 1 - r)/r² on [-ln2/2, ln2/2], as in
	// Cephes expf, highest degree first.
	expP5 = 1.9875691500e-4
	expP4 = 1.3981999507e-3
	expP3 = 8.3334519073e-3
	expP2 = 4.1665795894e-2
	expP1 = 1.6666665459e-1
	expP0 = 5.0000001201e-1
)

// expConsts holds the constants for the assembly version, in the order
// exp_amd64.s reads them.
var expConsts = [14]float32{
	log2e, expRound, ln2Hi, ln2Lo,
	expP5, expP4, expP3, expP2, expP1, expP0, 1,
	-87, 88,
	math.Float32frombits(math.Float32bits(expRound) - 127),
}

// expSlice sets dst[i] = e^src[i] with FastExp's accuracy; dst may be src.
// expBlocks takes the bulk where the CPU has a vector version; expScalar
// the rest, including every block with a value outside [-87, 88].
func expSlice(dst, src []float32) {
	dst = dst[:len(src)]
	for len(src) > 0 {
		n := expBlocks(dst, src)
		m := min(len(src), n+8)
		expScalar(dst[n:m], src[n:m])
		dst, src = dst[m:], src[m:]
	}
}

// expScalar is expSlice one value at a time.
func expScalar(dst, src []float32) {
	dst = dst[:len(src)]
	for i, x := range src {
		if !(x >= -87 && x <= 88) { // NaN fails both comparisons
			dst[i] = float32(math.Exp(float64(x)))
			continue
		}
		t := x*log2e + expRound
		n := int32(math.Float32bits(t) - math.Float32bits(expRound))
		fn := t - expRound
		r := x - fn*ln2Hi - fn*ln2Lo
		p := ((((expP5*r+expP4)*r+expP3)*r+expP2)*r+expP1)*r + expP0
		p = p*r*r + r + 1
		dst[i] = p * math.Float32frombits(uint32(n+127)<<23)
	}
}
