package unimos

import (
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/unimos/unimos/baseline"
	"github.com/unimos/unimos/eval"
	"github.com/unimos/unimos/features"
)

// RunOptions observe a run as it goes.
type RunOptions struct {
	// OnIteration, when set, is called after every training iteration.
	OnIteration func(epoch, iteration, perEpoch int, loss float64)
	// OnEpoch, when set, sees the test before training and each epoch's test.
	OnEpoch func(Evaluation)
}

// Output files of a run directory.
const (
	ResultFile      = "result.json"
	ModelFile       = "model.safetensors"
	PredictionsFile = "predictions.csv"
)

// AdaptStore trains UniMoS from the source to the target domain of a feature
// store and writes the run directory out: ResultFile, ModelFile and
// PredictionsFile. Every source row must be labelled; target labels, where
// present, are used only to score the run.
func AdaptStore(store *features.Store, source, target string, cfg Config, out string, opts RunOptions) (*Result, error) {
	if source == target {
		return nil, fmt.Errorf("source and target are both %q", source)
	}
	src, err := store.Domain(source)
	if err != nil {
		return nil, err
	}
	for i, y := range src.Labels {
		if y < 0 {
			return nil, fmt.Errorf("source domain %s: row %d has no label (-1); UniMoS needs every source image labelled", source, i)
		}
	}
	tgt, err := store.Domain(target)
	if err != nil {
		return nil, err
	}
	text, err := store.Text(target)
	if err != nil {
		return nil, err
	}
	var zeroShot *Score
	if eval.HasLabels(tgt.Labels) {
		m, err := baseline.EvaluateZeroShot(store, tgt)
		if err != nil {
			return nil, err
		}
		zeroShot = &Score{Accuracy: m.Accuracy, MeanClassAccuracy: m.MeanClassAccuracy}
	}
	if err := os.MkdirAll(out, 0o755); err != nil {
		return nil, fmt.Errorf("creating the run directory: %w", err)
	}
	trainer, err := NewTrainer(cfg, Task{
		SourceFeatures: src.Features, SourceLabels: src.Labels,
		TargetFeatures: tgt.Features, TargetLabels: tgt.Labels, Text: text,
	})
	if err != nil {
		return nil, fmt.Errorf("%s->%s: %w", source, target, err)
	}
	trainer.OnIteration = opts.OnIteration
	start := time.Now()
	history := trainer.Run(opts.OnEpoch)
	result := NewResult(source, target, cfg, history, zeroShot, time.Since(start).Seconds())
	if err := WriteJSON(filepath.Join(out, ResultFile), result); err != nil {
		return nil, err
	}
	if err := trainer.SaveModel(filepath.Join(out, ModelFile), store.Meta.Classes); err != nil {
		return nil, err
	}
	if err := WritePredictions(filepath.Join(out, PredictionsFile), history[len(history)-1], store.Meta.Classes, tgt.Paths); err != nil {
		return nil, err
	}
	return result, nil
}
