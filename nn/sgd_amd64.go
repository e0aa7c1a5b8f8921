package nn

import "golang.org/x/sys/cpu"

// momentumStepBlocks applies momentumStep to the leading 16-element blocks
// of grad with AVX-512 and returns how many elements it updated (0 on CPUs
// without AVX-512). Its arithmetic is momentumStep's, one rounding per
// operation in the same order, so both give the same bits.
func momentumStepBlocks(value, grad, buf []float32, lr, momentum, weightDecay float32) int {
	n := len(grad) &^ 15
	if !cpu.X86.HasAVX512F || n == 0 {
		return 0
	}
	_, _ = value[n-1], buf[n-1]
	momentumStepAVX512(&value[0], &grad[0], &buf[0], n/16, lr, momentum, weightDecay)
	return n
}

//go:noescape
func momentumStepAVX512(value, grad, buf *float32, blocks int, lr, momentum, weightDecay float32)
