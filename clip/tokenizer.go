package clip

import (
	"bufio"
	"bytes"
	"compress/gzip"
	_ "embed" // the default BPE vocabulary is compiled into the binary
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"regexp"
	"strings"
	"sync"
	"unicode/utf8"

	"github.com/unimos/unimos/internal/regularfile"
)

// ContextLength is the number of token positions of every released CLIP text encoder.
const ContextLength = 77

const (
	startToken = "<|startoftext|>"
	endToken   = "<|endoftext|>"
	endOfWord  = "</w>"
	// defaultMerges is the number of merges simple_tokenizer.py reads from the
	// vocabulary file: 49152 - 256 - 2 (the file holds many more).
	defaultMerges = 49152 - 256 - 2
	// maxCachedWords bounds the per-tokenizer word cache; it is emptied when full.
	maxCachedWords = 1 << 16
)

// bpeVocabGz is OpenAI's bpe_simple_vocab_16e6.txt.gz (MIT licence, see vocab/).
//
//go:embed vocab/bpe_simple_vocab_16e6.txt.gz
var bpeVocabGz []byte

// preTokenPattern is simple_tokenizer.py's regular expression. Python's \s there is
// Unicode-aware and Go's is ASCII-only, but cleanText has already replaced every
// Unicode whitespace run by a single ASCII space, so the two agree.
var preTokenPattern = regexp.MustCompile(`(?i)<\|startoftext\|>|<\|endoftext\|>|'s|'t|'re|'ve|'m|'ll|'d|\p{L}+|\p{N}|[^\s\p{L}\p{N}]+`)

// Tokenizer is CLIP's byte-level BPE tokenizer (OpenAI simple_tokenizer.py). It is
// safe for concurrent use.
type Tokenizer struct {
	encoder    map[string]int
	decoder    map[int]string
	merges     map[[2]int]merge
	byteSym    [256]int // id of the one-byte symbol inside a word
	byteSymEnd [256]int // id of the one-byte symbol ending a word ("…</w>")
	startID    int
	endID      int

	mu    sync.Mutex
	cache map[string][]int // pre-token -> BPE ids
}

// merge is one BPE merge rule: its priority (lower merges first) and the id of the
// merged symbol.
type merge struct {
	rank, id int
}

var (
	defaultTokenizer     *Tokenizer
	defaultTokenizerErr  error
	defaultTokenizerOnce sync.Once
)

// DefaultTokenizer returns the tokenizer of OpenAI's released CLIP models, built from
// the embedded vocabulary on first use (tens of milliseconds) and shared afterwards.
func DefaultTokenizer() (*Tokenizer, error) {
	defaultTokenizerOnce.Do(func() {
		defaultTokenizer, defaultTokenizerErr = newTokenizerFromBPEGz(bytes.NewReader(bpeVocabGz))
		if defaultTokenizerErr != nil {
			defaultTokenizerErr = fmt.Errorf("clip: embedded vocabulary: %w", defaultTokenizerErr)
		}
	})
	return defaultTokenizer, defaultTokenizerErr
}

// newTokenizerFromBPEGz reads OpenAI's gzipped merges file and builds the vocabulary
// as simple_tokenizer.py does: the 256 byte symbols, the same with "</w>", one token
// per merge (lines 1..48894; line 0 is a header), then the start and end tokens.
func newTokenizerFromBPEGz(r io.Reader) (*Tokenizer, error) {
	gz, err := gzip.NewReader(r)
	if err != nil {
		return nil, err
	}
	defer gz.Close()
	sc := bufio.NewScanner(gz)
	sc.Buffer(make([]byte, 0, 4096), 1<<20)
	var merges [][2]string
	for line := 0; line <= defaultMerges && sc.Scan(); line++ {
		if line == 0 {
			continue
		}
		pair, err := parseMerge(sc.Text())
		if err != nil {
			return nil, fmt.Errorf("line %d: %w", line+1, err)
		}
		merges = append(merges, pair)
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	if len(merges) != defaultMerges {
		return nil, fmt.Errorf("%d merges, want %d", len(merges), defaultMerges)
	}

	vocab := make([]string, 0, 2*256+len(merges)+2)
	for _, b := range byteVocabOrder() {
		vocab = append(vocab, string(byteRune[b]))
	}
	for _, b := range byteVocabOrder() {
		vocab = append(vocab, string(byteRune[b])+endOfWord)
	}
	for _, m := range merges {
		vocab = append(vocab, m[0]+m[1])
	}
	vocab = append(vocab, startToken, endToken)
	encoder := make(map[string]int, len(vocab))
	for id, tok := range vocab {
		encoder[tok] = id
	}
	return newTokenizer(encoder, merges)
}

// NewTokenizerFromHF builds a tokenizer from a Hugging Face CLIPTokenizer's vocab.json
// (token -> id) and merges.txt (one "a b" merge per line, optionally preceded by a
// "#version" header). Token ids are taken from vocab.json; the text normalisation
// and pre-tokenisation are OpenAI's, as for DefaultTokenizer.
func NewTokenizerFromHF(vocabPath, mergesPath string) (*Tokenizer, error) {
	raw, err := regularfile.ReadFile(vocabPath, "a JSON file", maxJSONBytes)
	if err != nil {
		return nil, fmt.Errorf("clip: read vocabulary: %w", err)
	}
	var encoder map[string]int
	if err := json.Unmarshal(raw, &encoder); err != nil {
		return nil, fmt.Errorf("clip: parse vocabulary %s: %w", vocabPath, err)
	}
	raw, err = regularfile.ReadFile(mergesPath, "a text file", maxJSONBytes)
	if err != nil {
		return nil, fmt.Errorf("clip: read merges: %w", err)
	}
	var merges [][2]string
	for i, line := range strings.Split(string(raw), "\n") {
		line = strings.TrimSuffix(line, "\r")
		if line == "" || (i == 0 && strings.HasPrefix(line, "#version")) {
			continue
		}
		pair, err := parseMerge(line)
		if err != nil {
			return nil, fmt.Errorf("clip: merges %s line %d: %w", mergesPath, i+1, err)
		}
		merges = append(merges, pair)
	}
	tok, err := newTokenizer(encoder, merges)
	if err != nil {
		return nil, fmt.Errorf("clip: tokenizer from %s and %s: %w", vocabPath, mergesPath, err)
	}
	return tok, nil
}

// maxID returns the largest token id of the vocabulary.
func (t *Tokenizer) maxID() int {
	top := 0
	for id := range t.decoder {
		top = max(top, id)
	}
	return top
}

func parseMerge(line string) ([2]string, error) {
	f := strings.Fields(line)
	if len(f) != 2 {
		return [2]string{}, fmt.Errorf("merge %q is not two symbols", line)
	}
	return [2]string{f[0], f[1]}, nil
}

// newTokenizer indexes a vocabulary and its merge list (in priority order). Every
// byte symbol, every merge result and the start and end tokens must be in encoder.
func newTokenizer(encoder map[string]int, merges [][2]string) (*Tokenizer, error) {
	t := &Tokenizer{
		encoder: encoder,
		decoder: make(map[int]string, len(encoder)),
		merges:  make(map[[2]int]merge, len(merges)),
		cache:   make(map[string][]int),
	}
	for tok, id := range encoder {
		if other, dup := t.decoder[id]; dup {
			return nil, fmt.Errorf("tokens %q and %q share id %d", other, tok, id)
		}
		t.decoder[id] = tok
	}
	lookup := func(tok string) (int, error) {
		id, ok := encoder[tok]
		if !ok {
			return 0, fmt.Errorf("token %q missing from the vocabulary", tok)
		}
		return id, nil
	}
	var err error
	for b := range 256 {
		if t.byteSym[b], err = lookup(string(byteRune[b])); err != nil {
			return nil, err
		}
		if t.byteSymEnd[b], err = lookup(string(byteRune[b]) + endOfWord); err != nil {
			return nil, err
		}
	}
	if t.startID, err = lookup(startToken); err != nil {
		return nil, err
	}
	if t.endID, err = lookup(endToken); err != nil {
		return nil, err
	}
	for rank, m := range merges {
		a, errA := lookup(m[0])
		b, errB := lookup(m[1])
		merged, errM := lookup(m[0] + m[1])
		if err := errors.Join(errA, errB, errM); err != nil {
			return nil, fmt.Errorf("merge %d (%s %s): %w", rank, m[0], m[1], err)
		}
		// A repeated merge keeps its last rank, as Python's dict(zip(merges, ranks)).
		t.merges[[2]int{a, b}] = merge{rank: rank, id: merged}
	}
	return t, nil
}

// VocabSize returns the number of tokens in the vocabulary (49408 for CLIP).
func (t *Tokenizer) VocabSize() int { return len(t.encoder) }

// Encode returns the BPE token ids of text, without the start and end tokens. The
// text is normalised as described at cleanText (HTML entities, whitespace, lower case).
func (t *Tokenizer) Encode(text string) []int {
	var ids []int
	for _, word := range preTokenPattern.FindAllString(cleanText(text), -1) {
		ids = append(ids, t.encodeWord(word)...)
	}
	return ids
}

// Tokenize is clip.tokenize: for each text, the start token, Encode(text) and the end
// token, zero-padded to contextLength. A text with more than contextLength-2 BPE
// tokens is an error unless truncate is set; then it keeps the first contextLength
// ids and puts the end token last, as clip.tokenize(truncate=True) does.
// The result has shape [len(texts), contextLength].
func (t *Tokenizer) Tokenize(texts []string, contextLength int, truncate bool) ([][]int32, error) {
	if contextLength < 2 {
		return nil, fmt.Errorf("clip: context length %d: need at least 2 positions", contextLength)
	}
	out := make([][]int32, len(texts))
	for i, text := range texts {
		ids := t.Encode(text)
		if len(ids)+2 > contextLength {
			if !truncate {
				return nil, fmt.Errorf("clip: input %d (%q) has %d tokens, too long for context length %d",
					i, text, len(ids)+2, contextLength)
			}
			ids = ids[:contextLength-2]
		}
		row := make([]int32, contextLength)
		row[0] = int32(t.startID)
		for j, id := range ids {
			row[j+1] = int32(id)
		}
		row[len(ids)+1] = int32(t.endID)
		out[i] = row
	}
	return out, nil
}

// Decode turns token ids back into text as simple_tokenizer.py does: the byte
// symbols are concatenated, invalid UTF-8 becomes U+FFFD (one per maximal invalid
// subsequence, as Python's errors="replace") and every "</w>" becomes a space.
// Start, end and padding ids are decoded like any other token.
func (t *Tokenizer) Decode(ids []int) (string, error) {
	var raw []byte
	for _, id := range ids {
		tok, ok := t.decoder[id]
		if !ok {
			return "", fmt.Errorf("clip: decode: token id %d is not in the vocabulary", id)
		}
		for _, r := range tok {
			b, ok := runeByte[r]
			if !ok {
				return "", fmt.Errorf("clip: decode: token %d (%q) is not byte-encoded", id, tok)
			}
			raw = append(raw, b)
		}
	}
	return strings.ReplaceAll(decodeUTF8Replacing(raw), endOfWord, " "), nil
}

// encodeWord applies the BPE merges to one pre-token.
func (t *Tokenizer) encodeWord(word string) []int {
	switch word {
	case startToken:
		return []int{t.startID}
	case endToken:
		return []int{t.endID}
	}
	t.mu.Lock()
	ids, ok := t.cache[word]
	t.mu.Unlock()
	if ok {
		return ids
	}

	syms := make([]int, len(word))
	for i := range len(word) {
		syms[i] = t.byteSym[word[i]]
	}
	syms[len(syms)-1] = t.byteSymEnd[word[len(word)-1]]
	for len(syms) > 1 {
		// The pair with the lowest rank merges first, everywhere it occurs.
		best := merge{rank: math.MaxInt}
		var bestPair [2]int
		for i := 0; i+1 < len(syms); i++ {
			p := [2]int{syms[i], syms[i+1]}
			if m, ok := t.merges[p]; ok && m.rank < best.rank {
				best, bestPair = m, p
			}
		}
		if best.rank == math.MaxInt {
			break
		}
		n := 0
		for i := 0; i < len(syms); n++ {
			if i+1 < len(syms) && syms[i] == bestPair[0] && syms[i+1] == bestPair[1] {
				syms[n] = best.id
				i += 2
			} else {
				syms[n] = syms[i]
				i++
			}
		}
		syms = syms[:n]
	}

	t.mu.Lock()
	if len(t.cache) >= maxCachedWords {
		clear(t.cache)
	}
	t.cache[word] = syms
	t.mu.Unlock()
	return syms
}

// byteRune is GPT-2's bytes_to_unicode: printable Latin-1 bytes map to themselves,
// the other 68 bytes to U+0100 onwards in byte order, so that every token is
// printable text without spaces.
var byteRune, runeByte = func() ([256]rune, map[rune]byte) {
	var toRune [256]rune
	toByte := make(map[rune]byte, 256)
	next := rune(256)
	for b := range 256 {
		r := rune(b)
		if !isPrintableByte(byte(b)) {
			r = next
			next++
		}
		toRune[b], toByte[r] = r, byte(b)
	}
	return toRune, toByte
}()

func isPrintableByte(b byte) bool {
	return (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE)
}

// byteVocabOrder is the order of the 256 byte symbols in OpenAI's vocabulary: the
// printable bytes ascending, then the others ascending.
func byteVocabOrder() []byte {
	order := make([]byte, 0, 256)
	for _, printable := range []bool{true, false} {
		for b := range 256 {
			if isPrintableByte(byte(b)) == printable {
				order = append(order, byte(b))
			}
		}
	}
	return order
}

// decodeUTF8Replacing decodes UTF-8 like Python's bytes.decode("utf-8", "replace"):
// each maximal prefix of a valid sequence that cannot be completed becomes one U+FFFD.
func decodeUTF8Replacing(b []byte) string {
	var sb strings.Builder
	for len(b) > 0 {
		r, size := utf8.DecodeRune(b)
		if r != utf8.RuneError || size > 1 {
			sb.WriteRune(r)
			b = b[size:]
			continue
		}
		sb.WriteRune(utf8.RuneError)
		b = b[invalidPrefixLen(b):]
	}
	return sb.String()
}

// invalidPrefixLen returns the length of the maximal subpart at the start of b, which
// holds an invalid or truncated UTF-8 sequence: the lead byte plus as many following
// bytes as are still allowed at their position (Unicode §3.9, "U+FFFD substitution").
func invalidPrefixLen(b []byte) int {
	var need int
	lo, hi := byte(0x80), byte(0xBF) // allowed range of the second byte
	switch c := b[0]; {
	case c >= 0xC2 && c <= 0xDF:
		need = 1
	case c == 0xE0:
		need, lo = 2, 0xA0
	case c == 0xED:
		need, hi = 2, 0x9F
	case c >= 0xE1 && c <= 0xEF:
		need = 2
	case c == 0xF0:
		need, lo = 3, 0x90
	case c == 0xF4:
		need, hi = 3, 0x8F
	case c >= 0xF1 && c <= 0xF3:
		need = 3
	default:
		return 1
	}
	n := 1
	for ; n <= need && n < len(b); n++ {
		if b[n] < lo || b[n] > hi {
			break
		}
		lo, hi = 0x80, 0xBF
	}
	return n
}
