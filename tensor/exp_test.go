package tensor

import (
	"math"
	"testing"
)

// TestFastExpAccuracy checks FastExp's documented bound, relative error
// below 1e-7, for the vector and the scalar code, against math.Exp on a
// regular sample of the float32 values in [-87, 88] (every 256th bit
// pattern; every 4096th with -short), and its behaviour outside that
// interval.
func TestFastExpAccuracy(t *testing.T) {
	step := uint32(1 << 8)
	if testing.Short() {
		step = 1 << 12
	}
	var xs []float32
	for _, sign := range []float32{1, -1} {
		limit := float32(88)
		if sign < 0 {
			limit = 87
		}
		for bits := uint32(0); math.Float32frombits(bits) <= limit; bits += step {
			xs = append(xs, sign*math.Float32frombits(bits))
		}
	}
	for _, impl := range []struct {
		name string
		exp  func(dst, src []float32)
	}{{"expSlice", expSlice}, {"expScalar", expScalar}} {
		got := make([]float32, len(xs))
		impl.exp(got, xs)
		worst, worstX := 0.0, float32(0)
		for i, x := range xs {
			want := math.Exp(float64(x))
			if e := math.Abs(float64(got[i])-want) / want; e > worst {
				worst, worstX = e, x
			}
		}
		t.Logf("%s: max relative error %.3g at x = %g over %d values", impl.name, worst, worstX, len(xs))
		if worst >= 1e-7 {
			t.Errorf("%s: max relative error %.3g at x = %g, documented bound 1e-7", impl.name, worst, worstX)
		}
	}

	// A row mixing in-range values with out-of-range ones and NaN, so that
	// the vector blocks stop and restart.
	row := make([]float32, 50)
	for i := range row {
		row[i] = float32(i)*3.7 - 90
	}
	row[17] = float32(math.NaN())
	got := make([]float32, len(row))
	expSlice(got, row)
	for i, x := range row {
		want := float64(float32(math.Exp(float64(x)))) // +Inf past 88.7
		g := float64(got[i])
		ok := math.IsNaN(want) && math.IsNaN(g) || math.IsInf(want, 1) && math.IsInf(g, 1) ||
			math.Abs(g-want) <= 2e-7*want+math.SmallestNonzeroFloat32
		if !ok {
			t.Errorf("expSlice: e^%g = %g, want %g", x, g, want)
		}
	}

	for _, x := range []float32{88.5, 89, 1000, float32(math.Inf(1))} {
		if g := FastExp(x); !math.IsInf(float64(g), 1) && float64(g) != float64(float32(math.Exp(float64(x)))) {
			t.Errorf("FastExp(%g) = %g, want %g", x, g, math.Exp(float64(x)))
		}
	}
	for _, x := range []float32{-87.5, -95, -103, -104, -1000, float32(math.Inf(-1))} {
		// Subnormal results: within one step of the smallest subnormal.
		if g, w := float64(FastExp(x)), math.Exp(float64(x)); math.Abs(g-w) > math.SmallestNonzeroFloat32 {
			t.Errorf("FastExp(%g) = %g, want %g", x, g, w)
		}
	}
	if g := FastExp(float32(math.NaN())); !math.IsNaN(float64(g)) {
		t.Errorf("FastExp(NaN) = %g", g)
	}
}
