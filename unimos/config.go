// Package unimos implements UniMoS ("Split to Merge: Unifying Separated
// Modalities for Unsupervised Domain Adaptation", CVPR 2024) on cached CLIP
// features, following the reference code's behaviour, with the paper's
// variants as options. docs/method.md describes the method as implemented
// and maps each of the paper's equations to its function (the objective is
// in objective.go); section numbers in comments refer to it.
package unimos

import (
	"fmt"
	"math"
	"slices"
	"strings"
)

// Config holds every hyperparameter of a run. The zero value is not useful:
// start from a preset (Preset) or DefaultConfig and change fields.
type Config struct {
	Preset string `json:"preset"`
	Seed   uint64 `json:"seed"`

	Epochs       int     `json:"epochs"`
	LR           float64 `json:"lr"`             // initial learning rate, every parameter group
	Momentum     float64 `json:"momentum"`       // SGD momentum
	BatchSize    int     `json:"batch_size"`     // source and target rows per iteration, each
	MaxIters     int     `json:"max_iterations"` // cap on iterations per epoch
	ScheduleGain float64 `json:"lr_gamma"`       // inverse schedule lr0·(1+gamma·it)^(−power)
	SchedulePow  float64 `json:"lr_power"`

	Alpha float64 `json:"alpha"` // source cross-entropy on the language-associated logits
	Beta  float64 `json:"beta"`  // source cross-entropy on the vision-associated logits
	Gamma float64 `json:"gamma"` // weight of the orthogonality and discriminator losses

	Tau           float64 `json:"tau"`            // debiasing strength (ACDE)
	PriorMomentum float64 `json:"prior_momentum"` // EMA momentum of the class prior p̂

	// The test weight l_e, the weight of the vision-associated logits in
	// the test ensemble (predictions and pseudo-labels; section 5):
	// TestWeightStart falling linearly to TestWeightEnd over
	// TestWeightEpochs epochs, or FixedTestWeight when it is set (>= 0).
	// Training mixes with the learned MET weight w instead.
	TestWeightStart  float64 `json:"test_weight_start"`
	TestWeightEnd    float64 `json:"test_weight_end"`
	TestWeightEpochs int     `json:"test_weight_epochs"`
	FixedTestWeight  float64 `json:"fixed_test_weight"` // < 0: use the ramp

	BottleneckDim int     `json:"bottleneck_dim"`
	LogitScale    float64 `json:"logit_scale"`
	WeightReset   float64 `json:"weight_reset_probability"` // per-epoch re-init probability of each W tensor

	Variants  Variants  `json:"variants"`
	Ablations Ablations `json:"ablations"`
}

// Variants choose between the reference code's behaviour (the zero value)
// and the paper's description where the two disagree (section 9).
type Variants struct {
	// CosineLAC scores the language-associated component by cosine (paper
	// Eq. 4) instead of the unnormalised dot product of the code.
	CosineLAC bool `json:"cosine_lac"`
	// Ortho is the form of the orthogonality loss: "diagonal" (code HEAD),
	// "elementwise" (code's first release) or "paper" (cross-Frobenius per domain).
	Ortho string `json:"ortho"`
	// CentroidLabelsOnly uses centroid pseudo-labels from epoch 2 on (the
	// paper) instead of alternating them with the ensemble's argmax (the code).
	CentroidLabelsOnly bool `json:"centroid_labels_only"`
	// DebiasedEnsemble uses the debiased LAC logits in the training
	// ensemble (paper Eq. 11) instead of the raw ones (the code).
	DebiasedEnsemble bool `json:"debiased_ensemble"`
	// FullPrecisionText uses the text features as stored; the code rounds
	// them to float16 (its text_fea_norm) before every use.
	FullPrecisionText bool `json:"full_precision_text"`
}

// Ablations switch off one part of the method each, as in the paper's Table 5.
type Ablations struct {
	NoOrtho         bool `json:"no_ortho"`
	NoDebias        bool `json:"no_debias"`
	NoEntropy       bool `json:"no_entropy"`
	NoDistill       bool `json:"no_distill"`
	FixedMETWeight  bool `json:"fixed_met_weight"` // w = 0.5 instead of the learned MET weight
	NoDiscriminator bool `json:"no_discriminator"`
}

// Orthogonality loss forms accepted in Variants.Ortho.
const (
	OrthoDiagonal    = "diagonal"
	OrthoElementwise = "elementwise"
	OrthoPaper       = "paper"
)

// DefaultConfig is the reference code's default, which is its Office-Home
// setting (section 4).
func DefaultConfig() Config {
	return Config{
		Preset: "office-home", Seed: 2023,
		Epochs: 50, LR: 3e-3, Momentum: 0.9, BatchSize: 32, MaxIters: 1500,
		ScheduleGain: 0.001, SchedulePow: 0.75,
		Alpha: 1, Beta: 1, Gamma: 0.01,
		Tau: 0.5, PriorMomentum: 0.99,
		TestWeightStart: 0.8, TestWeightEnd: 0.3, TestWeightEpochs: 10, FixedTestWeight: -1,
		BottleneckDim: 256, LogitScale: 100, WeightReset: 0.5,
		Variants: Variants{Ortho: OrthoDiagonal},
	}
}

// presets are the per-dataset settings of section 4: Office-Home from the
// code, VisDA and DomainNet from the paper (DomainNet's α and β are unstated
// and taken as 1).
var presets = map[string]func(*Config){
	"office-home": func(c *Config) {},
	"visda": func(c *Config) {
		c.Epochs, c.LR, c.Alpha, c.Beta = 10, 9e-4, 0.001, 0.1
	},
	"domainnet":    func(c *Config) {},
	"domainnet126": func(c *Config) {},
}

// PresetNames lists the presets accepted by Preset, sorted.
func PresetNames() []string {
	names := make([]string, 0, len(presets))
	for n := range presets {
		names = append(names, n)
	}
	slices.Sort(names)
	return names
}

// Preset returns DefaultConfig adjusted to a dataset's published settings.
func Preset(name string) (Config, error) {
	apply, ok := presets[name]
	if !ok {
		return Config{}, fmt.Errorf("unknown preset %q (choose from %s)", name, strings.Join(PresetNames(), ", "))
	}
	c := DefaultConfig()
	c.Preset = name
	apply(&c)
	return c, nil
}

// Limits of the settings Validate accepts. They are wide, a hundred times
// or more beyond any published setting, and exist so that a typing slip
// (1e308 for 1e-3) or a tampered file fails at once, naming the setting,
// instead of training to the end on overflowed losses.
const (
	maxEpochs        = 100_000
	maxLR            = 10
	maxLossWeight    = 1000 // alpha, beta, gamma
	maxTau           = 10
	maxScheduleGain  = 1000
	maxSchedulePow   = 10
	maxLogitScale    = 1000
	maxBottleneckDim = 1 << 16 // a model allocates [bottleneck, dim] matrices
)

// Validate reports the first setting that cannot work: an integer out of
// range, or a number that is NaN, infinite or outside its range (the ranges
// are in the README's adapt section and the flags' help):
//
//	epochs [1, 100000], lr (0, 10], momentum and prior momentum [0, 1),
//	alpha, beta, gamma [0, 1000], tau [0, 10], lr_gamma [0, 1000],
//	lr_power [0, 10], test weight start and end [0, 1], fixed test weight at most 1
//	(negative: the ramp), bottleneck dim [1, 65536], logit scale (0, 1000],
//	weight reset probability [0, 1].
func (c Config) Validate() error {
	switch {
	case c.Epochs < 1:
		return fmt.Errorf("epochs must be at least 1, got %d", c.Epochs)
	case c.Epochs > maxEpochs:
		return fmt.Errorf("epochs must be at most %d, got %d", maxEpochs, c.Epochs)
	case c.BatchSize < 2:
		return fmt.Errorf("batch size must be at least 2 (BatchNorm), got %d", c.BatchSize)
	case c.MaxIters < 1:
		return fmt.Errorf("iterations per epoch cap must be at least 1, got %d", c.MaxIters)
	case c.TestWeightEpochs < 1:
		return fmt.Errorf("test weight epochs must be at least 1, got %d", c.TestWeightEpochs)
	case c.BottleneckDim < 1 || c.BottleneckDim > maxBottleneckDim:
		return fmt.Errorf("bottleneck dim must be in [1, %d], got %d", maxBottleneckDim, c.BottleneckDim)
	}
	for _, r := range []struct {
		name   string
		v      float64
		within interval
	}{
		{"learning rate", c.LR, interval{0, maxLR, true, false}},
		{"momentum", c.Momentum, interval{0, 1, false, true}},
		{"prior momentum", c.PriorMomentum, interval{0, 1, false, true}},
		{"alpha", c.Alpha, interval{0, maxLossWeight, false, false}},
		{"beta", c.Beta, interval{0, maxLossWeight, false, false}},
		{"gamma", c.Gamma, interval{0, maxLossWeight, false, false}},
		{"tau", c.Tau, interval{0, maxTau, false, false}},
		{"lr gamma (schedule gain)", c.ScheduleGain, interval{0, maxScheduleGain, false, false}},
		{"lr power (schedule power)", c.SchedulePow, interval{0, maxSchedulePow, false, false}},
		{"test weight start", c.TestWeightStart, interval{0, 1, false, false}},
		{"test weight end", c.TestWeightEnd, interval{0, 1, false, false}},
		{"fixed test weight", c.FixedTestWeight, interval{math.Inf(-1), 1, true, false}},
		{"logit scale", c.LogitScale, interval{0, maxLogitScale, true, false}},
		{"weight reset probability", c.WeightReset, interval{0, 1, false, false}},
	} {
		if !r.within.contains(r.v) {
			return fmt.Errorf("%s must be %s, got %g", r.name, r.within, r.v)
		}
	}
	switch c.Variants.Ortho {
	case OrthoDiagonal, OrthoElementwise, OrthoPaper:
	default:
		return fmt.Errorf("unknown orthogonality form %q (choose from %s, %s, %s)", c.Variants.Ortho, OrthoDiagonal, OrthoElementwise, OrthoPaper)
	}
	return nil
}

// interval is a range of real numbers; an open end excludes its bound.
type interval struct {
	lo, hi         float64
	loOpen, hiOpen bool
}

// contains reports whether v is in the interval; NaN never is.
func (i interval) contains(v float64) bool {
	aboveLo := v > i.lo || (!i.loOpen && v == i.lo)
	belowHi := v < i.hi || (!i.hiOpen && v == i.hi)
	return aboveLo && belowHi
}

// String reads "in [0, 1)", or "at most 1" without a lower bound.
func (i interval) String() string {
	if math.IsInf(i.lo, -1) {
		return fmt.Sprintf("at most %g", i.hi)
	}
	left, right := "[", "]"
	if i.loOpen {
		left = "("
	}
	if i.hiOpen {
		right = ")"
	}
	return fmt.Sprintf("in %s%g, %g%s", left, i.lo, i.hi, right)
}

// TestWeight is the test weight l_e, the weight of the vision-associated
// logits in the test ensemble after epoch e (`cal_l` in the code):
// TestWeightStart falling by (TestWeightStart−TestWeightEnd)/TestWeightEpochs
// per epoch, then TestWeightEnd; FixedTestWeight when set.
func (c Config) TestWeight(epoch int) float64 {
	if c.FixedTestWeight >= 0 {
		return c.FixedTestWeight
	}
	step := (c.TestWeightStart - c.TestWeightEnd) / float64(c.TestWeightEpochs)
	return max(c.TestWeightStart-step*float64(max(epoch, 0)), c.TestWeightEnd)
}
