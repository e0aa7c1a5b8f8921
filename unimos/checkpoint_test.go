package unimos

import (
	"bytes"
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
		if got[i].Loss != want[i].Loss || got[i].W != want[i].W || *got[i].Accuracy != *want[i].Accuracy {
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

// TestResumeFormatOne resumes from a checkpoint in the layout of format 1,
// which kept the reference's second optimizer: the separators' momentum
// split between "momentum/" and "separator_momentum/". Split in halves, the
// sum is exact, so the resumed run must equal the uninterrupted one.
func TestResumeFormatOne(t *testing.T) {
	task := tinyTask(8, 100, 12, 4)
	cfg := smallConfig()
	whole, err := NewTrainer(cfg, task)
	if err != nil {
		t.Fatal(err)
	}
	want := whole.Run(nil)

	first, _ := NewTrainer(cfg, task)
	steps := 0
	first.Stop = func() bool { steps++; return steps > 4 }
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
		if !strings.HasPrefix(name, "momentum/text_separator.") && !strings.HasPrefix(name, "momentum/vision_separator.") {
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
	meta["format"] = "unimos-checkpoint-1"
	f.Close()
	if split != 4 {
		t.Fatalf("split %d separator momentum buffers, want 4", split)
	}
	old := filepath.Join(dir, "format1.safetensors")
	if err := safetensors.WriteFile(old, tensors, meta); err != nil {
		t.Fatal(err)
	}
	resumed, err := ResumeTrainer(old, task)
	if err != nil {
		t.Fatal(err)
	}
	assertSameRun(t, "format 1", resumed, resumed.Run(nil), whole, want)
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
