//go:build !amd64

package tensor

// expBlocks leaves every element to expScalar on this architecture.
func expBlocks(dst, src []float32) int { return 0 }
