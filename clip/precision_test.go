package clip

import (
	"fmt"
	"testing"

	"github.com/unimos/unimos/internal/testkit"
	"github.com/unimos/unimos/tensor"
)

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
			testkit.CheckBF16Rows(t, "image features", bf16[0], f32[0])
			testkit.CheckBF16Rows(t, "text features", bf16[1], f32[1])
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
			testkit.CheckBF16Rows(t, "image features", bf16[0], f32[0])
			testkit.CheckBF16Rows(t, "text features", bf16[1], f32[1])
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
