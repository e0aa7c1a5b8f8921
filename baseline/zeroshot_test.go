package baseline

import (
	"math"
	"testing"

	"github.com/unimos/unimos/internal/testkit"
	"github.com/unimos/unimos/tensor"
)

// TestZeroShotMatchesFloat64Cosine checks predictions and confidences against
// an independent float64 computation of cosine similarity and softmax.
func TestZeroShotMatchesFloat64Cosine(t *testing.T) {
	images, text := testkit.UnitRows(50, 16, 1), testkit.UnitRows(7, 16, 2)
	preds, err := ZeroShot(images, text)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < images.Rows; i++ {
		logits := make([]float64, text.Rows)
		best := 0
		for k := range logits {
			for j := 0; j < 16; j++ {
				logits[k] += 100 * float64(images.At(i, j)) * float64(text.At(k, j))
			}
			if logits[k] > logits[best] {
				best = k
			}
		}
		var z float64
		for _, l := range logits {
			z += math.Exp(l)
		}
		if preds[i].Class != best {
			t.Errorf("row %d: class %d, want %d", i, preds[i].Class, best)
		}
		if want := math.Exp(logits[best]) / z; math.Abs(float64(preds[i].Confidence)-want) > 1e-4 {
			t.Errorf("row %d: confidence %v, want %v", i, preds[i].Confidence, want)
		}
	}
}

func TestZeroShotDimMismatch(t *testing.T) {
	if _, err := ZeroShot(tensor.New(2, 3), tensor.New(2, 4)); err == nil {
		t.Fatal("no error for image dim 3 vs text dim 4")
	}
}
