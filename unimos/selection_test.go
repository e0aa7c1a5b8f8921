package unimos

import (
	"math"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/unimos/unimos/synth"
	"github.com/unimos/unimos/tensor"
)

func approx(a, b, tol float64) bool { return math.Abs(a-b) <= tol }

// TestPredictionEntropyByHand: rows (1, 0) and (1/2, 1/2) have entropies 0
// and ln 2; their mean (3/4, 1/4) has entropy −(3/4)ln(3/4) − (1/4)ln(1/4).
func TestPredictionEntropyByHand(t *testing.T) {
	p := tensor.FromSlice(2, 2, []float32{1, 0, 0.5, 0.5})
	h, im := PredictionEntropy(p)
	wantH := math.Ln2 / 2
	wantIM := -(0.75*math.Log(0.75) + 0.25*math.Log(0.25)) - wantH
	if !approx(h, wantH, 1e-7) || !approx(im, wantIM, 1e-7) {
		t.Errorf("entropy %v, infomax %v; want %v, %v", h, im, wantH, wantIM)
	}
	// Uniform rows: entropy ln K, no information.
	u := tensor.FromSlice(3, 4, []float32{.25, .25, .25, .25, .25, .25, .25, .25, .25, .25, .25, .25})
	if h, im := PredictionEntropy(u); !approx(h, math.Log(4), 1e-7) || !approx(im, 0, 1e-7) {
		t.Errorf("uniform rows: entropy %v, infomax %v; want ln 4, 0", h, im)
	}
	// One-hot rows on distinct classes: no entropy, full information ln K.
	o := tensor.FromSlice(3, 3, []float32{1, 0, 0, 0, 1, 0, 0, 0, 1})
	if h, im := PredictionEntropy(o); h != 0 || !approx(im, math.Log(3), 1e-7) {
		t.Errorf("one-hot rows: entropy %v, infomax %v; want 0, ln 3", h, im)
	}
}

func TestAgreementByHand(t *testing.T) {
	if got := Agreement([]int{0, 1, 2, 3}, []int{0, 1, 0, 0}); got != 50 {
		t.Errorf("agreement %v, want 50", got)
	}
}

// TestSNDByHand: rows (1, 0), (1, 0), (0, 1) at temperature 1 have
// similarity rows (−1, 1, 0), (1, −1, 0), (0, 0, −1) once the diagonal is
// masked to −1/T.
func TestSNDByHand(t *testing.T) {
	p := tensor.FromSlice(3, 2, []float32{1, 0, 1, 0, 0, 1})
	h := func(s ...float64) float64 {
		var z, out float64
		for _, v := range s {
			z += math.Exp(v)
		}
		for _, v := range s {
			q := math.Exp(v) / z
			out -= q * math.Log(q+1e-5)
		}
		return out
	}
	want := (h(-1, 1, 0) + h(1, -1, 0) + h(0, 0, -1)) / 3
	if got := SoftNeighborhoodDensity(p, 1); !approx(got, want, 1e-6) {
		t.Errorf("SND %v, want %v", got, want)
	}
}

// naiveSND computes SND in float64 from its definition, with explicit
// cosines, for comparison with the matrix implementation.
func naiveSND(p [][]float64, temperature float64) float64 {
	n := len(p)
	cos := func(a, b []float64) float64 {
		var ab, aa, bb float64
		for k := range a {
			ab += a[k] * b[k]
			aa += a[k] * a[k]
			bb += b[k] * b[k]
		}
		return ab / (math.Sqrt(aa) * math.Sqrt(bb))
	}
	var total float64
	for i := range n {
		s := make([]float64, n)
		var z float64
		for j := range n {
			s[j] = cos(p[i], p[j]) / temperature
			if i == j {
				s[j] = -1 / temperature
			}
			z += math.Exp(s[j])
		}
		for j := range n {
			q := math.Exp(s[j]) / z
			total -= q * math.Log(q+1e-5)
		}
	}
	return total / float64(n)
}

func TestSNDMatchesNaive(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	n, k := 40, 5
	p := tensor.New(n, k)
	rows := make([][]float64, n)
	for i := range n {
		rows[i] = make([]float64, k)
		var z float64
		for j := range k {
			rows[i][j] = math.Exp(3 * r.NormFloat64())
			z += rows[i][j]
		}
		for j := range k {
			rows[i][j] /= z
			p.Set(i, j, float32(rows[i][j]))
		}
	}
	// At T = 0.05 the exponents reach 20, so float32 cosines carry a
	// relative error of about 20·1e-7 into each weight.
	want := naiveSND(rows, SNDTemperature)
	if got := SoftNeighborhoodDensity(p, SNDTemperature); !approx(got, want, 1e-4*want) {
		t.Errorf("SND %v, naive %v", got, want)
	}
}

func TestSampleRowsIsSeededSubset(t *testing.T) {
	m := tensor.New(10, 2)
	for i := range 10 {
		m.Set(i, 0, float32(i))
	}
	if sampleRows(m, 10, 1) != m {
		t.Error("a matrix within the limit was copied")
	}
	a, b, c := sampleRows(m, 4, 1), sampleRows(m, 4, 1), sampleRows(m, 4, 2)
	seen := map[float32]bool{}
	same, differs := true, false
	for i := range 4 {
		v := a.At(i, 0)
		if seen[v] || (i > 0 && v < a.At(i-1, 0)) {
			t.Errorf("sample %v repeats a row or is out of order", a.Data)
		}
		seen[v] = true
		same = same && v == b.At(i, 0)
		differs = differs || v != c.At(i, 0)
	}
	if !same || !differs {
		t.Errorf("samples with seeds 1, 1, 2: %v %v %v", a.Data, b.Data, c.Data)
	}
}

func TestCriterionSelect(t *testing.T) {
	ensv := func(v float64) *float64 { return &v }
	history := []Evaluation{
		{Epoch: 0, LabelFree: LabelFree{Entropy: 0, InfoMax: 9, Agreement: 100, SND: 9, BNM: 9, MixValInter: 99, MixValIntra: 99, ClassAMI: 1}}, // before training: never picked
		{Epoch: 1, LabelFree: LabelFree{Entropy: 2, InfoMax: 1, Agreement: 50, SND: 3, BNM: 1, MixValInter: 40, MixValIntra: 90, ClassAMI: 0.5, EnsV: ensv(80)}},
		{Epoch: 2, LabelFree: LabelFree{Entropy: 1, InfoMax: 3, Agreement: 70, SND: math.NaN(), BNM: 2, MixValInter: 50, MixValIntra: 70, ClassAMI: 0.2, EnsV: ensv(95)}},
		{Epoch: 3, LabelFree: LabelFree{Entropy: 1, InfoMax: 2, Agreement: 60, SND: 1, BNM: 2, MixValInter: 45, MixValIntra: 80, ClassAMI: 0.4, EnsV: ensv(90)}},
	}
	want := map[string]int{
		"entropy": 3, // tie with epoch 2: the later
		"infomax": 2, "agreement": 2, "snd": 1,
		"bnm":          3, // tie with epoch 2: the later
		"mixval-inter": 2, "mixval-intra": 1,
		"mixval":   1, // means 65, 60, 62.5
		"classami": 1,
		// ranks under mixval-inter 2, 0, 1 and classami 0, 2, 1: means
		// 1, 1, 1, so the latest
		CombinedCriterion: 3,
		"ensv":            2,
	}
	if len(want) != len(Criteria()) {
		t.Fatalf("the test covers %d criteria of %d", len(want), len(Criteria()))
	}
	for _, c := range Criteria() {
		if got := c.Select(history); got != want[c.Name] {
			t.Errorf("%s picks index %d, want %d", c.Name, got, want[c.Name])
		}
	}
	if c, _ := CriterionByName("snd"); c.Select(history[:1]) != -1 {
		t.Error("a history without trained epochs gave a pick")
	}
	// A history without EnsV (a result.json of an earlier version, a run
	// resumed without its ensemble) gives EnsV no pick.
	old := slices.Clone(history)
	for i := range old {
		old[i].LabelFree.EnsV = nil
	}
	if c, _ := CriterionByName("ensv"); c.Select(old) != -1 {
		t.Error("EnsV picked an epoch from a history without its measure")
	}
	if _, err := CriterionByName("accuracy"); err == nil {
		t.Error("unknown criterion accepted")
	}
}

// TestCombinedMeasures: ranks among the trained epochs only, equal values
// sharing the better rank, averaged over the parts.
func TestCombinedMeasures(t *testing.T) {
	history := []Evaluation{
		{Epoch: 0, LabelFree: LabelFree{MixValInter: 99, ClassAMI: 1}},
		{Epoch: 1, LabelFree: LabelFree{MixValInter: 50, ClassAMI: 0.3}}, // ranks 0, 1
		{Epoch: 2, LabelFree: LabelFree{MixValInter: 50, ClassAMI: 0.1}}, // ranks 0, 2
		{Epoch: 3, LabelFree: LabelFree{MixValInter: 40, ClassAMI: 0.6}}, // ranks 2, 0
	}
	c, err := CriterionByName(CombinedCriterion)
	if err != nil {
		t.Fatal(err)
	}
	got := c.Measures(history)
	if !math.IsNaN(got[0]) || !slices.Equal(got[1:], []float64{0.5, 1, 1}) {
		t.Errorf("measures %v, want NaN, 0.5, 1, 1", got)
	}
	if i := c.Select(history); i != 1 {
		t.Errorf("picks index %d, want 1", i)
	}
	if !math.IsNaN(c.Value(history[1].LabelFree)) {
		t.Error("a combined criterion gave a value for one test alone")
	}
}

// TestLabelFreeOnTraining trains on a small task and checks every recorded
// criterion against its range; entropy must fall, since UniMoS minimises
// it; Result.Selections must name the epochs Select picks.
func TestLabelFreeOnTraining(t *testing.T) {
	task := tinyTask(5, 160, 12, 4)
	cfg := smallConfig()
	cfg.Epochs = 4
	tr := newTestTrainer(t, cfg, task)
	history := tr.Run(nil)
	checkLabelFree(t, history, task)
	result := NewResult("s", "t", cfg, history, nil, 0)
	if len(result.Selections) != len(Criteria()) {
		t.Fatalf("%d selections, want %d", len(result.Selections), len(Criteria()))
	}
	for i, c := range Criteria() {
		s, e := result.Selections[i], history[c.Select(history)]
		if s.Criterion != c.Name || s.Epoch != e.Epoch || s.Score == nil || s.Score.Accuracy != *e.Accuracy {
			t.Errorf("selection %+v disagrees with the history's epoch %d", s, e.Epoch)
		}
	}
}

// TestLabelFreeOnSyntheticStore does the same checks on the synthetic
// "tiny" benchmark (photo -> sketch) with the default configuration, where
// training also makes the two classifiers agree more than before training.
func TestLabelFreeOnSyntheticStore(t *testing.T) {
	p, err := synth.PresetByName("tiny")
	if err != nil {
		t.Fatal(err)
	}
	g, err := synth.Generate(p, 11)
	if err != nil {
		t.Fatal(err)
	}
	task := Task{
		SourceFeatures: g.Domains[0].Features, SourceLabels: g.Domains[0].Labels,
		TargetFeatures: g.Domains[1].Features, TargetLabels: g.Domains[1].Labels, Text: g.Text[1],
	}
	cfg := DefaultConfig()
	cfg.Epochs = 5
	tr := newTestTrainer(t, cfg, task)
	history := tr.Run(nil)
	checkLabelFree(t, history, task)
	if before, after := history[0].LabelFree.Agreement, history[len(history)-1].LabelFree.Agreement; !(after > before) {
		t.Errorf("VAC-LAC agreement %v before training, %v after", before, after)
	}
}

// checkLabelFree checks each criterion against its range (entropy and
// information in [0, ln K], agreement in [0, 100], SND in (0, ln N]) and
// that the entropy falls from epoch 0 to the last epoch.
func checkLabelFree(t *testing.T, history []Evaluation, task Task) {
	t.Helper()
	k, n := float64(task.Text.Rows), float64(task.TargetFeatures.Rows)
	for _, e := range history {
		l := e.LabelFree
		if !(l.Entropy >= 0 && l.Entropy <= math.Log(k)) || !(l.InfoMax >= -1e-9 && l.InfoMax <= math.Log(k)) ||
			!(l.Agreement >= 0 && l.Agreement <= 100) || !(l.SND > 0 && l.SND <= math.Log(n)) {
			t.Errorf("epoch %d: criteria out of range: %+v", e.Epoch, l)
		}
	}
	if first, last := history[1].LabelFree.Entropy, history[len(history)-1].LabelFree.Entropy; !(last < first) {
		t.Errorf("entropy went from %v after epoch 0 to %v after the last", first, last)
	}
}
