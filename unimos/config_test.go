package unimos

import (
	"math"
	"strings"
	"testing"
)

// TestValidateRejectsOutOfRange sets one setting at a time to a value that
// cannot work (NaN, infinite, huge, negative, just past a bound) and
// requires Validate to name it, while the bounds themselves pass.
func TestValidateRejectsOutOfRange(t *testing.T) {
	nan, inf := math.NaN(), math.Inf(1)
	for _, c := range []struct {
		name string
		set  func(*Config)
		want string // "" = valid
	}{
		{"default", func(c *Config) {}, ""},
		{"lr NaN", func(c *Config) { c.LR = nan }, "learning rate must be in (0, 10], got NaN"},
		{"lr 0", func(c *Config) { c.LR = 0 }, "learning rate"},
		{"lr 10", func(c *Config) { c.LR = 10 }, ""},
		{"lr 1e308", func(c *Config) { c.LR = 1e308 }, "learning rate"},
		{"tau Inf", func(c *Config) { c.Tau = inf }, "tau must be in [0, 10], got +Inf"},
		{"tau -1", func(c *Config) { c.Tau = -1 }, "tau"},
		{"alpha 1e308", func(c *Config) { c.Alpha = 1e308 }, "alpha must be in [0, 1000], got 1e+308"},
		{"alpha 0", func(c *Config) { c.Alpha = 0 }, ""},
		{"beta NaN", func(c *Config) { c.Beta = nan }, "beta"},
		{"gamma -Inf", func(c *Config) { c.Gamma = math.Inf(-1) }, "gamma"},
		{"momentum 1", func(c *Config) { c.Momentum = 1 }, "momentum must be in [0, 1), got 1"},
		{"momentum NaN", func(c *Config) { c.Momentum = nan }, "momentum"},
		{"prior momentum NaN", func(c *Config) { c.PriorMomentum = nan }, "prior momentum"},
		{"schedule gain Inf", func(c *Config) { c.ScheduleGain = inf }, "lr gamma"},
		{"schedule power NaN", func(c *Config) { c.SchedulePow = nan }, "lr power"},
		{"test weight start 2", func(c *Config) { c.TestWeightStart = 2 }, "test weight start"},
		{"test weight end NaN", func(c *Config) { c.TestWeightEnd = nan }, "test weight end"},
		{"fixed test weight NaN", func(c *Config) { c.FixedTestWeight = nan }, "fixed test weight must be at most 1, got NaN"},
		{"fixed test weight 1.5", func(c *Config) { c.FixedTestWeight = 1.5 }, "fixed test weight"},
		{"fixed mix 0.5", func(c *Config) { c.FixedTestWeight = 0.5 }, ""},
		{"logit scale 0", func(c *Config) { c.LogitScale = 0 }, "logit scale"},
		{"logit scale Inf", func(c *Config) { c.LogitScale = inf }, "logit scale"},
		{"weight reset NaN", func(c *Config) { c.WeightReset = nan }, "weight reset probability"},
		{"epochs 0", func(c *Config) { c.Epochs = 0 }, "epochs must be at least 1"},
		{"epochs 10^6", func(c *Config) { c.Epochs = 1_000_000 }, "epochs must be at most 100000"},
		{"bottleneck 10^8", func(c *Config) { c.BottleneckDim = 100_000_000 }, "bottleneck dim must be in [1, 65536], got 100000000"},
		{"bottleneck 65536", func(c *Config) { c.BottleneckDim = 65536 }, ""},
		{"batch 1", func(c *Config) { c.BatchSize = 1 }, "batch size"},
		{"ortho", func(c *Config) { c.Variants.Ortho = "x" }, "orthogonality"},
	} {
		cfg := DefaultConfig()
		c.set(&cfg)
		err := cfg.Validate()
		switch {
		case c.want == "" && err != nil:
			t.Errorf("%s: rejected: %v", c.name, err)
		case c.want != "" && (err == nil || !strings.Contains(err.Error(), c.want)):
			t.Errorf("%s: error %v, want %q", c.name, err, c.want)
		}
	}
}
