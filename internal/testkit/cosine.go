package testkit

import (
	"math"
	"testing"

	"github.com/unimos/unimos/tensor"
)

// BF16Cosine is the least cosine the issue allows between a feature row
// computed with bf16 products and the same row with f32 products.
const BF16Cosine = 0.9995

// CheckBF16Rows fails unless every row of bf16 is within cosine BF16Cosine
// of the same row of f32 (computed in float64), and fails if the rows are
// identical bit for bit, which would mean the products did not run in bf16.
// It logs the least cosine.
func CheckBF16Rows(t testing.TB, what string, bf16, f32 *tensor.Matrix) {
	t.Helper()
	worst, identical := 1.0, true
	for i := range f32.Rows {
		var dot, gg, ww float64
		for j, w := range f32.Row(i) {
			g := float64(bf16.At(i, j))
			dot += g * float64(w)
			gg += g * g
			ww += float64(w) * float64(w)
			identical = identical && float32(g) == w
		}
		cos := dot / math.Sqrt(gg*ww)
		if !(cos >= BF16Cosine) {
			t.Errorf("%s row %d: cosine %.6f between the bf16 and f32 rows; want at least %g", what, i, cos, BF16Cosine)
		}
		worst = min(worst, cos)
	}
	if identical {
		t.Errorf("%s: the bf16 rows equal the f32 ones bit for bit: the products did not run in bf16", what)
	}
	t.Logf("%s: %d rows, least cosine %.6f", what, f32.Rows, worst)
}
