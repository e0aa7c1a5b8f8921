package unimos

import (
	"math/rand/v2"

	"github.com/unimos/unimos/tensor"
)

// MixVal settings (Hu et al., "Mixed Samples as Probes for Unsupervised
// Model Selection in Domain Adaptation", NeurIPS 2023): the fixed mixing
// weight of the dominant sample, as in the authors' code (--lam 0.55), and
// the number of target pairs probed, drawn once with the run's seed so that
// every epoch is probed with the same mixes.
const (
	MixValLambda = 0.55
	MixValPairs  = 4096
)

// mixvalStream separates the MixVal pairs' generator from the others.
const mixvalStream = 0x4d4958 // "MIX"

// mixProbe is MixVal moved from images to the cached CLIP features: each
// pair (a, b) of target rows gives the mix λ·x_a + (1−λ)·x_b, scaled back
// to unit norm because the model's inputs are unit-norm CLIP rows (the mix
// of two unit vectors is shorter, which would shrink every logit).
type mixProbe struct {
	a, b    []int
	x       *tensor.Matrix // the mixes [M, d]
	teacher *tensor.Matrix // their zero-shot logits [M, K], for the test before training
}

// newMixProbe draws min(N, MixValPairs) pairs of distinct target rows of x
// [N, d] with seed and builds their mixes.
func newMixProbe(x, text *tensor.Matrix, logitScale float32, seed uint64) *mixProbe {
	n := x.Rows
	rng := rand.New(rand.NewPCG(seed, mixvalStream))
	m := min(n, MixValPairs)
	p := &mixProbe{a: rng.Perm(n)[:m], b: make([]int, m), x: tensor.New(m, x.Cols)}
	for i, a := range p.a {
		b := rng.IntN(n - 1)
		if b >= a {
			b++ // a row is not mixed with itself
		}
		p.b[i] = b
		row, xa, xb := p.x.Row(i), x.Row(a), x.Row(b)
		for j := range row {
			row[j] = MixValLambda*xa[j] + (1-MixValLambda)*xb[j]
		}
		tensor.NormalizeRow(row, 1e-12)
	}
	p.teacher = teacherLogits(p.x, text, logitScale)
	return p
}

// score returns MixVal's two measures, in percent, from the target's
// pseudo-labels [N] (the test's predictions) and the model's outputs on the
// mixes [M, K]: inter, over the pairs of different pseudo-labels, how often
// the mix is predicted as its dominant sample's pseudo-label; intra, the
// same over the pairs of one pseudo-label. A kind of pair that does not
// occur scores 0: the predictions give no evidence for the model.
func (p *mixProbe) score(pseudo []int, mixed *tensor.Matrix) (inter, intra float64) {
	pred := tensor.ArgmaxRows(mixed)
	var hitInter, nInter, hitIntra, nIntra int
	for i, a := range p.a {
		hit := 0
		if pred[i] == pseudo[a] {
			hit = 1
		}
		if pseudo[a] == pseudo[p.b[i]] {
			nIntra++
			hitIntra += hit
		} else {
			nInter++
			hitInter += hit
		}
	}
	pct := func(hit, n int) float64 {
		if n == 0 {
			return 0
		}
		return 100 * float64(hit) / float64(n)
	}
	return pct(hitInter, nInter), pct(hitIntra, nIntra)
}
