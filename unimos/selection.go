package unimos

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strings"

	"github.com/unimos/unimos/tensor"
)

// LabelFree holds measures of one test's target predictions that use no
// target label, for choosing an epoch without labels (unimos quotes the
// last epoch; these criteria are what a user without target labels can do
// better; docs/selection.md measures them). All are computed on the
// ensemble that the test reports.
type LabelFree struct {
	// Entropy is the mean Shannon entropy (nats) of the ensemble's softmax
	// rows: low when predictions are confident.
	Entropy float64 `json:"entropy"`
	// InfoMax is the information-maximisation score H(mean p) − mean H(p)
	// (nats), the mutual information between input and predicted class:
	// high when predictions are both confident and diverse.
	InfoMax float64 `json:"infomax"`
	// Agreement is the percentage of rows where the vision-associated and
	// the (debiased) language-associated classifiers predict the same class.
	Agreement float64 `json:"agreement"`
	// SND is the soft neighbourhood density of Saito et al. (ICCV 2021):
	// the mean entropy of each row's softmax over its scaled cosine
	// similarities to the other rows' predictions; high when predictions
	// form dense, consistent neighbourhoods. Computed on at most
	// SNDSampleSize rows.
	SND float64 `json:"snd"`
	// BNM is the batch nuclear-norm of the ensemble's probabilities (see
	// BatchNuclearNorm): high when predictions are confident and diverse.
	BNM float64 `json:"bnm"`
	// MixValInter and MixValIntra are MixVal's measures (Hu et al., NeurIPS
	// 2023) on mixes of target features (see mixProbe), in percent: how
	// often a mix of two rows with different (inter) or the same (intra)
	// pseudo-label is predicted as its dominant row's pseudo-label. They
	// need the model, so the trainer computes them; 0 where it did not
	// (a saved model's predictions, result.json files of earlier versions).
	MixValInter float64 `json:"mixval_inter"`
	MixValIntra float64 `json:"mixval_intra"`
	// ClassAMI is the adjusted mutual information between the predictions
	// and a k-means clustering of the bottleneck features (see ClassAMI);
	// computed by the trainer, 0 where it was not.
	ClassAMI float64 `json:"classami"`
	// EnsV is the percentage of rows where this epoch's prediction equals
	// the temporal ensemble's (the mean of every trained epoch's
	// probabilities): the measure of EnsV (Hu et al., NeurIPS 2024). It
	// needs every epoch, so it is set when training ends; nil before, for
	// the test before training, and for a run resumed without its
	// EnsembleFile.
	EnsV *float64 `json:"ensv,omitempty"`
}

// SND settings: the temperature of Saito et al.'s code, and the number of
// target rows the [S, S] similarity matrix is built from. The sample is drawn
// with the run's seed and is the same at every epoch, so values compare
// across epochs. Its cost grows as S²: at 1024 rows it is about a tenth of
// an end-of-epoch test on Office-Home, at 2048 it was as much as the rest.
const (
	SNDTemperature = 0.05
	SNDSampleSize  = 1024
)

// labelFree computes every criterion from the ensemble's probabilities
// [N, K] and the two classifiers' logits [N, K]. seed draws the SND sample.
func labelFree(probs, vision, language *tensor.Matrix, seed uint64) LabelFree {
	entropy, infoMax := PredictionEntropy(probs)
	return LabelFree{
		Entropy:   entropy,
		InfoMax:   infoMax,
		Agreement: Agreement(tensor.ArgmaxRows(vision), tensor.ArgmaxRows(language)),
		SND:       SoftNeighborhoodDensity(sampleRows(probs, SNDSampleSize, seed), SNDTemperature),
		BNM:       BatchNuclearNorm(probs),
	}
}

// PredictionEntropy returns, for probability rows p [N, K], the mean entropy
// mean_i H(p_i) and the information-maximisation score H(mean_i p_i) −
// mean_i H(p_i), both in nats (0·log 0 = 0).
func PredictionEntropy(p *tensor.Matrix) (meanEntropy, infoMax float64) {
	mean := make([]float64, p.Cols)
	for i := range p.Rows {
		row := p.Row(i)
		for k, v := range row {
			mean[k] += float64(v)
		}
		meanEntropy += entropy64(row)
	}
	meanEntropy /= float64(p.Rows)
	var marginal float64
	for _, v := range mean {
		v /= float64(p.Rows)
		if v > 0 {
			marginal -= v * math.Log(v)
		}
	}
	return meanEntropy, marginal - meanEntropy
}

func entropy64(p []float32) float64 {
	var h float64
	for _, v := range p {
		if v > 0 {
			h -= float64(v) * math.Log(float64(v))
		}
	}
	return h
}

// Agreement returns the percentage of positions where a and b hold the
// same class. They must have the same length.
func Agreement(a, b []int) float64 {
	if len(a) != len(b) {
		panic(fmt.Sprintf("unimos: agreement of %d and %d predictions", len(a), len(b)))
	}
	same := 0
	for i := range a {
		if a[i] == b[i] {
			same++
		}
	}
	return 100 * float64(same) / float64(len(a))
}

// SoftNeighborhoodDensity is SND (Saito et al., "Tune it the Right Way:
// Unsupervised Validation of Domain Adaptation via Soft Neighborhood
// Density", ICCV 2021), as their code computes it from prediction rows p
// [N, K]: with f_i = p_i/‖p_i‖, s_ij = f_i·f_j / T for j ≠ i and s_ii = −1/T
// (the self-similarity masked to the least possible cosine), q_i =
// softmax(s_i), SND = mean_i −Σ_j q_ij·log(q_ij + 1e-5). Higher is better.
func SoftNeighborhoodDensity(p *tensor.Matrix, temperature float64) float64 {
	n := p.Rows
	f := p.Clone()
	for i := range n {
		tensor.NormalizeRow(f.Row(i), 1e-12) // F.normalize's eps
	}
	sim := tensor.New(n, n) // cosine similarities [N, N]
	tensor.Gemm(false, true, 1, f, f, 0, sim)
	// Each row's entropy is independent of the others (an exp and a log
	// per element: the bulk of the work), so rows are spread over the cores
	// and their entropies summed in row order afterwards.
	entropies := make([]float64, n)
	tensor.ParallelRanges(n, 40*n, func(lo, hi int) {
		q := make([]float64, n)
		for i := lo; i < hi; i++ {
			row := sim.Row(i)
			peak := math.Inf(-1)
			for j, v := range row {
				q[j] = float64(v) / temperature
				if j == i {
					q[j] = -1 / temperature
				}
				peak = max(peak, q[j])
			}
			var z float64
			for j := range q {
				q[j] = math.Exp(q[j] - peak)
				z += q[j]
			}
			var h float64
			for _, v := range q {
				v /= z
				h -= v * math.Log(v+1e-5)
			}
			entropies[i] = h
		}
	})
	var total float64
	for _, h := range entropies {
		total += h
	}
	return total / float64(n)
}

// sampleRows returns at most limit rows of m, drawn without replacement by
// a generator seeded with seed (m itself when it has no more rows).
func sampleRows(m *tensor.Matrix, limit int, seed uint64) *tensor.Matrix {
	if m.Rows <= limit {
		return m
	}
	idx := rand.New(rand.NewPCG(seed, sndStream)).Perm(m.Rows)[:limit]
	slices.Sort(idx)
	return gatherRows(rowSet{m, idx})
}

// sndStream separates the SND sample's generator from the trainer's streams.
const sndStream = 0x534e44 // "SND"

// Criterion is a rule for picking an epoch by a label-free measure.
type Criterion struct {
	Name           string
	Description    string
	HigherIsBetter bool
	value          func(LabelFree) float64
	// parts, for a combined criterion, are the criteria whose ranks over
	// the run's trained epochs it adds (value is then nil): its measure
	// depends on the whole history, not on one test.
	parts []string
}

// optional returns *v, or NaN (no measure) for nil.
func optional(v *float64) float64 {
	if v == nil {
		return math.NaN()
	}
	return *v
}

// Value returns the criterion's measure in l (NaN where l has none, and
// for a combined criterion, whose measure needs the history: see Measures).
func (c Criterion) Value(l LabelFree) float64 {
	if c.value == nil {
		return math.NaN()
	}
	return c.value(l)
}

// CombinedCriterion is unimos's own criterion (not from a paper): the
// trained epoch with the best mean rank under MixVal's inter-class
// accuracy and ClassAMI, two measures of whether the predicted classes
// follow the clusters of the target features, probed in two ways (the
// model's answer on mixes; a clustering of its bottleneck features).
// Ranks make the two scales comparable. docs/selection.md says how it was
// chosen and how it compares.
const CombinedCriterion = "mixval-classami"

// DefaultCriterion is the criterion whose pick adapt records as
// "selected" and bench adds as a row when --select is not given:
// docs/selection.md has the measurements that chose it.
const DefaultCriterion = CombinedCriterion

// Criteria lists the label-free selection criteria, in report order.
func Criteria() []Criterion {
	return []Criterion{
		{"entropy", "lowest mean prediction entropy", false, func(l LabelFree) float64 { return l.Entropy }, nil},
		{"infomax", "highest information maximisation H(mean p) − mean H(p)", true, func(l LabelFree) float64 { return l.InfoMax }, nil},
		{"agreement", "highest agreement between the VAC and LAC predictions", true, func(l LabelFree) float64 { return l.Agreement }, nil},
		{"snd", "highest soft neighbourhood density (Saito et al. 2021)", true, func(l LabelFree) float64 { return l.SND }, nil},
		{"bnm", "highest batch nuclear-norm of the predictions (Cui et al. 2020)", true, func(l LabelFree) float64 { return l.BNM }, nil},
		{"mixval-inter", "highest MixVal accuracy on mixes of rows with different pseudo-labels (Hu et al. 2023)", true, func(l LabelFree) float64 { return l.MixValInter }, nil},
		{"mixval-intra", "highest MixVal accuracy on mixes of rows with the same pseudo-label (Hu et al. 2023)", true, func(l LabelFree) float64 { return l.MixValIntra }, nil},
		{"mixval", "highest mean of the two MixVal accuracies (Hu et al. 2023)", true, func(l LabelFree) float64 { return (l.MixValInter + l.MixValIntra) / 2 }, nil},
		{"classami", "highest adjusted mutual information between predictions and k-means clusters of the features (Musgrave et al. 2022)", true, func(l LabelFree) float64 { return l.ClassAMI }, nil},
		{"ensv", "highest agreement with the ensemble of every trained epoch (EnsV, Hu et al. 2024)", true, func(l LabelFree) float64 { return optional(l.EnsV) }, nil},
		{CombinedCriterion, "best mean rank under mixval-inter and classami (unimos's own)", false, nil, []string{"mixval-inter", "classami"}},
	}
}

// CriterionNames lists the names Criteria accepts, in report order.
func CriterionNames() []string {
	var names []string
	for _, c := range Criteria() {
		names = append(names, c.Name)
	}
	return names
}

// CriterionByName returns the criterion called name.
func CriterionByName(name string) (Criterion, error) {
	for _, c := range Criteria() {
		if c.Name == name {
			return c, nil
		}
	}
	return Criterion{}, fmt.Errorf("unknown selection criterion %q (choose from %s)", name, strings.Join(CriterionNames(), ", "))
}

// Measures returns the criterion's measure of each test in history: NaN
// for the test before training, which is no trained model, and where a
// test has no measure. A combined criterion's measure is the mean over its
// parts of the test's rank among the trained epochs (0 for the best; equal
// values share the better rank); a test that a part cannot rank gets NaN.
func (c Criterion) Measures(history []Evaluation) []float64 {
	out := make([]float64, len(history))
	if c.parts == nil {
		for i, e := range history {
			out[i] = c.Value(e.LabelFree)
			if e.Epoch == 0 {
				out[i] = math.NaN()
			}
		}
		return out
	}
	for _, name := range c.parts {
		part, err := CriterionByName(name)
		if err != nil {
			panic(err) // the parts are names of Criteria
		}
		values := part.Measures(history)
		for i, v := range values {
			rank := 0
			for _, w := range values {
				if !math.IsNaN(w) && w != v && (w > v) == part.HigherIsBetter {
					rank++
				}
			}
			if math.IsNaN(v) {
				out[i] = math.NaN()
			} else {
				out[i] += float64(rank) / float64(len(c.parts))
			}
		}
	}
	return out
}

// Select returns the index in history of the test after a trained epoch
// (Epoch >= 1) that the criterion prefers, the latest one on ties, or −1
// when history has no trained epoch with a finite measure.
func (c Criterion) Select(history []Evaluation) int {
	best, bestValue := -1, 0.0
	for i, v := range c.Measures(history) {
		if math.IsNaN(v) {
			continue
		}
		if best < 0 || v == bestValue || (v > bestValue) == c.HigherIsBetter {
			best, bestValue = i, v
		}
	}
	return best
}
