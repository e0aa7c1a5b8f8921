package clip

import (
	"fmt"
	"html"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

// cleanText applies the text normalisation of OpenAI's simple_tokenizer before
// pre-tokenisation: basic_clean (HTML unescaping twice, strip), whitespace_clean
// (every whitespace run becomes one space, strip) and Python's str.lower().
//
// basic_clean also calls ftfy.fix_text; that step is not reproduced. The reference
// fixtures were made with it as the identity, which it is for plain ASCII text. Text
// with mojibake, curly quotes, ligatures, full-width forms or control characters can
// therefore tokenize differently from a Python installation that has ftfy.
func cleanText(text string) string {
	text = pyHTMLUnescape(pyHTMLUnescape(text))
	text = strings.Join(strings.FieldsFunc(text, unicode.IsSpace), " ")
	return pyLower(text)
}

// pyHTMLUnescape is Python's html.unescape: every character reference matching
// &(#[0-9]+;?|#[xX][0-9a-fA-F]+;?|[^\t\n\f <&#;]{1,32};?) is replaced in a single
// left-to-right pass (a replacement is never rescanned).
func pyHTMLUnescape(s string) string {
	if !strings.Contains(s, "&") {
		return s
	}
	var b strings.Builder
	for {
		amp := strings.IndexByte(s, '&')
		if amp < 0 {
			b.WriteString(s)
			return b.String()
		}
		b.WriteString(s[:amp])
		s = s[amp:]
		n, repl := charRef(s)
		if n == 0 {
			b.WriteByte('&')
			s = s[1:]
			continue
		}
		b.WriteString(repl)
		s = s[n:]
	}
}

// charRef decodes the character reference at the start of s (which begins with '&'),
// returning the number of bytes it spans (0 if none) and its replacement text.
func charRef(s string) (int, string) {
	if strings.HasPrefix(s, "&#") {
		return numericCharRef(s)
	}
	// Named reference: up to 32 characters other than \t \n \f space < & # ;
	// plus an optional ';'. Go's html package resolves a single named reference,
	// including the longest-prefix rule for legacy names without ';', the same way.
	end := 1
	for count := 0; end < len(s) && count < 32; count++ {
		r, size := utf8.DecodeRuneInString(s[end:])
		if strings.ContainsRune("\t\n\f <&#;", r) {
			break
		}
		end += size
	}
	if end == 1 {
		return 0, ""
	}
	if end < len(s) && s[end] == ';' {
		end++
	}
	return end, html.UnescapeString(s[:end])
}

// numericCharRef decodes &#123; or &#x7B; (the ';' is optional) with the
// replacements of Python's html module for invalid code points.
func numericCharRef(s string) (int, string) {
	base, start := 10, 2
	if len(s) > 2 && (s[2] == 'x' || s[2] == 'X') {
		base, start = 16, 3
	}
	end := start
	for end < len(s) && isDigitInBase(s[end], base) {
		end++
	}
	if end == start {
		return 0, ""
	}
	digits := s[start:end]
	if end < len(s) && s[end] == ';' {
		end++
	}
	num, err := strconv.ParseUint(digits, base, 32)
	if err != nil || num > unicode.MaxRune || (num >= 0xD800 && num <= 0xDFFF) {
		return end, "\uFFFD"
	}
	switch {
	case num == 0:
		return end, "\uFFFD"
	case num >= 0x80 && num <= 0x9F:
		// Windows-1252 reinterpretation; Go's html package uses the same table.
		return end, html.UnescapeString(fmt.Sprintf("&#%d;", num))
	case isInvalidCodePoint(rune(num)):
		return end, ""
	}
	return end, string(rune(num))
}

func isDigitInBase(c byte, base int) bool {
	switch {
	case c >= '0' && c <= '9':
		return true
	case base == 16:
		return (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F')
	}
	return false
}

// isInvalidCodePoint reports the code points that Python's html.unescape drops:
// C0 controls other than \t \n \f \r, DEL, C1 controls, and the noncharacters.
func isInvalidCodePoint(r rune) bool {
	switch {
	case r >= 0x1 && r <= 0x8, r == 0xB, r >= 0xE && r <= 0x1F, r >= 0x7F && r <= 0x9F:
		return true
	case r >= 0xFDD0 && r <= 0xFDEF:
		return true
	}
	return r&0xFFFE == 0xFFFE
}

// pyLower is Python's str.lower(): the simple lower-case mapping plus the two full
// mappings that differ from it, U+0130 (İ -> i + combining dot above) and the
// context-dependent final sigma (Σ -> ς at the end of a word).
func pyLower(s string) string {
	if !strings.ContainsAny(s, "\u0130\u03A3") {
		return strings.ToLower(s)
	}
	runes := []rune(s)
	var b strings.Builder
	for i, r := range runes {
		switch r {
		case 0x130:
			b.WriteString("i\u0307")
		case 0x3A3:
			if isFinalSigma(runes, i) {
				b.WriteRune('ς')
			} else {
				b.WriteRune('σ')
			}
		default:
			b.WriteRune(unicode.ToLower(r))
		}
	}
	return b.String()
}

// isFinalSigma implements the Unicode Final_Sigma condition as CPython does: the
// sigma at i follows a cased letter and is not followed by one, skipping
// case-ignorable characters in both directions.
func isFinalSigma(runes []rune, i int) bool {
	j := i - 1
	for j >= 0 && isCaseIgnorable(runes[j]) {
		j--
	}
	if j < 0 || !isCased(runes[j]) {
		return false
	}
	j = i + 1
	for j < len(runes) && isCaseIgnorable(runes[j]) {
		j++
	}
	return j == len(runes) || !isCased(runes[j])
}

func isCased(r rune) bool {
	return unicode.In(r, unicode.Lu, unicode.Ll, unicode.Lt, unicode.Other_Lowercase, unicode.Other_Uppercase)
}

// isCaseIgnorable follows the Unicode definition: Mn, Me, Cf, Lm, Sk and the
// Word_Break classes MidLetter, MidNumLet and Single_Quote.
func isCaseIgnorable(r rune) bool {
	if unicode.In(r, unicode.Mn, unicode.Me, unicode.Cf, unicode.Lm, unicode.Sk) {
		return true
	}
	return strings.ContainsRune("'.:·\u0387\u055F\u05F4\u2018\u2019\u2024\u2027\uFE13\uFE52\uFE55\uFF07\uFF0E\uFF1A", r)
}
