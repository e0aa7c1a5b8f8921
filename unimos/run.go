package unimos

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/unimos/unimos/baseline"
	"github.com/unimos/unimos/eval"
	"github.com/unimos/unimos/features"
	"github.com/unimos/unimos/internal/words"
)

// RunOptions observe and control a run.
type RunOptions struct {
	// OnIteration, when set, is called after every training iteration.
	OnIteration func(epoch, iteration, perEpoch int, loss float64)
	// OnEpoch, when set, sees the test before training and each epoch's test.
	OnEpoch func(Evaluation)
	// Stop, when set, is asked before every iteration whether to stop (on
	// SIGINT, say): the run then saves CheckpointFile in the run directory
	// and AdaptStore returns ErrStopped.
	Stop func() bool
	// CheckpointEvery > 0 also saves CheckpointFile after every that many
	// epochs, so that a crash loses little.
	CheckpointEvery int
	// Resume continues the run saved in the run directory's CheckpointFile
	// (its configuration replaces cfg).
	Resume bool
	// Warn, when set, receives warnings about the task (a class that the
	// source has no image of) and notes about a resumed run (a checkpoint
	// too old to tell whether its data changed).
	Warn func(msg string)
	// Lock, when set, is the caller's lock on the run directory
	// (LockRunDir), taken before it prepared the directory; otherwise
	// AdaptStore holds one for the length of the run.
	Lock *RunLock
	// Select, when set, names the label-free criterion whose pick is
	// recorded as Result.Selected (the last epoch stays Result.Final).
	Select string
}

// ErrStopped is returned by AdaptStore when RunOptions.Stop stopped the
// run; the run directory then holds a checkpoint to resume from.
var ErrStopped = errors.New("stopped before the last epoch")

// Output files of a run directory.
const (
	ResultFile      = "result.json"
	ModelFile       = "model.safetensors"
	PredictionsFile = "predictions.csv"
	CheckpointFile  = "checkpoint.safetensors"
)

// AdaptStore trains UniMoS from the source to the target domain of a feature
// store and writes the run directory out: ResultFile, ModelFile and
// PredictionsFile. Every source row must be labelled; target labels, where
// present, are used only to score the run.
func AdaptStore(store *features.Store, source, target string, cfg Config, out string, opts RunOptions) (*Result, error) {
	if source == target {
		return nil, fmt.Errorf("source and target are both %q", source)
	}
	if opts.Select != "" {
		if _, err := CriterionByName(opts.Select); err != nil {
			return nil, err
		}
	}

	// The source is read only in batches: kept as stored when it is float16.
	sourceFeatures, sourceLabels, err := store.CompactDomain(source)
	if err != nil {
		return nil, err
	}
	seen := make([]bool, len(store.Meta.Classes))
	for i, y := range sourceLabels {
		if y < 0 {
			return nil, fmt.Errorf("source domain %s: row %d has no label (-1); UniMoS needs every source image labelled", source, i)
		}
		seen[y] = true
	}
	if missing, n := absentClasses(store.Meta.Classes, seen); n > 0 && opts.Warn != nil {
		opts.Warn(fmt.Sprintf("source domain %s has no image of %s: the vision classifier learns nothing of %s from the source, only from the zero-shot pseudo-labels",
			source, missing, words.Agree(n, "it", "them")))
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
	// One run at a time in a directory: two would overwrite each other's
	// checkpoints and results.
	if opts.Lock == nil {
		lock, err := LockRunDir(out)
		if err != nil {
			return nil, err
		}
		defer lock.Release()
	} else if !sameDir(opts.Lock.Dir(), out) {
		return nil, fmt.Errorf("the run directory %s is not the one locked (%s)", out, opts.Lock.Dir())
	}
	task := Task{
		SourceFeatures: sourceFeatures, SourceLabels: sourceLabels,
		TargetFeatures: tgt.Features, TargetLabels: tgt.Labels, Text: text,
	}
	checkpoint := filepath.Join(out, CheckpointFile)
	ensemble := filepath.Join(out, EnsembleFile)
	var trainer *Trainer
	var seconds float64 // training time of earlier sessions of a resumed run
	if opts.Resume {
		saved, err := ReadSavedRun(checkpoint)
		if err != nil {
			return nil, err
		}
		if saved.Source != source || saved.Target != target {
			return nil, fmt.Errorf("%s was saved for %s->%s, not %s->%s", checkpoint, saved.Source, saved.Target, source, target)
		}
		seconds = saved.TrainSeconds
		trainer, err = ResumeTrainer(checkpoint, task)
		if err != nil {
			return nil, err
		}
		if !saved.DataRecorded && opts.Warn != nil {
			opts.Warn(fmt.Sprintf("%s was saved by an earlier unimos, which did not record its data: whether %s->%s changed in the store since cannot be checked", checkpoint, source, target))
		}
		cfg = trainer.cfg
		if err := trainer.RestoreEnsemble(ensemble); err != nil && opts.Warn != nil {
			opts.Warn(fmt.Sprintf("the temporal ensemble of the epochs before the resume could not be read (%v): this run reports no EnsV and no temporal ensemble", err))
		}
	} else if trainer, err = NewTrainer(cfg, task); err != nil {
		return nil, fmt.Errorf("%s->%s: %w", source, target, err)
	}
	start := time.Now()
	save := func() error {
		abs, err := filepath.Abs(store.Dir)
		if err != nil {
			return err
		}
		// The ensemble first: a checkpoint newer than its ensemble is
		// detected on resume, and the run then only loses EnsV.
		if err := trainer.SaveEnsemble(ensemble); err != nil {
			return err
		}
		return trainer.SaveCheckpoint(checkpoint, map[string]string{
			savedFeaturesKey: abs, savedSourceKey: source, savedTargetKey: target,
			savedSecondsKey: strconv.FormatFloat(seconds+time.Since(start).Seconds(), 'g', -1, 64),
		})
	}
	trainer.OnIteration = opts.OnIteration
	trainer.Stop = opts.Stop
	var saveErr error
	history := trainer.Run(func(e Evaluation) {
		if opts.OnEpoch != nil {
			opts.OnEpoch(e)
		}
		if opts.CheckpointEvery > 0 && e.Epoch > 0 && e.Epoch%opts.CheckpointEvery == 0 && !trainer.Done() && saveErr == nil {
			saveErr = save()
		}
	})
	if err := trainer.Err(); err != nil {
		// A diverged trainer's state is worth no checkpoint and no result.
		return nil, fmt.Errorf("%s->%s: %w; no result is written", source, target, err)
	}
	if saveErr != nil {
		return nil, fmt.Errorf("saving a checkpoint: %w", saveErr)
	}
	if !trainer.Done() {
		if err := save(); err != nil {
			return nil, fmt.Errorf("saving a checkpoint: %w", err)
		}
		return nil, ErrStopped
	}
	result := NewResult(source, target, cfg, history, zeroShot, seconds+time.Since(start).Seconds())
	if opts.Select != "" {
		if err := result.Select(opts.Select); err != nil {
			return nil, err
		}
	}
	// Measured, not offered: the temporal ensemble did not beat the best
	// single epoch (docs/selection.md), so predictions stay the last epoch's.
	if te, ok := trainer.TemporalEnsemble(); ok {
		result.TemporalEnsemble = newEnsembleScore(te)
	}
	if err := WriteResult(filepath.Join(out, ResultFile), result); err != nil {
		return nil, err
	}
	backbone := Backbone{Name: store.Meta.Backbone, Fingerprint: store.Meta.Fingerprint}
	if err := trainer.SaveModel(filepath.Join(out, ModelFile), store.Meta.Classes, backbone); err != nil {
		return nil, err
	}
	if err := WritePredictions(filepath.Join(out, PredictionsFile), history[len(history)-1], store.Meta.Classes, tgt.Paths); err != nil {
		return nil, err
	}
	// The run is complete: a checkpoint from an earlier epoch would only mislead.
	for _, f := range []string{checkpoint, ensemble} {
		if err := os.Remove(f); err != nil && !errors.Is(err, os.ErrNotExist) {
			return nil, err
		}
	}
	return result, nil
}

// sameDir reports whether two paths name the same directory.
func sameDir(a, b string) bool {
	x, errA := os.Stat(a)
	y, errB := os.Stat(b)
	return errA == nil && errB == nil && os.SameFile(x, y)
}

// absentClasses names the classes not seen ("class mug", "classes mug,
// bike"), at most five of them, and counts them; it returns "", 0 when
// every class was seen.
func absentClasses(classes []string, seen []bool) (string, int) {
	var names []string
	for k, ok := range seen {
		if !ok {
			names = append(names, classes[k])
		}
	}
	switch {
	case len(names) == 0:
		return "", 0
	case len(names) == 1:
		return "class " + names[0], 1
	case len(names) > 5:
		return fmt.Sprintf("%d classes (%s, ...)", len(names), strings.Join(names[:5], ", ")), len(names)
	}
	return "classes " + strings.Join(names, ", "), len(names)
}

// The checkpoint metadata entries that say which run a checkpoint belongs
// to, written by AdaptStore beside the trainer's own.
const (
	savedFeaturesKey = "features" // the store's folder, absolute
	savedSourceKey   = "source"
	savedTargetKey   = "target"
	savedSecondsKey  = "train_seconds" // training time of the sessions so far
)

// SavedRun is the run a checkpoint continues, as AdaptStore saved it.
type SavedRun struct {
	Features       string // the feature store's folder, absolute
	Source, Target string
	Config         Config
	TrainSeconds   float64 // training time of the sessions so far
	// DataRecorded is false for checkpoints of earlier versions, which do
	// not record a fingerprint of the data they trained on.
	DataRecorded bool
}

// ReadSavedRun reads which run the checkpoint at path belongs to, to
// rebuild its task before ResumeTrainer (which checks everything else).
func ReadSavedRun(path string) (*SavedRun, error) {
	meta, err := CheckpointMetadata(path)
	if err != nil {
		return nil, err
	}
	r := &SavedRun{Features: meta[savedFeaturesKey], Source: meta[savedSourceKey], Target: meta[savedTargetKey], DataRecorded: HasDataFingerprint(meta)}
	if err := json.Unmarshal([]byte(meta["config"]), &r.Config); err != nil {
		return nil, fmt.Errorf("checkpoint %s: the configuration in its metadata: %w", path, err)
	}
	if r.TrainSeconds, err = strconv.ParseFloat(meta[savedSecondsKey], 64); err != nil || !isFinite(r.TrainSeconds) || r.TrainSeconds < 0 {
		return nil, fmt.Errorf("checkpoint %s: metadata %s %q is not a duration in seconds", path, savedSecondsKey, meta[savedSecondsKey])
	}
	if r.Source == "" || r.Target == "" || r.Features == "" {
		return nil, fmt.Errorf("checkpoint %s: its metadata does not say which store and task it belongs to", path)
	}
	return r, nil
}
