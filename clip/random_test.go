package clip

import (
	"math"
	"math/rand/v2"
	"strings"

	"github.com/unimos/unimos/tensor"
)

func newTestRand(seed uint64) *rand.Rand { return rand.New(rand.NewPCG(seed, 0x9e3779b97f4a7c15)) }

// randomMatrix returns a [rows, cols] matrix of N(0, 1) values.
func randomMatrix(rng *rand.Rand, rows, cols int) *tensor.Matrix {
	m := tensor.New(rows, cols)
	for i := range m.Data {
		m.Data[i] = float32(rng.NormFloat64())
	}
	return m
}

// randomSource hands out random weights of any requested shape, scaled so
// that activations keep a sensible size through a full-size network:
// LayerNorm and BatchNorm weights near 1, running variances near 1,
// convolutions He-normal, everything else N(0, 0.02²).
type randomSource struct{ rng *rand.Rand }

func (s randomSource) read(name string, want []int) ([]float32, error) {
	n := 1
	for _, d := range want {
		n *= d
	}
	v := make([]float32, n)
	scale, offset := 0.02, 0.0
	switch {
	case strings.HasSuffix(name, "running_var"):
		scale, offset = 0.1, 1.2
	case len(want) == 1 && strings.HasSuffix(name, ".weight"): // LayerNorm, BatchNorm
		scale, offset = 0.1, 1
	case len(want) == 4: // convolution [out, in, kh, kw]
		scale = math.Sqrt(2 / float64(n/want[0]))
	}
	for i := range v {
		v[i] = float32(offset + scale*s.rng.NormFloat64())
	}
	return v, nil
}
