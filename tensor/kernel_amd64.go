package tensor

import "golang.org/x/sys/cpu"

// kernels lists the micro-kernels this CPU can run, fastest first.
var kernels = func() []*microKernel {
	var ks []*microKernel
	if cpu.X86.HasAVX512F {
		ks = append(ks, kernelAVX512)
	}
	if hasAVX2FMA {
		ks = append(ks, kernelAVX2)
	}
	return append(ks, kernelGo)
}()

// kernelAVX512 keeps a 12×32 tile in 24 of the 32 ZMM registers (the BLIS
// Skylake-X shape, transposed): the two 16-lane FMA units stay busy while
// the loads of B and the broadcasts of A fit the two load ports.
var kernelAVX512 = &microKernel{name: "avx512 12x32", mr: 12, nr: 32, kc: 384, mc: 144, nc: 3072, run: runAVX512}

// kernelAVX2 keeps a 6×16 tile in twelve YMM registers (the BLIS Haswell
// shape): two FMA units at 8 lanes each are busy every cycle, and the kc×16
// panel of B (24 KiB) and 6×kc panel of A stay in L1.
var kernelAVX2 = &microKernel{name: "avx2 6x16", mr: 6, nr: 16, kc: 384, mc: 72, nc: 3072, run: runAVX2}

// runAVX512 and runAVX2 are microKernel.run for the assembly kernels. The
// slicing checks that the assembly stays inside a, b and c.
func runAVX512(kc int, a, b, c []float32, ldc int, alpha, beta float32) {
	_ = a[12*kc-1]
	_ = b[32*kc-1]
	_ = c[11*ldc+31]
	kernel12x32AVX512(kc, &a[0], &b[0], &c[0], ldc, alpha, beta)
}

func runAVX2(kc int, a, b, c []float32, ldc int, alpha, beta float32) {
	_ = a[6*kc-1]
	_ = b[16*kc-1]
	_ = c[5*ldc+15]
	kernel6x16AVX2(kc, &a[0], &b[0], &c[0], ldc, alpha, beta)
}

// kernel12x32AVX512 and kernel6x16AVX2 set the mr×nr tile at c (row stride
// ldc floats) to alpha·a·b + beta·c over kc ≥ 1 steps of packed panels; see
// kernel_amd64.s.
//
//go:noescape
func kernel12x32AVX512(kc int, a, b, c *float32, ldc int, alpha, beta float32)

//go:noescape
func kernel6x16AVX2(kc int, a, b, c *float32, ldc int, alpha, beta float32)
