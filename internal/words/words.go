// Package words writes counts of things in English: "1 image", "2 images",
// "1 class", "3 classes", so that messages never say "1 images", and the
// words that agree with a count ("it" or "they").
package words

import (
	"fmt"
	"strings"
)

// Count returns n followed by the noun, in the plural unless n is 1.
func Count(n int, noun string) string {
	if n == 1 {
		return fmt.Sprintf("%d %s", n, noun)
	}
	return fmt.Sprintf("%d %s", n, Plural(noun))
}

// Plural is the regular English plural of a noun: "class" -> "classes",
// "entry" -> "entries", "image" -> "images". A noun made of several words
// ("class folder") takes the plural on its last word.
func Plural(noun string) string {
	switch {
	case strings.HasSuffix(noun, "epoch"): // "ch" said as "k"
		return noun + "s"
	case strings.HasSuffix(noun, "s"), strings.HasSuffix(noun, "x"),
		strings.HasSuffix(noun, "ch"), strings.HasSuffix(noun, "sh"):
		return noun + "es"
	case len(noun) >= 2 && strings.HasSuffix(noun, "y") && !strings.ContainsAny(noun[len(noun)-2:len(noun)-1], "aeiou"):
		return noun[:len(noun)-1] + "ies"
	}
	return noun + "s"
}

// Agree returns one when n is 1 and many otherwise: the word that agrees
// with a count of n things, as in "skipped 1 file: " + Agree(1, "it was",
// "they were") + " unreadable".
func Agree(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}
