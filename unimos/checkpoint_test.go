package unimos

import (
	"bytes"
	"encoding/json"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/unimos/unimos/safetensors"
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
		assertSameRun(t, fmt.Sprintf("stop after %d", stopAfter), resumed, resumed.Run(nil), whole, want)
	}
}

// assertSameRun requires a trainer's history and weights to equal, bit for
// bit, those of an uninterrupted run.
func assertSameRun(t *testing.T, what string, tr *Trainer, got []Evaluation, whole *Trainer, want []Evaluation) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: %d evaluations, want %d", what, len(got), len(want))
	}
	for i := range want {
		if got[i].Epoch != want[i].Epoch || got[i].Epoch != i || got[i].Loss != want[i].Loss || got[i].W != want[i].W || *got[i].Accuracy != *want[i].Accuracy {
			t.Errorf("%s: evaluation %d differs: %+v vs %+v", what, i, got[i], want[i])
		}
	}
	if !slices.Equal(got[len(got)-1].Predictions, want[len(want)-1].Predictions) {
		t.Errorf("%s: final predictions differ", what)
	}
	wantWeights := whole.Model.Params()
	for i, p := range tr.Model.Params() {
		if !slices.Equal(p.Var.Value.Data, wantWeights[i].Var.Value.Data) {
			t.Errorf("%s: %s differs from the uninterrupted run", what, p.Name)
		}
	}
}

// TestResumeOldFormats resumes from checkpoints in the layouts of formats 1
// and 2, which numbered the history's epochs from 0 (−1 before training);
// format 1 also kept the reference's second optimizer: the separators'
// momentum split between "momentum/" and "separator_momentum/". Split in
// halves, the sum is exact, so the resumed run must equal the
// uninterrupted one, epoch numbers included.
func TestResumeOldFormats(t *testing.T) {
	task := tinyTask(8, 100, 12, 4) // 3 iterations per epoch
	cfg := smallConfig()
	whole, err := NewTrainer(cfg, task)
	if err != nil {
		t.Fatal(err)
	}
	want := whole.Run(nil)

	for _, c := range []struct {
		format        string
		splitMomentum bool
	}{
		{"unimos-checkpoint-1", true},
		{"unimos-checkpoint-2", false},
	} {
		first, _ := NewTrainer(cfg, task)
		steps := 0
		first.Stop = func() bool { steps++; return steps > 4 } // in the second epoch
		first.Run(nil)
		dir := t.TempDir()
		path := filepath.Join(dir, "checkpoint.safetensors")
		if err := first.SaveCheckpoint(path, nil); err != nil {
			t.Fatal(err)
		}
		f, err := safetensors.Open(path)
		if err != nil {
			t.Fatal(err)
		}
		var tensors []*safetensors.Tensor
		split := 0
		for _, name := range f.Names() {
			x, _ := f.Tensor(name)
			values, _ := x.Float32()
			separator := strings.HasPrefix(name, "momentum/text_separator.") || strings.HasPrefix(name, "momentum/vision_separator.")
			if !c.splitMomentum || !separator {
				tensors = append(tensors, &safetensors.Tensor{Name: x.Name, DType: x.DType, Shape: x.Shape, Data: bytes.Clone(x.Data)})
				continue
			}
			for i := range values {
				values[i] /= 2
			}
			for _, prefix := range []string{"momentum/", "separator_momentum/"} {
				half, _ := safetensors.FromFloat32(prefix+strings.TrimPrefix(name, "momentum/"), safetensors.F32, x.Shape, values)
				tensors = append(tensors, half)
			}
			split++
		}
		meta := f.Metadata()
		f.Close()
		if c.splitMomentum && split != 4 {
			t.Fatalf("split %d separator momentum buffers, want 4", split)
		}
		meta["format"] = c.format
		meta["history"] = zeroBasedHistory(t, meta["history"], 2)
		old := filepath.Join(dir, "old.safetensors")
		if err := safetensors.WriteFile(old, tensors, meta); err != nil {
			t.Fatal(err)
		}
		resumed, err := ResumeTrainer(old, task)
		if err != nil {
			t.Fatal(err)
		}
		assertSameRun(t, c.format, resumed, resumed.Run(nil), whole, want)
	}
}

// zeroBasedHistory rewrites a history in the JSON of checkpoint formats 1
// and 2: epochs numbered from 0, −1 before training. It requires n
// evaluations, numbered 0 to n−1 as epochs trained.
func zeroBasedHistory(t *testing.T, history string, n int) string {
	t.Helper()
	var h []map[string]any
	if err := json.Unmarshal([]byte(history), &h); err != nil {
		t.Fatal(err)
	}
	if len(h) != n {
		t.Fatalf("the checkpoint holds %d evaluations, want %d", len(h), n)
	}
	for i, e := range h {
		if e["epoch"] != float64(i) {
			t.Fatalf("evaluation %d is of epoch %v", i, e["epoch"])
		}
		e["epoch"] = i - 1
	}
	raw, err := json.Marshal(h)
	if err != nil {
		t.Fatal(err)
	}
	return string(raw)
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
