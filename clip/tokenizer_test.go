package clip

import (
	"bufio"
	"compress/gzip"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
)

// referenceTokenCase is one entry of tokenizer/details.json.
type referenceTokenCase struct {
	Text        string   `json:"text"`
	BPEIDs      []int    `json:"bpe_ids"`
	BPETokens   []string `json:"bpe_tokens"`
	NumBPE      int      `json:"num_bpe"`
	TooLong     bool     `json:"too_long_raises_without_truncate"`
	EOTPosition int      `json:"eot_position"`
}

func loadReferenceTokenCases(t *testing.T) ([]referenceTokenCase, [][]int64) {
	t.Helper()
	dir := filepath.Join(referenceDir(t), "tokenizer")
	raw, err := os.ReadFile(filepath.Join(dir, "details.json"))
	if err != nil {
		t.Fatal(err)
	}
	var cases []referenceTokenCase
	if err := json.Unmarshal(raw, &cases); err != nil {
		t.Fatal(err)
	}
	var texts []string
	raw, err = os.ReadFile(filepath.Join(dir, "strings.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(raw, &texts); err != nil {
		t.Fatal(err)
	}
	flat, shape := readNpyInt64(t, filepath.Join(dir, "tokens.npy"))
	if len(shape) != 2 || shape[0] != len(cases) || shape[1] != ContextLength || len(texts) != len(cases) {
		t.Fatalf("fixture shapes: tokens %v, %d strings, %d details", shape, len(texts), len(cases))
	}
	rows := make([][]int64, shape[0])
	for i := range rows {
		rows[i] = flat[i*shape[1] : (i+1)*shape[1]]
		if texts[i] != cases[i].Text {
			t.Fatalf("strings.json[%d] = %q, details.json has %q", i, texts[i], cases[i].Text)
		}
	}
	return cases, rows
}

func mustDefaultTokenizer(t testing.TB) *Tokenizer {
	t.Helper()
	tok, err := DefaultTokenizer()
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// checkTokenizeMatchesReference compares Tokenize(truncate=true) with the rows of
// clip.tokenize stored in tokens.npy.
func checkTokenizeMatchesReference(t *testing.T, tok *Tokenizer, cases []referenceTokenCase, want [][]int64) {
	t.Helper()
	texts := make([]string, len(cases))
	for i, c := range cases {
		texts[i] = c.Text
	}
	got, err := tok.Tokenize(texts, ContextLength, true)
	if err != nil {
		t.Fatal(err)
	}
	for i := range want {
		for j := range want[i] {
			if int64(got[i][j]) != want[i][j] {
				t.Errorf("row %d (%q): position %d = %d, want %d\n got  %v\n want %v",
					i, texts[i], j, got[i][j], want[i][j], got[i], want[i])
				break
			}
		}
	}
}

func TestTokenizeMatchesReference(t *testing.T) {
	cases, want := loadReferenceTokenCases(t)
	tok := mustDefaultTokenizer(t)
	if tok.VocabSize() != 49408 {
		t.Errorf("VocabSize() = %d, want 49408", tok.VocabSize())
	}
	checkTokenizeMatchesReference(t, tok, cases, want)
}

func TestEncodeMatchesReferenceDetails(t *testing.T) {
	cases, _ := loadReferenceTokenCases(t)
	tok := mustDefaultTokenizer(t)
	for i, c := range cases {
		ids := tok.Encode(c.Text)
		if !slices.Equal(ids, c.BPEIDs) || len(ids) != c.NumBPE {
			t.Errorf("case %d %q: Encode = %v, want %v", i, c.Text, ids, c.BPEIDs)
			continue
		}
		for j, id := range ids {
			if tok.decoder[id] != c.BPETokens[j] {
				t.Errorf("case %d: token %d is %q, want %q", i, id, tok.decoder[id], c.BPETokens[j])
			}
		}
		rows, err := tok.Tokenize([]string{c.Text}, ContextLength, false)
		if c.TooLong != (err != nil) {
			t.Errorf("case %d (%d BPE tokens): Tokenize(truncate=false) error = %v, want error: %v",
				i, c.NumBPE, err, c.TooLong)
		}
		if err == nil && rows[0][c.EOTPosition] != 49407 {
			t.Errorf("case %d: no end token at position %d: %v", i, c.EOTPosition, rows[0])
		}
	}
}

// writeHFTokenizerFiles writes the default vocabulary in Hugging Face format:
// vocab.json from the OpenAI recipe (byte symbols, "</w>" symbols, merges, special
// tokens) and merges.txt with the first 48894 merges of the embedded file.
func writeHFTokenizerFiles(t *testing.T) (vocabPath, mergesPath string) {
	t.Helper()
	gz, err := gzip.NewReader(strings.NewReader(string(bpeVocabGz)))
	if err != nil {
		t.Fatal(err)
	}
	sc := bufio.NewScanner(gz)
	var merges []string
	sc.Scan() // header
	for len(merges) < 48894 && sc.Scan() {
		merges = append(merges, sc.Text())
	}
	vocab := map[string]int{}
	var order []byte
	for b := range 256 { // printable bytes first, then the rest, both ascending
		if isPrintableByte(byte(b)) {
			order = append(order, byte(b))
		}
	}
	for b := range 256 {
		if !isPrintableByte(byte(b)) {
			order = append(order, byte(b))
		}
	}
	for i, b := range order {
		vocab[string(byteRune[b])] = i
		vocab[string(byteRune[b])+"</w>"] = 256 + i
	}
	for i, m := range merges {
		vocab[strings.ReplaceAll(m, " ", "")] = 512 + i
	}
	vocab["<|startoftext|>"] = 49406
	vocab["<|endoftext|>"] = 49407
	dir := t.TempDir()
	vocabPath, mergesPath = filepath.Join(dir, "vocab.json"), filepath.Join(dir, "merges.txt")
	raw, err := json.Marshal(vocab)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(vocabPath, raw, 0o644); err != nil {
		t.Fatal(err)
	}
	text := "#version: 0.2\n" + strings.Join(merges, "\n") + "\n"
	if err := os.WriteFile(mergesPath, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	return vocabPath, mergesPath
}

func TestTokenizerFromHFMatchesReference(t *testing.T) {
	cases, want := loadReferenceTokenCases(t)
	hf, err := NewTokenizerFromHF(writeHFTokenizerFiles(t))
	if err != nil {
		t.Fatal(err)
	}
	checkTokenizeMatchesReference(t, hf, cases, want)

	def := mustDefaultTokenizer(t)
	for _, text := range unicodeSamples {
		if got, want := hf.Encode(text), def.Encode(text); !slices.Equal(got, want) {
			t.Errorf("%q: HF tokenizer %v, default %v", text, got, want)
		}
	}
}

// TestTokenizerFromHFUsesFileIDs builds a tiny vocabulary whose ids are a seeded
// permutation, so that ids can only come from vocab.json.
func TestTokenizerFromHFUsesFileIDs(t *testing.T) {
	tokens := []string{"<|startoftext|>", "<|endoftext|>", "he", "ll", "hell", "hello</w>"}
	for b := range 256 {
		tokens = append(tokens, string(byteRune[b]), string(byteRune[b])+"</w>")
	}
	perm := rand.New(rand.NewPCG(7, 11)).Perm(len(tokens))
	vocab := map[string]int{}
	for i, tok := range tokens {
		vocab[tok] = 1000 + perm[i]
	}
	dir := t.TempDir()
	raw, err := json.Marshal(vocab)
	if err != nil {
		t.Fatal(err)
	}
	vocabPath, mergesPath := filepath.Join(dir, "vocab.json"), filepath.Join(dir, "merges.txt")
	if err := os.WriteFile(vocabPath, raw, 0o644); err != nil {
		t.Fatal(err)
	}
	// No "#version" header: the first line is a merge.
	if err := os.WriteFile(mergesPath, []byte("l l\r\nh e\r\nhe ll\r\nhell o</w>\r\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	tok, err := NewTokenizerFromHF(vocabPath, mergesPath)
	if err != nil {
		t.Fatal(err)
	}
	for text, pieces := range map[string][]string{
		"hello":          {"hello</w>"},
		"hell":           {"he", "l", "l</w>"},
		"HELLO hell":     {"hello</w>", "he", "l", "l</w>"},
		"<|endoftext|>!": {"<|endoftext|>", "!</w>"},
	} {
		var want []int
		for _, p := range pieces {
			want = append(want, vocab[p])
		}
		if got := tok.Encode(text); !slices.Equal(got, want) {
			t.Errorf("Encode(%q) = %v, want %v (%v)", text, got, want, pieces)
		}
	}
	rows, err := tok.Tokenize([]string{"hello"}, 4, false)
	if err != nil {
		t.Fatal(err)
	}
	if want := []int32{int32(vocab["<|startoftext|>"]), int32(vocab["hello</w>"]), int32(vocab["<|endoftext|>"]), 0}; !slices.Equal(rows[0], want) {
		t.Errorf("Tokenize = %v, want %v", rows[0], want)
	}
}

func TestTokenizerFromHFErrors(t *testing.T) {
	dir := t.TempDir()
	vocabPath := filepath.Join(dir, "vocab.json")
	mergesPath := filepath.Join(dir, "merges.txt")
	if err := os.WriteFile(vocabPath, []byte(`{"a": 1}`), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(mergesPath, []byte("#version: 0.2\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := NewTokenizerFromHF(vocabPath, mergesPath); err == nil || !strings.Contains(err.Error(), vocabPath) {
		t.Errorf("incomplete vocabulary: error %v, want one naming %s", err, vocabPath)
	}
	if _, err := NewTokenizerFromHF(filepath.Join(dir, "missing.json"), mergesPath); err == nil || !strings.Contains(err.Error(), "missing.json") {
		t.Errorf("missing file: error %v, want one naming it", err)
	}
}

var unicodeSamples = []string{
	"naïve café 😀 日本語",
	"Ünïcödé — “quotes” and emoji 👩‍👩‍👧 🇫🇷",
	"Straße ΣΑΣ İstanbul ﬁne",
	"mixed\u00a0spaces\u2003here",
}

func TestDecodeRoundTrip(t *testing.T) {
	tok := mustDefaultTokenizer(t)
	cases := map[string]string{
		"Hello, World!":     "hello , world ! ",
		"a photo of a dog.": "a photo of a dog . ",
	}
	// Every pre-token ends a word, so decoding restores the cleaned text with a space
	// after each pre-token; these samples have whitespace between all pre-tokens except
	// where noted.
	cases["naïve café 😀 日本語"] = "naïve café 😀 日本語 "
	cases["mixed\u00a0spaces\u2003here"] = "mixed spaces here "
	for text, want := range cases {
		got, err := tok.Decode(tok.Encode(text))
		if err != nil || got != want {
			t.Errorf("Decode(Encode(%q)) = %q, %v; want %q", text, got, err, want)
		}
	}
	withSpecial, err := tok.Decode([]int{49406, 1929, 49407})
	if err != nil || withSpecial != "<|startoftext|>dog <|endoftext|>" {
		t.Errorf("special tokens decode to %q, %v", withSpecial, err)
	}
	if _, err := tok.Decode([]int{49408}); err == nil {
		t.Error("Decode accepted an id outside the vocabulary")
	}
}

func TestDecodeInvalidUTF8LikePython(t *testing.T) {
	tok := mustDefaultTokenizer(t)
	sym := func(bs ...byte) []int {
		var ids []int
		for _, b := range bs {
			ids = append(ids, tok.byteSym[b])
		}
		return ids
	}
	cases := []struct {
		ids  []int
		want string
	}{
		// b"\xe2\x82a".decode("utf-8", "replace") == "\ufffda": a truncated sequence is one U+FFFD.
		{sym(0xE2, 0x82, 'a'), "\uFFFDa"},
		// Lone continuation bytes are one U+FFFD each.
		{sym(0x80, 0x80), "\uFFFD\uFFFD"},
		// 0xED 0xA0 would start a surrogate: 0xED alone is the maximal subpart.
		{sym(0xED, 0xA0, 0x80), "\uFFFD\uFFFD\uFFFD"},
		{sym(0xF0, 0x9F, 0x98), "\uFFFD"},
		{sym(0xF0, 0x9F, 0x98, 0x80), "😀"},
	}
	for _, c := range cases {
		if got, err := tok.Decode(c.ids); err != nil || got != c.want {
			t.Errorf("Decode(%v) = %q, %v; want %q", c.ids, got, err, c.want)
		}
	}
}

func TestCleanTextLikePython(t *testing.T) {
	cases := map[string]string{
		"  leading\tand\r\ntrailing  ":   "leading and trailing",
		"a\u00a0b\u2003c\u3000d":         "a b c d",
		"fish &amp;amp; chips &lt;3":     "fish & chips <3",
		"&#65;&#x42;&#X43;&#68":          "abcd",
		"&#0; &#xD800; &#99999999999;":   "\uFFFD \uFFFD \uFFFD",
		"x&#1;y&#x7f;z&#xFFFF;":          "xyz",
		"&#x80;&#150;":                   "€–",
		"&notit; &amp &ampx &unknown; &": "¬it; & &x &unknown; &",
		"&amp;#65;":                      "a", // unescaped twice
		"ΟΔΟΣ. ΣΑΣ Σ ΑΣ'Α":               "οδος. σας σ ασ'α",
		"İSTANBUL":                       "i\u0307stanbul",
		"ÀÉÎ Ǆ":                          "àéî ǆ",
	}
	for in, want := range cases {
		if got := cleanText(in); got != want {
			t.Errorf("cleanText(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestTokenizeErrors(t *testing.T) {
	tok := mustDefaultTokenizer(t)
	if _, err := tok.Tokenize([]string{"a"}, 1, true); err == nil {
		t.Error("context length 1 accepted")
	}
	_, err := tok.Tokenize([]string{"ok", "dog dog dog"}, 4, false)
	if err == nil || !strings.Contains(err.Error(), "input 1") {
		t.Errorf("too-long input: error %v, want one naming input 1", err)
	}
	rows, err := tok.Tokenize([]string{"dog dog dog"}, 4, true)
	if err != nil || !slices.Equal(rows[0], []int32{49406, 1929, 1929, 49407}) {
		t.Errorf("truncated row = %v, %v", rows, err)
	}
}

func TestEncodeConcurrent(t *testing.T) {
	def := mustDefaultTokenizer(t)
	fresh, err := newTokenizerFromBPEGz(strings.NewReader(string(bpeVocabGz)))
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for g := range 8 {
		wg.Go(func() {
			for i := range 20 {
				s := unicodeSamples[(g+i)%len(unicodeSamples)]
				if got, want := fresh.Encode(s), def.Encode(s); !slices.Equal(got, want) {
					errs <- fmt.Errorf("goroutine %d: %q encoded as %v, want %v", g, s, got, want)
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

func BenchmarkEncodePrompt(b *testing.B) {
	tok := mustDefaultTokenizer(b)
	prompts := []string{"a real world photo of a Exit Sign.", "a clipart photo of a File Cabinet."}
	b.ResetTimer()
	for i := range b.N {
		tok.Encode(prompts[i%2])
	}
}
