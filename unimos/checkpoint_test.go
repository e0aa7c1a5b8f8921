package unimos

import (
	"path/filepath"
	"slices"
	"testing"
)

// TestResumeIsBitIdentical stops a run at several points (before the first
// iteration, mid-epoch, at an epoch boundary), saves a checkpoint, resumes
// from it in a new trainer and requires the same history and weights, bit
// for bit, as a run that never stopped.
func TestResumeIsBitIdentical(t *testing.T) {
	task := tinyTask(8, 100, 12, 4) // 3 iterations per epoch
	cfg := smallConfig()
	cfg.Epochs = 4
	whole, err := NewTrainer(cfg, task)
	if err != nil {
		t.Fatal(err)
	}
	want := whole.Run(nil)
	wantWeights := whole.Model.Params()

	for _, stopAfter := range []int{0, 4, 6} {
		first, err := NewTrainer(cfg, task)
		if err != nil {
			t.Fatal(err)
		}
		steps := 0
		first.Stop = func() bool { steps++; return steps > stopAfter }
		first.Run(nil)
		if first.Done() {
			t.Fatalf("stop after %d: the run did not stop", stopAfter)
		}
		path := filepath.Join(t.TempDir(), "checkpoint.safetensors")
		if err := first.SaveCheckpoint(path, map[string]string{"note": "test"}); err != nil {
			t.Fatal(err)
		}
		meta, err := CheckpointMetadata(path)
		if err != nil || meta["note"] != "test" {
			t.Fatalf("metadata %v, %v", meta, err)
		}
		resumed, err := ResumeTrainer(path, task)
		if err != nil {
			t.Fatal(err)
		}
		got := resumed.Run(nil)
		if len(got) != len(want) {
			t.Fatalf("stop after %d: %d evaluations, want %d", stopAfter, len(got), len(want))
		}
		for i := range want {
			if got[i].Loss != want[i].Loss || got[i].W != want[i].W || *got[i].Accuracy != *want[i].Accuracy {
				t.Errorf("stop after %d: evaluation %d differs: %+v vs %+v", stopAfter, i, got[i], want[i])
			}
		}
		if !slices.Equal(got[len(got)-1].Predictions, want[len(want)-1].Predictions) {
			t.Errorf("stop after %d: final predictions differ", stopAfter)
		}
		for i, p := range resumed.Model.Params() {
			if !slices.Equal(p.Var.Value.Data, wantWeights[i].Var.Value.Data) {
				t.Errorf("stop after %d: %s differs from the uninterrupted run", stopAfter, p.Name)
			}
		}
	}
}

func TestResumeRejectsAnotherTask(t *testing.T) {
	cfg := smallConfig()
	tr, err := NewTrainer(cfg, tinyTask(8, 100, 12, 4))
	if err != nil {
		t.Fatal(err)
	}
	tr.Stop = func() bool { return true }
	tr.Run(nil)
	path := filepath.Join(t.TempDir(), "c.safetensors")
	if err := tr.SaveCheckpoint(path, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := ResumeTrainer(path, tinyTask(8, 120, 12, 4)); err == nil {
		t.Error("a checkpoint resumed on a task with other row counts")
	}
}
