package clip

import (
	"math"
	"testing"
)

// TestTransformSlices checks btSlices and atSlices, whose leading multiples
// of 8 go through the vector code where the CPU has it, against the
// matrices Bᵀ and Aᵀ of F(4×4, 3×3) (Lavin and Gray, 2016) applied in
// float64, on lengths around the vector width.
func TestTransformSlices(t *testing.T) {
	bT := [winogradInput][winogradInput]float64{
		{4, 0, -5, 0, 1, 0},
		{0, -4, -4, 1, 1, 0},
		{0, 4, -4, -1, 1, 0},
		{0, -2, -1, 2, 1, 0},
		{0, 2, -1, -2, 1, 0},
		{0, 4, 0, -5, 0, 1},
	}
	aT := [winogradTile][winogradInput]float64{
		{1, 1, 1, 1, 1, 0},
		{0, 1, -1, 2, -2, 0},
		{0, 1, 1, 4, 4, 0},
		{0, 1, -1, 8, -8, 1},
	}
	rng := newTestRand(5)
	for _, n := range []int{0, 1, 7, 8, 9, 16, 23, 40} {
		var in [winogradInput][]float32
		var outB [winogradInput][]float32
		var outA [winogradTile][]float32
		for k := range in {
			in[k], outB[k] = make([]float32, n), make([]float32, n)
			for i := range in[k] {
				in[k][i] = float32(rng.NormFloat64())
			}
		}
		for k := range outA {
			outA[k] = make([]float32, n)
		}
		btSlices(&outB, &in, n)
		atSlices(&outA, &in, n)
		check := func(name string, row [winogradInput]float64, got []float32, k int) {
			for i := range n {
				var want, magnitude float64
				for j, c := range row {
					want += c * float64(in[j][i])
					magnitude += math.Abs(c * float64(in[j][i]))
				}
				if d := math.Abs(float64(got[i]) - want); d > 1e-6*magnitude {
					t.Fatalf("n=%d: %s row %d, column %d = %g, want %g", n, name, k, i, got[i], want)
				}
			}
		}
		for k, row := range bT {
			check("Bᵀ·d", row, outB[k], k)
		}
		for k, row := range aT {
			check("Aᵀ·m", row, outA[k], k)
		}
	}
}
