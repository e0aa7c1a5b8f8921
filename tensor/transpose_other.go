//go:build !amd64

package tensor

// transposeBlocks8 writes nothing where there is no vector kernel:
// operand.pack's loop copies every step.
func transposeBlocks8(dst []float32, dstStride int, src []float32, srcStride, lanes, steps int) int {
	return 0
}
