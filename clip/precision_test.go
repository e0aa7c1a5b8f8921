package clip

import (
	"fmt"
	"math"
	"testing"

	"github.com/unimos/unimos/tensor"
)

// bf16Cosine is the least cosine similarity allowed between a feature row
// encoded with bf16 products and the f32 row (issue #23).
const bf16Cosine = 0.9995

// encodeBoth encodes images and token rows with f32 products and again with
// bf16 products.
func encodeBoth(t *testing.T, m *Model, images [][]float32, tokens [][]int32) (f32, bf16 [2]*tensor.Matrix) {
	t.Helper()
	encode := func() [2]*tensor.Matrix {
		img, err := m.EncodeImages(images)
		if err != nil {
			t.Fatal(err)
		}
		txt, err := m.EncodeText(tokens)
		if err != nil {
			t.Fatal(err)
		}
		return [2]*tensor.Matrix{img, txt}
	}
	f32 = encode()
	restore := tensor.SetPrecision(tensor.PrecisionBF16)
	defer restore()
	return f32, encode()
}

// checkCosines fails unless every row of got is within bf16Cosine of the
// same row of want (cosine computed in float64), and fails if the rows are
// identical, which would mean the products did not run in bf16.
func checkCosines(t *testing.T, what string, got, want *tensor.Matrix) {
	t.Helper()
	worst, identical := 1.0, true
	for i := range want.Rows {
		var dot, gg, ww float64
		for j, w := range want.Row(i) {
			g := float64(got.At(i, j))
			dot += g * float64(w)
			gg += g * g
			ww += float64(w) * float64(w)
			identical = identical && float32(g) == w
		}
		cos := dot / math.Sqrt(gg*ww)
		if !(cos >= bf16Cosine) {
			t.Errorf("%s row %d: cosine %.6f between the bf16 and f32 features; want at least %g", what, i, cos, bf16Cosine)
		}
		worst = min(worst, cos)
	}
	if identical {
		t.Errorf("%s: bf16 features equal the f32 ones bit for bit: the products did not run in bf16", what)
	}
	t.Logf("%s: %d rows, least cosine %.6f", what, want.Rows, worst)
}

// TestBF16FeaturesNearF32 encodes with bf16 products on the reference
// fixture models (every preprocessed image, eight prompts) and on random
// full-size ViT-B/16 and RN50 weights (two images and two prompts; skipped
// with -short), and compares each feature row with the f32 one.
func TestBF16FeaturesNearF32(t *testing.T) {
	if _, why, _ := tensor.ChoosePrecision(tensor.PrecisionBF16); why != "requested" {
		t.Skipf("no bf16 products here: %s", why)
	}
	tokens := fixtureTokens(t)[:8]
	for _, fm := range fixtureModels[:3] {
		t.Run(fm.name, func(t *testing.T) {
			m := loadFixture(t, fm)
			f32, bf16 := encodeBoth(t, m, fixturePixels(t, fm.resolution), tokens)
			checkCosines(t, "image features", bf16[0], f32[0])
			checkCosines(t, "text features", bf16[1], f32[1])
		})
	}
	for _, full := range []struct {
		name string
		cfg  Config
	}{{"ViT-B/16", benchViTB16}, {"RN50", benchRN50}} {
		t.Run(full.name, func(t *testing.T) {
			if testing.Short() {
				t.Skip("full-size random weights skipped in -short")
			}
			m, err := newModel(full.cfg, randomSource{newTestRand(1)}, "random")
			if err != nil {
				t.Fatal(err)
			}
			rng := newTestRand(2)
			n := m.InputResolution()
			images := [][]float32{randomMatrix(rng, 3*n, n).Data, randomMatrix(rng, 3*n, n).Data}
			tok, err := m.Tokenizer()
			if err != nil {
				t.Fatal(err)
			}
			ids, err := tok.Tokenize([]string{"a photo of a mug.", fmt.Sprintf("a clipart photo of a %s.", officeHomeClasses[3])}, m.ContextLength(), true)
			if err != nil {
				t.Fatal(err)
			}
			f32, bf16 := encodeBoth(t, m, images, ids)
			checkCosines(t, "image features", bf16[0], f32[0])
			checkCosines(t, "text features", bf16[1], f32[1])
		})
	}
}

// BenchmarkEncodeImagesViTB16BF16 is BenchmarkEncodeImagesViTB16 with the
// products in bf16 (skipped where the CPU lacks AVX512_BF16).
func BenchmarkEncodeImagesViTB16BF16(b *testing.B) {
	if _, why, _ := tensor.ChoosePrecision(tensor.PrecisionBF16); why != "requested" {
		b.Skipf("no bf16 products here: %s", why)
	}
	defer tensor.SetPrecision(tensor.PrecisionBF16)()
	benchmarkImages(b, benchViTB16)
}
