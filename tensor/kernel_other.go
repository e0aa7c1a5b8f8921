//go:build !amd64

package tensor

// kernels lists the micro-kernels this CPU can run, fastest first.
var kernels = []*microKernel{kernelGo}
