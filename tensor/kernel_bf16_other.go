//go:build !amd64

package tensor

// kernelBF16 is the bf16 micro-kernel; there is none off amd64, so bf16
// products run in f32 there.
var kernelBF16 *microKernel
