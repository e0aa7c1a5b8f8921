package synth

import (
	"fmt"
	"hash/fnv"
	"math"
	"math/rand/v2"
	"sync"

	"github.com/unimos/unimos/features"
	"github.com/unimos/unimos/tensor"
)

// Result is a generated benchmark, ready to be written as a feature store.
type Result struct {
	Meta    features.Dataset
	Domains []*features.Domain // in Meta.Domains order; features [N, Dim], DType F16
	Text    []*tensor.Matrix   // per domain, [K, Dim] prompt features
}

// Write generates the benchmark described by p with the given seed and
// writes it as a feature store in dir: dataset.json, one <domain>.safetensors
// per domain and text/<domain>.safetensors.
func Write(dir string, p Preset, seed uint64) error {
	r, err := Generate(p, seed)
	if err != nil {
		return err
	}
	if err := features.WriteDataset(dir, r.Meta); err != nil {
		return fmt.Errorf("synth: write %s: %w", dir, err)
	}
	for i, d := range r.Domains {
		if err := features.WriteDomain(dir, d); err != nil {
			return fmt.Errorf("synth: write %s: %w", dir, err)
		}
		if err := features.WriteText(dir, d.Name, r.Text[i]); err != nil {
			return fmt.Errorf("synth: write %s: %w", dir, err)
		}
	}
	return nil
}

// Generate builds the benchmark described by p. The same preset and seed
// always give bit-identical features, labels and text.
func Generate(p Preset, seed uint64) (*Result, error) {
	if err := p.Validate(); err != nil {
		return nil, err
	}
	k, m, r := len(p.Classes), len(p.Domains), p.classRank()
	g := p.Geometry

	frame := orthonormalFrame(2+2*r+2*m, p.Dim, newRand(seed, "frame"))
	b := basis{
		textMean:  frame[0],
		imageOnly: frame[1],
		text:      frame[2 : 2+r],
		vision:    frame[2+r : 2+2*r],
	}
	cls := newClasses(k, r, g, newRand(seed, "classes"))

	res := &Result{
		Meta: features.Dataset{
			Name:     p.Name,
			Backbone: p.Backbone,
			Dim:      p.Dim,
			Classes:  append([]string(nil), p.Classes...),
			Domains:  make([]string, m),
		},
		Domains: make([]*features.Domain, m),
		Text:    make([]*tensor.Matrix, m),
	}
	var wg sync.WaitGroup
	for i, spec := range p.Domains {
		res.Meta.Domains[i] = spec.Name
		word, style := frame[2+2*r+2*i], frame[3+2*r+2*i]
		wg.Go(func() {
			rng := newRand(seed, "domain/"+spec.Name)
			res.Text[i] = domainText(g, b, cls, word, rng)
			res.Domains[i] = domainImages(spec, g, b, cls, word, style, rng)
		})
	}
	wg.Wait()
	return res, nil
}

// basis holds the directions of the frame that all domains share.
type basis struct {
	textMean, imageOnly []float64   // e_txt, e_img: [Dim]
	text, vision        [][]float64 // [r][Dim] orthonormal subspaces
}

// classes holds the domain-independent latent vectors of the classes.
type classes struct {
	semantic [][]float64 // s_k: [K][r], unit
	visual   [][]float64 // v_k: [K][r], unit
	group    []int       // super-class of each class
	hub      []float64   // h_k
}

// groupSize is the typical number of classes per super-class.
const groupSize = 6

func newClasses(k, r int, g Geometry, rng *rand.Rand) classes {
	nGroups := (k + groupSize - 1) / groupSize
	c := classes{group: make([]int, k), hub: make([]float64, k)}
	// Balanced groups in random order: label order says nothing about groups.
	for i, j := range rng.Perm(k) {
		c.group[i] = j % nGroups
	}
	for i := range c.hub {
		c.hub[i] = rng.NormFloat64()
	}
	correlated := func() [][]float64 {
		centres := make([][]float64, nGroups)
		for i := range centres {
			centres[i] = randomUnit(r, rng)
		}
		vs := make([][]float64, k)
		for i := range vs {
			vs[i] = combine(r, term{math.Sqrt(g.GroupCorrelation), centres[c.group[i]]}, term{math.Sqrt(1 - g.GroupCorrelation), randomUnit(r, rng)})
			normalize(vs[i])
		}
		return vs
	}
	c.semantic = correlated()
	c.visual = correlated()
	return c
}

// domainText returns the [K, Dim] features of the prompts "a {domain} photo
// of a {class}." for the domain whose word direction is word.
func domainText(g Geometry, b basis, cls classes, word []float64, rng *rand.Rand) *tensor.Matrix {
	k, r, dim := len(cls.semantic), len(b.text), len(word)
	text := tensor.New(k, dim)
	for c := 0; c < k; c++ {
		t := combine(dim, term{g.TextMean, b.textMean}, term{g.Hubness * cls.hub[c], b.imageOnly}, term{g.TextDomain, word})
		addSpan(t, b.text, combine(r, term{g.TextClass, cls.semantic[c]}, term{g.TextJitter, randomUnit(r, rng)}))
		normalize(t)
		storeRow(text.Row(c), t)
	}
	return text
}

// domainClass is how one class looks in one domain, in the coordinates of
// the class subspaces ([r] each).
type domainClass struct {
	eta       float64   // blend towards the confuser
	own, conf []float64 // s_k and the confuser's s_c
	distort   []float64 // ClassDistortion·ζ_kd
	vision    []float64 // v̂_kd, unit
}

// textPart writes into dst the unit text-aligned direction for blend eta.
func (dc domainClass) textPart(dst []float64, eta float64) {
	for a := range dst {
		dst[a] = (1-eta)*dc.own[a] + eta*dc.conf[a] + dc.distort[a]
	}
	normalize(dst)
}

// domainImages draws one domain's labels and [N, Dim] image features.
func domainImages(spec DomainSpec, g Geometry, b basis, cls classes, word, style []float64, rng *rand.Rand) *features.Domain {
	k, r, dim := len(cls.semantic), len(b.text), len(word)

	look := make([]domainClass, k)
	for c := range look {
		look[c] = domainClass{
			eta:     min(0.9, spec.Confusion*rng.ExpFloat64()),
			own:     cls.semantic[c],
			conf:    cls.semantic[pickConfuser(c, cls.group, rng)],
			distort: combine(r, term{g.ClassDistortion, randomUnit(r, rng)}),
			vision:  combine(r, term{1, cls.visual[c]}, term{g.VisionShift, randomUnit(r, rng)}),
		}
		normalize(look[c].vision)
	}

	// Common part of every image in the domain: the image centroid direction
	// and the domain's style.
	common := combine(dim,
		term{g.ImageMean * g.GapCos, b.textMean},
		term{g.ImageMean * math.Sqrt(1-g.GapCos*g.GapCos), b.imageOnly},
		term{spec.Style * g.StyleTextAlign, word},
		term{spec.Style * math.Sqrt(1-g.StyleTextAlign*g.StyleTextAlign), style})

	// Noise: a share of its energy in each class subspace, the rest isotropic.
	spanNoise := spec.Noise * math.Sqrt(g.ClassSpanNoise/2/float64(r))
	isoNoise := spec.Noise * math.Sqrt((1-g.ClassSpanNoise)/float64(dim))

	labels := zipfLabels(spec.Size, k, spec.Imbalance, rng)
	feats := tensor.New(len(labels), dim)
	x := make([]float64, dim)
	sem, otherSem, vis := make([]float64, r), make([]float64, r), make([]float64, r)
	for i, c := range labels {
		jitter := g.ConfusionJitter * rng.NormFloat64()
		look[c].textPart(sem, min(1, max(0, look[c].eta+jitter)))
		// An ambiguous image: blend the class part towards another class's.
		other := otherClass(c, k, rng)
		lambda := min(1, spec.Ambiguity*math.Abs(rng.NormFloat64()))
		look[other].textPart(otherSem, look[other].eta)
		for a := range sem {
			sem[a] = g.ImageText*((1-lambda)*sem[a]+lambda*otherSem[a]) + spanNoise*rng.NormFloat64()
			vis[a] = g.ImageVision*((1-lambda)*look[c].vision[a]+lambda*look[other].vision[a]) + spanNoise*rng.NormFloat64()
		}
		for j := range x {
			x[j] = common[j] + isoNoise*rng.NormFloat64()
		}
		addSpan(x, b.text, sem)
		addSpan(x, b.vision, vis)
		normalize(x)
		storeRow(feats.Row(i), x)
	}
	return &features.Domain{Name: spec.Name, Features: feats, Labels: labels, DType: features.F16}
}

// pickConfuser returns the class that class c is blended towards: half the
// time a class of the same super-class (when there is one), otherwise any
// other class.
func pickConfuser(c int, group []int, rng *rand.Rand) int {
	if rng.IntN(2) == 0 {
		var same []int
		for j, gj := range group {
			if j != c && gj == group[c] {
				same = append(same, j)
			}
		}
		if len(same) > 0 {
			return same[rng.IntN(len(same))]
		}
	}
	return otherClass(c, len(group), rng)
}

// otherClass returns a uniformly random class among the k classes other
// than c.
func otherClass(c, k int, rng *rand.Rand) int {
	j := rng.IntN(k - 1)
	if j >= c {
		j++
	}
	return j
}

// zipfLabels returns n labels in random order whose class counts follow
// rank^-exponent with a random rank per class, each class at least once.
// Counts are rounded by largest remainder so that they sum to n exactly.
func zipfLabels(n, k int, exponent float64, rng *rand.Rand) []int {
	rank := rng.Perm(k)
	weights := make([]float64, k)
	var total float64
	for c := range weights {
		weights[c] = math.Pow(float64(rank[c]+1), -exponent)
		total += weights[c]
	}
	spare := n - k
	counts := make([]int, k)
	remainders := make([]float64, k)
	assigned := 0
	for c := range counts {
		share := float64(spare) * weights[c] / total
		counts[c] = int(share)
		remainders[c] = share - float64(counts[c])
		assigned += counts[c]
	}
	// Hand out what flooring left over, largest remainder first; ties go to
	// the lower class index, so the result is deterministic.
	for ; assigned < spare; assigned++ {
		best := 0
		for c := range remainders {
			if remainders[c] > remainders[best] {
				best = c
			}
		}
		counts[best]++
		remainders[best] = -1
	}
	labels := make([]int, 0, n)
	for c, cnt := range counts {
		for range cnt + 1 {
			labels = append(labels, c)
		}
	}
	rng.Shuffle(len(labels), func(i, j int) { labels[i], labels[j] = labels[j], labels[i] })
	return labels
}

// orthonormalFrame returns n orthonormal vectors of dimension dim (n <= dim),
// the first n rows of a uniformly random orthogonal matrix: Gaussian vectors
// orthogonalised by modified Gram-Schmidt.
func orthonormalFrame(n, dim int, rng *rand.Rand) [][]float64 {
	frame := make([][]float64, 0, n)
	for len(frame) < n {
		v := make([]float64, dim)
		for j := range v {
			v[j] = rng.NormFloat64()
		}
		for _, u := range frame {
			axpy(v, -dot(v, u), u)
		}
		// A Gaussian vector lies (almost) in the span of fewer than dim
		// others with probability zero; redraw in that case all the same.
		if dot(v, v) < 1e-6 {
			continue
		}
		normalize(v)
		frame = append(frame, v)
	}
	return frame
}

// newRand returns a generator for one purpose: the stream is chosen by a hash
// of the purpose, so adding a domain or reordering work leaves every other
// stream unchanged.
func newRand(seed uint64, purpose string) *rand.Rand {
	h := fnv.New64a()
	h.Write([]byte(purpose))
	return rand.New(rand.NewPCG(seed, h.Sum64()))
}

func randomUnit(n int, rng *rand.Rand) []float64 {
	v := make([]float64, n)
	for i := range v {
		v[i] = rng.NormFloat64()
	}
	normalize(v)
	return v
}

// term is one weighted vector of a linear combination.
type term struct {
	weight float64
	vector []float64
}

// combine returns Σ weight·vector over terms, each vector of length n.
func combine(n int, terms ...term) []float64 {
	out := make([]float64, n)
	for _, t := range terms {
		axpy(out, t.weight, t.vector)
	}
	return out
}

// addSpan adds Σ_a coef[a]·span[a] to dst.
func addSpan(dst []float64, span [][]float64, coef []float64) {
	for a, c := range coef {
		axpy(dst, c, span[a])
	}
}

func axpy(dst []float64, a float64, x []float64) {
	x = x[:len(dst)]
	for i := range dst {
		dst[i] += a * x[i]
	}
}

func dot(a, b []float64) float64 {
	b = b[:len(a)]
	var s float64
	for i := range a {
		s += a[i] * b[i]
	}
	return s
}

func normalize(v []float64) {
	inv := 1 / math.Sqrt(dot(v, v))
	for i := range v {
		v[i] *= inv
	}
}

func storeRow(dst []float32, src []float64) {
	for i, v := range src {
		dst[i] = float32(v)
	}
}
