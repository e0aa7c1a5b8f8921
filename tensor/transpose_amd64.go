package tensor

// transposeBlocks8 writes the leading 8-step blocks of the source rows
// [0, lanes) as columns, lanes a multiple of 8: for s in [0, blocks·8) and i
// in [0, lanes), dst[s·dstStride+i] = src[i·srcStride+s], with AVX, and
// returns how many steps it wrote (0 on CPUs without AVX2). It is
// operand.pack's transposing copy, a pure copy of values.
func transposeBlocks8(dst []float32, dstStride int, src []float32, srcStride, lanes, steps int) int {
	n := steps &^ 7
	if !hasAVX2FMA || n == 0 || lanes < 8 || lanes%8 != 0 {
		return 0
	}
	_ = dst[(n-1)*dstStride+lanes-1]
	_ = src[(lanes-1)*srcStride+n-1]
	transpose8x8AVX(&dst[0], dstStride, &src[0], srcStride, n/8, lanes/8)
	return n
}

//go:noescape
func transpose8x8AVX(dst *float32, dstStride int, src *float32, srcStride int, blocks, groups int)
