package main

import "fmt"

// epochName names the test after n epochs trained, as every command counts
// epochs: "before training" for 0, "epoch n" after n epochs.
func epochName(n int) string {
	if n == 0 {
		return "before training"
	}
	return fmt.Sprintf("epoch %d", n)
}
