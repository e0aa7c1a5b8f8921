package clip

import (
	"fmt"
	"math"
	"slices"

	"github.com/unimos/unimos/tensor"
)

// Fingerprint identifies a model's weights independently of how they are
// stored (F32, F16 or BF16, any file format): the first FingerprintHalf
// elements of the normalised image embedding of a fixed synthetic image,
// then the first FingerprintHalf of the normalised text embedding of a fixed
// sentence. Two fingerprints of one model agree within FingerprintTolerance
// on any machine and in any storage type; models with the same embedding
// size but other weights (real ViT-B/16 and ViT-B/32 are both 512-d) differ
// by far more.
type Fingerprint []float32

// FingerprintHalf is the number of elements taken from each tower.
const FingerprintHalf = 16

// FingerprintTolerance bounds the distance between two fingerprints of one
// model, relative to their norm. Kernels round float32 sums differently
// (about 1e-6 relative), and weights stored as F16 or BF16 move embeddings by
// up to about 1e-3 and 1e-2 relative (the random test models, measured);
// fingerprints of unrelated weights are about sqrt(2) apart, relative to
// their norm.
const FingerprintTolerance = 0.2

// fingerprintSentence is the text half of the fingerprint's input.
const fingerprintSentence = "a photo of a probe."

// Fingerprint computes the model's fingerprint: one image and one sentence
// through the encoders.
func (m *Model) Fingerprint() (Fingerprint, error) {
	n := m.InputResolution()
	img := make([]float32, 3*n*n) // [3, n, n]: smooth stripes in normalised pixel units
	for i := range img {
		img[i] = float32(math.Sin(0.01*float64(i)) + 0.5*math.Cos(0.37*float64(i%n)))
	}
	vis, err := m.EncodeImages([][]float32{img}) // [1, d]
	if err != nil {
		return nil, fmt.Errorf("clip: fingerprint: %w", err)
	}
	tok, err := m.Tokenizer()
	if err != nil {
		return nil, fmt.Errorf("clip: fingerprint: %w", err)
	}
	ids, err := tok.Tokenize([]string{fingerprintSentence}, m.ContextLength(), true)
	if err != nil {
		return nil, fmt.Errorf("clip: fingerprint: %w", err)
	}
	txt, err := m.EncodeText(ids) // [1, d]
	if err != nil {
		return nil, fmt.Errorf("clip: fingerprint: %w", err)
	}
	tensor.NormalizeRows(vis, 0)
	tensor.NormalizeRows(txt, 0)
	h := min(FingerprintHalf, vis.Cols)
	return slices.Concat(vis.Row(0)[:h], txt.Row(0)[:h]), nil
}

// Matches reports whether f and g are fingerprints of the same weights:
// |f - g| <= FingerprintTolerance * |f|.
func (f Fingerprint) Matches(g Fingerprint) bool {
	if len(f) != len(g) || len(f) == 0 {
		return false
	}
	var diff, norm float64
	for i, v := range f {
		d := float64(v - g[i])
		diff += d * d
		norm += float64(v) * float64(v)
	}
	return math.Sqrt(diff) <= FingerprintTolerance*math.Sqrt(norm)
}
