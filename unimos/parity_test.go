package unimos

import (
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"testing"

	"github.com/unimos/unimos/features"
	"github.com/unimos/unimos/internal/shareddata"
)

type referenceRuns struct {
	Runs []struct {
		Tests []struct {
			Ensemble float64 `json:"ensemble_accuracy"`
		} `json:"tests"`
	} `json:"runs"`
}

// TestParityShortSchedule trains on the parity kit for the first 10 epochs
// of the reference schedule (the learning rate depends only on the global
// iteration, so these epochs are those of the full 50-epoch run) and
// compares the per-epoch ensemble accuracy with the mean of the reference
// code's three seeds. Seeds do not match between implementations, so the
// comparison is of curves: the mean over epochs 1-10 within 1.5 points, and
// every epoch within 4 points (the reference's own seeds spread up to 3.1).
// docs/parity.md records the full 50-epoch comparison.
func TestParityShortSchedule(t *testing.T) {
	if testing.Short() {
		t.Skip("parity run takes several seconds")
	}
	dir := shareddata.Dir(t, "parity_kit")
	raw, err := os.ReadFile(filepath.Join(dir, "reference_runs.json"))
	if err != nil {
		t.Fatal(err)
	}
	var ref referenceRuns
	if err := json.Unmarshal(raw, &ref); err != nil {
		t.Fatal(err)
	}
	store, err := features.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	src, err := store.Domain("photo")
	if err != nil {
		t.Fatal(err)
	}
	tgt, err := store.Domain("sketch")
	if err != nil {
		t.Fatal(err)
	}
	text, err := store.Text("sketch")
	if err != nil {
		t.Fatal(err)
	}
	const epochs = 10
	cfg := DefaultConfig()
	cfg.Epochs = epochs
	tr := newTestTrainer(t, cfg, Task{src.Features, src.Labels, tgt.Features, tgt.Labels, text})
	history := tr.Run(nil)
	var ours, theirs float64
	for test := 1; test <= epochs; test++ {
		var refMean float64
		for _, run := range ref.Runs {
			refMean += run.Tests[test].Ensemble / float64(len(ref.Runs))
		}
		got := *history[test].Accuracy
		t.Logf("epoch %2d: unimos %.2f, reference mean %.2f", history[test].Epoch, got, refMean)
		if math.Abs(got-refMean) > 4 {
			t.Errorf("epoch %d: accuracy %.2f is more than 4 points from the reference's %.2f", history[test].Epoch, got, refMean)
		}
		ours += got / epochs
		theirs += refMean / epochs
	}
	if math.Abs(ours-theirs) > 1.5 {
		t.Errorf("mean accuracy over epochs 1-%d: %.2f, reference %.2f (more than 1.5 points apart)", epochs, ours, theirs)
	}
}
