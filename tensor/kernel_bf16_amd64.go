package tensor

import "golang.org/x/sys/cpu"

// kernelBF16 is the bf16 micro-kernel, nil where the CPU lacks AVX512_BF16.
// It keeps the f32 AVX-512 kernel's 12×32 tile and block sizes in bytes: kc
// counts k steps, and its 768 steps pack into the 384 32-bit slots of the
// f32 kernel's panels.
var kernelBF16 = func() *microKernel {
	if !cpu.X86.HasAVX512F || !cpu.X86.HasAVX512BF16 {
		return nil
	}
	return &microKernel{name: "avx512-bf16 12x32", mr: 12, nr: 32, kc: 768, mc: 144, nc: 3072, run: runBF16, bf16Pairs: true}
}()

// runBF16 is microKernel.run for kernel12x32BF16; kc counts packed pairs of
// steps. The slicing checks that the assembly stays inside a, b and c.
func runBF16(kc int, a, b, c []float32, ldc int, alpha, beta float32) {
	_ = a[12*kc-1]
	_ = b[32*kc-1]
	_ = c[11*ldc+31]
	kernel12x32BF16(kc, &a[0], &b[0], &c[0], ldc, alpha, beta)
}

// kernel12x32BF16 sets the 12×32 tile at c (row stride ldc floats) to
// alpha·a·b + beta·c over kc ≥ 1 pairs of steps of panels packed by
// packBF16Pairs; see kernel_bf16_amd64.s.
//
//go:noescape
func kernel12x32BF16(kc int, a, b, c *float32, ldc int, alpha, beta float32)
