package tensor

// kernelGo is the portable micro-kernel. Sixteen float32 accumulators fit
// the 32 floating-point registers of arm64; on amd64, where only 15 are free
// to the Go compiler, a few spill, but amd64 uses it only on CPUs without
// AVX2 and FMA.
var kernelGo = &microKernel{name: "portable 4x4", mr: 4, nr: 4, kc: 256, mc: 128, nc: 2048, run: kernel4x4}

// kernel4x4 is microKernel.run for a 4×4 tile.
func kernel4x4(kc int, a, b, c []float32, ldc int, alpha, beta float32) {
	var c00, c01, c02, c03, c10, c11, c12, c13, c20, c21, c22, c23, c30, c31, c32, c33 float32
	a, b = a[:4*kc], b[:4*kc]
	for len(a) >= 4 && len(b) >= 4 {
		a0, a1, a2, a3 := a[0], a[1], a[2], a[3]
		b0, b1, b2, b3 := b[0], b[1], b[2], b[3]
		c00 += a0 * b0
		c01 += a0 * b1
		c02 += a0 * b2
		c03 += a0 * b3
		c10 += a1 * b0
		c11 += a1 * b1
		c12 += a1 * b2
		c13 += a1 * b3
		c20 += a2 * b0
		c21 += a2 * b1
		c22 += a2 * b2
		c23 += a2 * b3
		c30 += a3 * b0
		c31 += a3 * b1
		c32 += a3 * b2
		c33 += a3 * b3
		a, b = a[4:], b[4:]
	}
	tile := [4][4]float32{
		{c00, c01, c02, c03},
		{c10, c11, c12, c13},
		{c20, c21, c22, c23},
		{c30, c31, c32, c33},
	}
	for i, acc := range tile {
		row := c[i*ldc : i*ldc+4]
		for j, v := range acc {
			if beta == 0 {
				row[j] = alpha * v
			} else {
				row[j] = alpha*v + beta*row[j]
			}
		}
	}
}
