package unimos

import (
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"strconv"

	"github.com/unimos/unimos/internal/atomicfile"
	"github.com/unimos/unimos/internal/regularfile"
	"github.com/unimos/unimos/safetensors"
)

// Score is an accuracy pair in percent.
type Score struct {
	Accuracy          float64 `json:"accuracy"`
	MeanClassAccuracy float64 `json:"mean_class_accuracy"`
}

// FinalScore is the last epoch's score with per-class accuracies.
type FinalScore struct {
	Score
	PerClass []float64 `json:"per_class"`
}

// BestEpoch is the reference code's oracle selection: the epoch whose test
// accuracy on the target labels is highest. It uses target labels, so it
// is reported for comparison only.
type BestEpoch struct {
	Epoch    int     `json:"epoch"` // epochs trained, as Evaluation.Epoch
	Accuracy float64 `json:"accuracy"`
	Note     string  `json:"note"`
}

// Selection is the trained epoch a label-free criterion picks from a run's
// history: a number a user without target labels could quote.
type Selection struct {
	Criterion string  `json:"criterion"`
	Epoch     int     `json:"epoch"` // epochs trained, as Evaluation.Epoch
	Value     float64 `json:"value"` // the criterion's measure at that epoch
	// Score is the picked epoch's accuracy; nil without target labels.
	Score *Score `json:"score,omitempty"`
}

// Selected is the epoch that the run's --select criterion picked, the
// label-free number the run quotes beside the last epoch.
type Selected struct {
	Criterion string   `json:"criterion"`
	Epoch     int      `json:"epoch"`              // epochs trained, as Evaluation.Epoch
	Accuracy  *float64 `json:"accuracy,omitempty"` // nil without target labels
}

// EnsembleScore is the temporal ensemble's score: the mean of every trained
// epoch's softmax outputs, unimos's own addition (not the UniMoS paper's
// method), chosen without target labels.
type EnsembleScore struct {
	Epochs int    `json:"epochs"` // the epochs averaged: 1 to Epochs
	Score  *Score `json:"score,omitempty"`
	Note   string `json:"note"`
}

// ResultFormat is the layout version of result.json that WriteResult
// writes. Format 1 (files without the field) numbered epochs from 0, with
// −1 for the test before training; format 2 counts epochs trained, as
// Evaluation.Epoch does. ReadResult reads both.
const ResultFormat = 2

// Result is what `unimos adapt` writes to RUN_DIR/result.json. Scores are
// absent when the target has no labels.
type Result struct {
	Format     int         `json:"format"` // ResultFormat; 0 when read from a format 1 file
	Task       string      `json:"task"`
	Source     string      `json:"source"`
	Target     string      `json:"target"`
	Method     string      `json:"method"`
	Seed       uint64      `json:"seed"`
	Epochs     int         `json:"epochs"`
	Preset     string      `json:"preset"`
	ZeroShot   *Score      `json:"zero_shot,omitempty"`
	Final      *FinalScore `json:"final,omitempty"`
	Best       *BestEpoch  `json:"best,omitempty"`
	Selections []Selection `json:"selections,omitempty"` // each label-free criterion's pick, in Criteria order
	Selected   *Selected   `json:"selected,omitempty"`   // the pick of the criterion the run was asked for
	// TemporalEnsemble scores the mean of the epochs' outputs (nil for a
	// run resumed without its EnsembleFile); a measurement only, as
	// predictions.csv holds the last epoch.
	TemporalEnsemble *EnsembleScore `json:"temporal_ensemble,omitempty"`
	History          []Evaluation   `json:"history"`
	TrainSeconds     float64        `json:"train_seconds"`
	Config           Config         `json:"config"`
}

// NewResult summarises a run's history (the test before training first).
func NewResult(source, target string, cfg Config, history []Evaluation, zeroShot *Score, seconds float64) *Result {
	r := &Result{
		Task: source + "->" + target, Source: source, Target: target, Method: "unimos",
		Seed: cfg.Seed, Epochs: cfg.Epochs, Preset: cfg.Preset,
		ZeroShot: zeroShot, History: history, TrainSeconds: seconds, Config: cfg,
	}
	for _, c := range Criteria() {
		if i := c.Select(history); i >= 0 {
			e := history[i]
			s := Selection{Criterion: c.Name, Epoch: e.Epoch, Value: c.Measures(history)[i]}
			if e.Accuracy != nil {
				s.Score = &Score{*e.Accuracy, *e.MeanClassAccuracy}
			}
			r.Selections = append(r.Selections, s)
		}
	}
	last := history[len(history)-1]
	if last.Metrics == nil {
		return r
	}
	r.Final = &FinalScore{Score: Score{last.Metrics.Accuracy, last.Metrics.MeanClassAccuracy}}
	for _, c := range last.Metrics.PerClass {
		r.Final.PerClass = append(r.Final.PerClass, c.Accuracy)
	}
	r.Best = &BestEpoch{Epoch: -1, Accuracy: -1, Note: "oracle: epoch chosen with target labels, as the reference code reports; not a valid UDA number"}
	for _, e := range history {
		if *e.Accuracy >= r.Best.Accuracy { // the reference keeps the latest of equal bests
			r.Best.Epoch, r.Best.Accuracy = e.Epoch, *e.Accuracy
		}
	}
	return r
}

// Select records in r.Selected the epoch that the criterion called name
// picks from r.History; an error for an unknown name, nothing when the
// criterion has no measure in the history.
func (r *Result) Select(name string) error {
	c, err := CriterionByName(name)
	if err != nil {
		return err
	}
	if i := c.Select(r.History); i >= 0 {
		e := r.History[i]
		r.Selected = &Selected{Criterion: c.Name, Epoch: e.Epoch, Accuracy: e.Accuracy}
	}
	return nil
}

// ensembleNote says what the temporal ensemble is, in result.json.
const ensembleNote = "unimos's own addition, not the UniMoS paper's method: the mean of every trained epoch's softmax outputs, chosen without target labels"

// newEnsembleScore summarises the temporal ensemble's test e.
func newEnsembleScore(e Evaluation) *EnsembleScore {
	s := &EnsembleScore{Epochs: e.Epoch, Note: ensembleNote}
	if e.Accuracy != nil {
		s.Score = &Score{*e.Accuracy, *e.MeanClassAccuracy}
	}
	return s
}

// WriteResult writes r to path (RUN_DIR/result.json) as format
// ResultFormat, which it records in r.
func WriteResult(path string, r *Result) error {
	r.Format = ResultFormat
	return WriteJSON(path, r)
}

// maxResultBytes bounds a result.json, which is read whole: its history of
// a few hundred epochs, with per-class scores of a few hundred classes,
// takes a few megabytes.
const maxResultBytes = 64 << 20

// ReadResult reads a result.json of any format, its epochs counted as
// Evaluation.Epoch counts them.
func ReadResult(path string) (*Result, error) {
	raw, err := regularfile.ReadFile(path, "a JSON file", maxResultBytes)
	if err != nil {
		return nil, fmt.Errorf("unimos: %w", err)
	}
	var r Result
	if err := json.Unmarshal(raw, &r); err != nil {
		return nil, fmt.Errorf("unimos: %s: invalid JSON: %w", path, err)
	}
	switch r.Format {
	case 0: // format 1
		countEpochsTrained(r.History)
		if r.Best != nil {
			r.Best.Epoch++
		}
		for i := range r.Selections {
			r.Selections[i].Epoch++
		}
		r.Format = ResultFormat
	case ResultFormat:
	default:
		return nil, fmt.Errorf("unimos: %s: result format %d is newer than this unimos reads (%d): update unimos", path, r.Format, ResultFormat)
	}
	return &r, nil
}

// countEpochsTrained renumbers a history saved with epochs numbered from 0
// (−1 before training), by result.json format 1 and checkpoint formats 1
// and 2, to the epochs trained that Evaluation.Epoch counts.
func countEpochsTrained(history []Evaluation) {
	for i := range history {
		history[i].Epoch++
	}
}

// WriteJSON writes v as indented JSON to path, atomically.
func WriteJSON(path string, v any) error {
	return atomicfile.Write(path, func(w io.Writer) error {
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(v)
	})
}

// WritePredictions writes EncodePredictions' CSV to path, atomically.
func WritePredictions(path string, e Evaluation, classes, paths []string) error {
	return atomicfile.Write(path, func(w io.Writer) error {
		return EncodePredictions(w, e, classes, paths)
	})
}

// EncodePredictions writes a CSV with one row per target row: the row
// index, the image path when known (paths may be nil), the predicted class
// name and its probability.
func EncodePredictions(w io.Writer, e Evaluation, classes, paths []string) error {
	cw := csv.NewWriter(w)
	cw.Write([]string{"row", "path", "class", "confidence"})
	for i, c := range e.Predictions {
		p := ""
		if paths != nil {
			p = paths[i]
		}
		cw.Write([]string{strconv.Itoa(i), p, classes[c], strconv.FormatFloat(float64(e.Confidences[i]), 'f', 6, 32)})
	}
	cw.Flush()
	return cw.Error()
}

// SaveModel writes every trained tensor (parameters, BatchNorm running
// statistics, the class prior p̂ and the text classifier) to a safetensors
// file, with the configuration, the class names and the CLIP backbone the
// features came from (what of it is known) in its metadata.
func (tr *Trainer) SaveModel(path string, classes []string, backbone Backbone) error {
	var tensors []*safetensors.Tensor
	add := func(name string, shape []int, values []float32) error {
		t, err := safetensors.FromFloat32(name, safetensors.F32, shape, values)
		if err != nil {
			return fmt.Errorf("saving %s: %w", name, err)
		}
		tensors = append(tensors, t)
		return nil
	}
	m := tr.Model
	for _, p := range m.Params() {
		if err := add(p.Name, []int{p.Var.Value.Rows, p.Var.Value.Cols}, p.Var.Value.Data); err != nil {
			return err
		}
	}
	extra := []struct {
		name   string
		shape  []int
		values []float32
	}{
		{"bottleneck_norm.running_mean", []int{len(m.BottleneckNorm.RunningMean)}, m.BottleneckNorm.RunningMean},
		{"bottleneck_norm.running_var", []int{len(m.BottleneckNorm.RunningVar)}, m.BottleneckNorm.RunningVar},
		{"class_prior", []int{len(tr.prior)}, tr.prior},
		{"text_features", []int{m.Text.Rows, m.Text.Cols}, m.Text.Clone().Data},
	}
	for _, e := range extra {
		if err := add(e.name, e.shape, e.values); err != nil {
			return err
		}
	}
	config, err := json.Marshal(tr.cfg)
	if err != nil {
		return err
	}
	names, err := json.Marshal(classes)
	if err != nil {
		return err
	}
	meta := map[string]string{"format": "unimos", "config": string(config), "classes": string(names)}
	if backbone.Name != "" {
		meta[backboneKey] = backbone.Name
	}
	if len(backbone.Fingerprint) > 0 {
		fingerprint, err := json.Marshal(backbone.Fingerprint)
		if err != nil {
			return err
		}
		meta[fingerprintKey] = string(fingerprint)
	}
	return safetensors.WriteFile(path, tensors, meta)
}
