package nn

import (
	"fmt"
	"math"
	"math/rand/v2"

	"github.com/unimos/unimos/tensor"
)

// RNG is a deterministic random stream (PCG) for initialisation, dropout
// masks and shuffling. Its whole state can be saved and restored, so a
// resumed run draws the same numbers as an uninterrupted one.
type RNG struct {
	*rand.Rand
	src *rand.PCG
}

// NewRNG returns the stream identified by (seed, stream). Use one stream
// number per purpose (say init, dropout, batching) so that drawing more from
// one leaves the others unchanged.
func NewRNG(seed, stream uint64) *RNG {
	src := rand.NewPCG(seed, stream)
	return &RNG{Rand: rand.New(src), src: src}
}

// MarshalBinary returns the stream's state.
func (r *RNG) MarshalBinary() ([]byte, error) { return r.src.MarshalBinary() }

// UnmarshalBinary restores a state returned by MarshalBinary.
func (r *RNG) UnmarshalBinary(data []byte) error {
	if err := r.src.UnmarshalBinary(data); err != nil {
		return fmt.Errorf("nn: restoring random stream: %w", err)
	}
	return nil
}

// InitUniform fills m with draws from U(-bound, bound). PyTorch's default
// Linear initialisation is InitUniform with bound 1/√in for the weight
// [out, in] (kaiming_uniform with a = √5) and for the bias.
func InitUniform(m *tensor.Matrix, bound float64, rng *RNG) {
	for i := range m.Rows {
		r := m.Row(i)
		for j := range r {
			r[j] = float32((2*rng.Float64() - 1) * bound)
		}
	}
}

// InitXavierUniform fills the weight m [out, in] from U(-b, b) with
// b = √(6/(in+out)), as torch.nn.init.xavier_uniform_ (gain 1).
func InitXavierUniform(m *tensor.Matrix, rng *RNG) {
	InitUniform(m, math.Sqrt(6/float64(m.Rows+m.Cols)), rng)
}

// InitXavierNormal fills the weight m [out, in] from N(0, σ²) with
// σ = √(2/(in+out)), as torch.nn.init.xavier_normal_ (gain 1).
func InitXavierNormal(m *tensor.Matrix, rng *RNG) {
	std := math.Sqrt(2 / float64(m.Rows+m.Cols))
	for i := range m.Rows {
		r := m.Row(i)
		for j := range r {
			r[j] = float32(rng.NormFloat64() * std)
		}
	}
}
