package unimos

import "encoding/json"

// Configurations and evaluations are read in the names of earlier versions
// too, so that their result.json files, checkpoints and saved models stay
// readable: the test weight l_e was "ramp_start", "ramp_end",
// "ramp_epochs", "fixed_mix" and "mix", the MET weight w "w", and the
// ablation fixing it "fixed_weight".

// UnmarshalJSON reads a configuration, also in the names of earlier
// versions.
func (c *Config) UnmarshalJSON(data []byte) error {
	type current Config // the fields alone, without this method
	var old struct {
		RampStart  *float64 `json:"ramp_start"`
		RampEnd    *float64 `json:"ramp_end"`
		RampEpochs *int     `json:"ramp_epochs"`
		FixedMix   *float64 `json:"fixed_mix"`
	}
	if err := json.Unmarshal(data, (*current)(c)); err != nil {
		return err
	}
	if err := json.Unmarshal(data, &old); err != nil {
		return err
	}
	setIf(&c.TestWeightStart, old.RampStart)
	setIf(&c.TestWeightEnd, old.RampEnd)
	setIf(&c.TestWeightEpochs, old.RampEpochs)
	setIf(&c.FixedTestWeight, old.FixedMix)
	return nil
}

// UnmarshalJSON reads the ablations, also in the names of earlier versions.
func (a *Ablations) UnmarshalJSON(data []byte) error {
	type current Ablations
	var old struct {
		FixedWeight *bool `json:"fixed_weight"`
	}
	if err := json.Unmarshal(data, (*current)(a)); err != nil {
		return err
	}
	if err := json.Unmarshal(data, &old); err != nil {
		return err
	}
	setIf(&a.FixedMETWeight, old.FixedWeight)
	return nil
}

// UnmarshalJSON reads an evaluation, also in the names of earlier
// versions.
func (e *Evaluation) UnmarshalJSON(data []byte) error {
	type current Evaluation
	var old struct {
		W   *float64 `json:"w"`
		Mix *float64 `json:"mix"`
	}
	if err := json.Unmarshal(data, (*current)(e)); err != nil {
		return err
	}
	if err := json.Unmarshal(data, &old); err != nil {
		return err
	}
	setIf(&e.METWeight, old.W)
	setIf(&e.TestWeight, old.Mix)
	return nil
}

// setIf sets *dst to *v when v is not nil.
func setIf[T any](dst *T, v *T) {
	if v != nil {
		*dst = *v
	}
}
