package unimos

import (
	"encoding/json"
	"testing"
)

// TestReadEarlierNames reads a configuration and an evaluation written with
// the names of earlier versions, and checks that writing them back uses
// only the current names.
func TestReadEarlierNames(t *testing.T) {
	var cfg Config
	old := `{"epochs": 7, "ramp_start": 0.9, "ramp_end": 0.2, "ramp_epochs": 4, "fixed_mix": 0.35,
		"ablations": {"fixed_weight": true, "no_ortho": true}}`
	if err := json.Unmarshal([]byte(old), &cfg); err != nil {
		t.Fatal(err)
	}
	if cfg.Epochs != 7 || cfg.TestWeightStart != 0.9 || cfg.TestWeightEnd != 0.2 || cfg.TestWeightEpochs != 4 ||
		cfg.FixedTestWeight != 0.35 || !cfg.Ablations.FixedMETWeight || !cfg.Ablations.NoOrtho {
		t.Errorf("read %+v", cfg)
	}
	var e Evaluation
	if err := json.Unmarshal([]byte(`{"epoch": 3, "w": 0.61, "mix": 0.65, "loss": 1.5}`), &e); err != nil {
		t.Fatal(err)
	}
	if e.Epoch != 3 || e.METWeight != 0.61 || e.TestWeight != 0.65 || e.Loss != 1.5 {
		t.Errorf("read %+v", e)
	}
	// Current names win over nothing and are what is written.
	for _, v := range []any{cfg, e} {
		raw, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		var fields map[string]any
		if err := json.Unmarshal(raw, &fields); err != nil {
			t.Fatal(err)
		}
		for _, name := range []string{"ramp_start", "ramp_end", "ramp_epochs", "fixed_mix", "w", "mix"} {
			if _, ok := fields[name]; ok {
				t.Errorf("%T written with the old name %q", v, name)
			}
		}
	}
	var back Config
	raw, _ := json.Marshal(cfg)
	if err := json.Unmarshal(raw, &back); err != nil || back != cfg {
		t.Errorf("round trip: %+v, %v", back, err)
	}
}
