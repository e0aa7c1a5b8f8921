//go:build !amd64

package nn

// momentumStepBlocks updates nothing where there is no vector kernel:
// momentumStep's loop does all the work.
func momentumStepBlocks(value, grad, buf []float32, lr, momentum, weightDecay float32) int { return 0 }
