package tensor

// transposeBlocks8 writes the leading 8-step blocks of eight source rows
// as columns: for s in [0, blocks·8) and i in [0, 8),
// dst[s·dstStride+i] = src[i·srcStride+s], with AVX, and returns how many
// steps it wrote (0 on CPUs without AVX2). It is operand.pack's transposing
// copy, eight lanes at a time, a pure copy of values.
func transposeBlocks8(dst []float32, dstStride int, src []float32, srcStride, steps int) int {
	n := steps &^ 7
	if !hasAVX2FMA || n == 0 {
		return 0
	}
	_ = dst[(n-1)*dstStride+7]
	_ = src[7*srcStride+n-1]
	transpose8x8AVX(&dst[0], dstStride, &src[0], srcStride, n/8)
	return n
}

//go:noescape
func transpose8x8AVX(dst *float32, dstStride int, src *float32, srcStride int, blocks int)
