package tensor

import "golang.org/x/sys/cpu"

var hasAVX2FMA = cpu.X86.HasAVX2 && cpu.X86.HasFMA

// expBlocks computes e^src into dst for the leading 8-element blocks of src
// that lie in [-87, 88], with AVX2, and returns how many elements it wrote
// (0 on CPUs without AVX2 and FMA).
func expBlocks(dst, src []float32) int {
	if !hasAVX2FMA || len(src) < 8 {
		return 0
	}
	_ = dst[len(src)-1]
	return expBlocksAVX2(&dst[0], &src[0], len(src))
}

//go:noescape
func expBlocksAVX2(dst, src *float32, n int) int
