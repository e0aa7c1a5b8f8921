package nn

import (
	"math"
	"testing"

	"github.com/unimos/unimos/tensor"
)

func TestRNGStateRoundTrip(t *testing.T) {
	r := NewRNG(2023, 1)
	r.Float64()
	state, err := r.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	want := []float64{r.Float64(), r.NormFloat64(), float64(r.IntN(1000))}

	restored := NewRNG(0, 0)
	if err := restored.UnmarshalBinary(state); err != nil {
		t.Fatal(err)
	}
	got := []float64{restored.Float64(), restored.NormFloat64(), float64(restored.IntN(1000))}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("draw %d after restore: %v, want %v", i, got[i], want[i])
		}
	}
	if err := restored.UnmarshalBinary([]byte("garbage")); err == nil {
		t.Error("restoring garbage succeeded")
	}
	if NewRNG(2023, 1).Uint64() == NewRNG(2023, 2).Uint64() {
		t.Error("streams 1 and 2 of one seed start alike")
	}
}

// moments returns the mean, variance and largest magnitude of m's elements.
func moments(m *tensor.Matrix) (mean, variance, maxAbs float64) {
	n := float64(len(m.Data))
	for _, v := range m.Data {
		mean += float64(v) / n
		maxAbs = math.Max(maxAbs, math.Abs(float64(v)))
	}
	for _, v := range m.Data {
		variance += (float64(v) - mean) * (float64(v) - mean) / n
	}
	return mean, variance, maxAbs
}

// checkDistribution fails t unless m's mean is 0 within 5 standard errors,
// its variance is wantVar within 1.5% (about 4 standard errors of a sample
// variance for the 131072 normal draws used here, 6 for uniform ones) and, for bound > 0, every element lies within ±bound.
func checkDistribution(t *testing.T, what string, m *tensor.Matrix, wantVar, bound float64) {
	t.Helper()
	mean, variance, maxAbs := moments(m)
	if se := math.Sqrt(wantVar / float64(len(m.Data))); math.Abs(mean) > 5*se {
		t.Errorf("%s: mean %v, want 0 ± %v", what, mean, 5*se)
	}
	if math.Abs(variance/wantVar-1) > 0.015 {
		t.Errorf("%s: variance %v, want %v", what, variance, wantVar)
	}
	if bound > 0 && maxAbs > bound {
		t.Errorf("%s: element %v outside ±%v", what, maxAbs, bound)
	}
}

func TestInitDistributions(t *testing.T) {
	rng := NewRNG(40, 0)
	const in, out = 512, 256

	l := NewLinear(in, out, rng)
	bound := 1 / math.Sqrt(in)
	checkDistribution(t, "Linear weight", l.Weight.Value, bound*bound/3, bound)
	_, _, biasMax := moments(l.Bias.Value)
	if biasMax > bound {
		t.Errorf("Linear bias: element %v outside ±%v", biasMax, bound)
	}

	w := tensor.New(out, in)
	InitXavierUniform(w, rng)
	xb := math.Sqrt(6.0 / (in + out))
	checkDistribution(t, "xavier uniform", w, xb*xb/3, xb)

	InitXavierNormal(w, rng)
	checkDistribution(t, "xavier normal", w, 2.0/(in+out), 0)
	// Normal, not just the right variance: P(|x| < σ) = 0.6827 (±0.002 at 1σ here).
	sigma, inside := math.Sqrt(2.0/(in+out)), 0
	for _, v := range w.Data {
		if math.Abs(float64(v)) < sigma {
			inside++
		}
	}
	if frac := float64(inside) / float64(len(w.Data)); math.Abs(frac-0.6827) > 0.01 {
		t.Errorf("xavier normal: %.4f of elements within one σ, want 0.6827", frac)
	}
}
