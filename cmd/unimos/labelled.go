package main

import (
	"fmt"

	"github.com/unimos/unimos/internal/words"
)

// onLabelled says which of n things of noun ("image", "row") accuracies
// are computed on when only some are labelled, "on 1 of 3 images, the
// labelled one", and returns "" when every one is labelled.
func onLabelled(labelled, n int, noun string) string {
	if labelled == n {
		return ""
	}
	return fmt.Sprintf("on %d of %s, the labelled %s", labelled, words.Count(n, noun), words.Agree(labelled, "one", "ones"))
}
