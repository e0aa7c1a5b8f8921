package unimos

import (
	"bytes"
	"encoding/json"
	"fmt"
	"maps"
	"math"
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
	whole := newTestTrainer(t, cfg, task)
	want := whole.Run(nil)

	for _, stopAfter := range []int{0, 4, 6} {
		first := newTestTrainer(t, cfg, task)
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
		if got[i].Epoch != want[i].Epoch || got[i].Epoch != i || got[i].Loss != want[i].Loss || got[i].METWeight != want[i].METWeight || *got[i].Accuracy != *want[i].Accuracy {
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
	whole := newTestTrainer(t, cfg, task)
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
	tr := newTestTrainer(t, cfg, tinyTask(8, 100, 12, 4))
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

// TestResumeRejectsTamperedCheckpoints writes a real checkpoint (a short
// run stopped in its second epoch), tampers with one field at a time, and
// requires ResumeTrainer to fail with an error naming the checkpoint and
// the field: never a panic, never a trainer that would continue into a
// result of nothing. The untampered rewrite must still resume.
func TestResumeRejectsTamperedCheckpoints(t *testing.T) {
	task := tinyTask(8, 100, 12, 4) // 3 iterations per epoch, 4 classes
	tr := newTestTrainer(t, smallConfig(), task)
	steps := 0
	tr.Stop = func() bool { steps++; return steps > 4 } // epoch 1, iteration 1
	tr.Run(nil)
	dir := t.TempDir()
	real := filepath.Join(dir, "real.safetensors")
	if err := tr.SaveCheckpoint(real, nil); err != nil {
		t.Fatal(err)
	}

	// Each case edits the metadata or the tensors (by name) of the real
	// checkpoint.
	type state = checkpointState
	setMeta := func(key, value string) func(*state) {
		return func(s *state) { s.meta[key] = value }
	}
	editConfig := func(edit func(map[string]any)) func(*state) {
		return func(s *state) {
			var c map[string]any
			if err := json.Unmarshal([]byte(s.meta["config"]), &c); err != nil {
				t.Fatal(err)
			}
			edit(c)
			raw, _ := json.Marshal(c)
			s.meta["config"] = string(raw)
		}
	}
	editHistory := func(edit func([]map[string]any) []map[string]any) func(*state) {
		return func(s *state) {
			var h []map[string]any
			if err := json.Unmarshal([]byte(s.meta["history"]), &h); err != nil {
				t.Fatal(err)
			}
			raw, _ := json.Marshal(edit(h))
			s.meta["history"] = string(raw)
		}
	}
	editInts := func(name string, edit func([]int64) []int64) func(*state) {
		return func(s *state) {
			v, err := s.tensors[name].Int64()
			if err != nil {
				t.Fatal(err)
			}
			v = edit(v)
			x, err := safetensors.FromInt64(name, safetensors.I64, []int{len(v)}, v)
			if err != nil {
				t.Fatal(err)
			}
			s.tensors[name] = x
		}
	}
	editFloats := func(name string, edit func([]float32)) func(*state) {
		return func(s *state) {
			old := s.tensors[name]
			v, err := old.Float32()
			if err != nil {
				t.Fatal(err)
			}
			edit(v)
			x, err := safetensors.FromFloat32(name, safetensors.F32, old.Shape, v)
			if err != nil {
				t.Fatal(err)
			}
			s.tensors[name] = x
		}
	}
	drop := func(name string) func(*state) {
		return func(s *state) { delete(s.tensors, name) }
	}
	nan := float32(math.NaN())
	for _, c := range []struct {
		name   string
		tamper func(*state)
		want   string // "" = resumes
	}{
		{"untampered", func(*state) {}, ""},
		{"epoch 10^6", setMeta("epoch", "1000000"), "metadata epoch 1000000"},
		{"epoch -3", setMeta("epoch", "-3"), "metadata epoch -3"},
		{"epoch not a number", setMeta("epoch", "one"), "metadata epoch"},
		{"epoch missing", func(s *state) { delete(s.meta, "epoch") }, "metadata epoch"},
		{"epoch 2 of the history's 1", setMeta("epoch", "2"), "metadata iteration 4 disagrees"},
		{"iteration", setMeta("iteration", "5"), "metadata iteration 5"},
		{"epoch_iteration -1", setMeta("epoch_iteration", "-1"), "metadata epoch_iteration -1"},
		{"epoch_iteration 3", setMeta("epoch_iteration", "3"), "metadata epoch_iteration 3"},
		{"source next -5", setMeta("source_batches.next", "-5"), "metadata source_batches.next -5"},
		{"source next 64", setMeta("source_batches.next", "64"), "metadata source_batches.next 64: after 4 iterations the stream is at 100"},
		{"target next 1", setMeta("target_batches.next", "1"), "metadata target_batches.next 1"},
		{"loss_sum NaN", setMeta("loss_sum", "NaN"), "metadata loss_sum"},
		{"loss_sum Inf", setMeta("loss_sum", "+Inf"), "metadata loss_sum"},
		{"weight_sum -1", setMeta("weight_sum", "-1"), "metadata weight_sum"},
		{"weight_sum 1e9", setMeta("weight_sum", "1e9"), "metadata weight_sum"},
		{"history garbage", setMeta("history", "[{"), "metadata history"},
		{"history empty", setMeta("history", "[]"), "metadata history holds 0 evaluations"},
		{"history short", editHistory(func(h []map[string]any) []map[string]any { return h[:1] }), "metadata history holds 1 evaluation"},
		{"history renumbered", editHistory(func(h []map[string]any) []map[string]any { h[1]["epoch"] = 5; return h }), "evaluation 1: epoch 5"},
		{"history accuracy 150", editHistory(func(h []map[string]any) []map[string]any { h[1]["accuracy"] = 150; return h }), "evaluation 1: accuracy 150"},
		{"history w 2", editHistory(func(h []map[string]any) []map[string]any { h[1]["met_weight"] = 2; return h }), "evaluation 1: met_weight 2"},
		{"rng not base64", setMeta("rng.dropout", "!!"), "metadata rng.dropout"},
		{"rng short", setMeta("rng.source_batches", "AAAA"), "metadata rng.source_batches"},
		{"rng missing", func(s *state) { delete(s.meta, "rng.weight_reset") }, "metadata rng.weight_reset"},
		{"config garbage", setMeta("config", "{"), "metadata config"},
		{"config bottleneck 10^8", editConfig(func(c map[string]any) { c["bottleneck_dim"] = 1e8 }), "metadata config: bottleneck dim"},
		{"config bottleneck 32", editConfig(func(c map[string]any) { c["bottleneck_dim"] = 32 }), "bottleneck dim 16, but the task and the metadata config ask for dim 12, 4 classes, bottleneck dim 32"},
		{"config lr 1e308", editConfig(func(c map[string]any) { c["lr"] = 1e308 }), "metadata config: learning rate"},
		{"config epochs 1", editConfig(func(c map[string]any) { c["epochs"] = 1 }), "metadata epoch_iteration 1"},
		{"config batch 16", editConfig(func(c map[string]any) { c["batch_size"] = 16 }), "metadata iteration 4 disagrees"},
		{"source_rows", setMeta("source_rows", "99"), "saved for source_rows 99"},
		{"pseudo-labels short", editInts("pseudo_labels", func(v []int64) []int64 { return v[:10] }), "tensor pseudo_labels has shape [10], want [100]"},
		{"pseudo-label 4 of 4 classes", editInts("pseudo_labels", func(v []int64) []int64 { v[7] = 4; return v }), "tensor pseudo_labels: element 7 is 4, outside [0, 4)"},
		{"pseudo-label -1", editInts("pseudo_labels", func(v []int64) []int64 { v[0] = -1; return v }), "tensor pseudo_labels: element 0 is -1"},
		{"source perm short", editInts("source_batches.perm", func(v []int64) []int64 { return v[:50] }), "tensor source_batches.perm has shape [50]"},
		{"source perm empty", editInts("source_batches.perm", func(v []int64) []int64 { return nil }), "tensor source_batches.perm: holds 0 values"},
		{"source perm repeats", editInts("source_batches.perm", func(v []int64) []int64 { v[1] = v[0]; return v }), "tensor source_batches.perm: element 1 repeats"},
		{"target perm 100", editInts("target_batches.perm", func(v []int64) []int64 { v[3] = 100; return v }), "tensor target_batches.perm: element 3 is 100"},
		{"target perm float", func(s *state) {
			x, _ := safetensors.FromFloat32("target_batches.perm", safetensors.F32, []int{100}, make([]float32, 100))
			s.tensors["target_batches.perm"] = x
		}, "target_batches.perm"},
		{"prior negative", editFloats("class_prior", func(v []float32) { v[0], v[1] = -0.5, v[1]+0.5+v[0] }), "tensor class_prior: element 0 is -0.5"},
		{"prior sums to 1.5", editFloats("class_prior", func(v []float32) {
			for i := range v {
				v[i] *= 1.5
			}
		}), "tensor class_prior: the values sum to 1.5"},
		{"prior NaN", editFloats("class_prior", func(v []float32) { v[2] = nan }), "tensor class_prior: element 2 is NaN"},
		{"running var negative", editFloats("bottleneck_norm.running_var", func(v []float32) { v[3] = -1 }), "tensor bottleneck_norm.running_var: element 3 is -1"},
		{"weight NaN", editFloats("param/classifier.bias", func(v []float32) { v[1] = nan }), "tensor param/classifier.bias: element 1 is NaN"},
		{"momentum Inf", editFloats("momentum/bottleneck.weight", func(v []float32) { v[0] = float32(math.Inf(1)) }), "tensor momentum/bottleneck.weight: element 0 is +Inf"},
		{"momentum missing", drop("momentum/discriminator.out.bias"), "tensor momentum/discriminator.out.bias is missing"},
		{"weight missing", drop("param/weight_generator.out.weight"), "param/weight_generator.out.weight"},
		{"weight reshaped", func(s *state) {
			x := *s.tensors["param/bottleneck.bias"]
			x.Shape = []int{16, 1}
			s.tensors["param/bottleneck.bias"] = &x
		}, "tensor param/bottleneck.bias has shape [16 1], want [1 16]"},
		{"separator reshaped", func(s *state) {
			x := *s.tensors["param/text_separator.weight"]
			x.Shape = []int{6, 24}
			s.tensors["param/text_separator.weight"] = &x
		}, "tensor param/text_separator.weight has shape [6 24], want a square matrix"},
		{"source data", setMeta("data_sha256.source", strings.Repeat("0", 64)), "the source features or labels differ"},
		{"text data", setMeta("data_sha256.text", strings.Repeat("0", 64)), "the text features differ"},
		{"format", setMeta("format", "unimos-checkpoint-9"), "is not a unimos checkpoint"},
	} {
		s := readCheckpointState(t, real)
		c.tamper(&s)
		path := filepath.Join(dir, strings.ReplaceAll(c.name, " ", "_")+".safetensors")
		writeCheckpointState(t, path, s.meta, s.tensors)
		var err error
		func() {
			defer func() {
				if r := recover(); r != nil {
					err = fmt.Errorf("panic: %v", r)
					t.Errorf("%s: ResumeTrainer panicked: %v", c.name, r)
				}
			}()
			var resumed *Trainer
			if resumed, err = ResumeTrainer(path, task); err == nil && c.want == "" {
				resumed.Run(nil) // and it runs to the end
				if !resumed.Done() {
					t.Errorf("%s: the resumed run did not finish", c.name)
				}
			}
		}()
		switch {
		case c.want == "" && err != nil:
			t.Errorf("%s: %v", c.name, err)
		case c.want != "" && (err == nil || !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), path)):
			t.Errorf("%s: error %v, want one naming %s and %q", c.name, err, path, c.want)
		}
	}
}

// checkpointState is a checkpoint's metadata and tensors, copied out of the file.
type checkpointState struct {
	meta    map[string]string
	tensors map[string]*safetensors.Tensor
}

func readCheckpointState(t *testing.T, path string) checkpointState {
	t.Helper()
	f, err := safetensors.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	s := checkpointState{meta: maps.Clone(f.Metadata()), tensors: map[string]*safetensors.Tensor{}}
	for _, name := range f.Names() {
		x, _ := f.Tensor(name)
		s.tensors[name] = &safetensors.Tensor{Name: x.Name, DType: x.DType, Shape: slices.Clone(x.Shape), Data: bytes.Clone(x.Data)}
	}
	return s
}

func writeCheckpointState(t *testing.T, path string, meta map[string]string, tensors map[string]*safetensors.Tensor) {
	t.Helper()
	var list []*safetensors.Tensor
	for _, name := range slices.Sorted(maps.Keys(tensors)) {
		list = append(list, tensors[name])
	}
	if err := safetensors.WriteFile(path, list, meta); err != nil {
		t.Fatal(err)
	}
}

// TestResumeRejectsChangedData resumes a checkpoint on tasks of the same
// sizes whose data differ, one part or all of them, and requires an error
// naming what changed; a checkpoint without fingerprints (written before
// they were recorded) resumes unchecked.
func TestResumeRejectsChangedData(t *testing.T) {
	task := tinyTask(8, 100, 12, 4)
	tr := newTestTrainer(t, smallConfig(), task)
	tr.Stop = func() bool { return true }
	tr.Run(nil)
	path := filepath.Join(t.TempDir(), "c.safetensors")
	if err := tr.SaveCheckpoint(path, nil); err != nil {
		t.Fatal(err)
	}
	relabelled := task
	relabelled.TargetLabels = slices.Clone(task.TargetLabels)
	relabelled.TargetLabels[0] = (relabelled.TargetLabels[0] + 1) % 4
	text := task
	text.Text = task.Text.Clone()
	text.Text.Data[0] += 0.01 // beyond float16 rounding
	for _, c := range []struct {
		name string
		task Task
		want string
	}{
		{"same data", task, ""},
		{"a target label", relabelled, "the data changed since the run was saved: the target features or labels differ"},
		{"the text", text, "the text features differ"},
		{"everything", tinyTask(9, 100, 12, 4), "the source features or labels and the target features or labels and the text features differ"},
	} {
		_, err := ResumeTrainer(path, c.task)
		if (c.want == "") != (err == nil) || (err != nil && !strings.Contains(err.Error(), c.want)) {
			t.Errorf("%s: error %v, want %q", c.name, err, c.want)
		}
	}

	old := readCheckpointState(t, path)
	for _, part := range dataParts {
		delete(old.meta, dataFingerprintKey(part.key))
	}
	oldPath := filepath.Join(t.TempDir(), "old.safetensors")
	writeCheckpointState(t, oldPath, old.meta, old.tensors)
	if HasDataFingerprint(old.meta) {
		t.Error("a checkpoint without fingerprints says it has them")
	}
	if _, err := ResumeTrainer(oldPath, tinyTask(9, 100, 12, 4)); err != nil {
		t.Errorf("a checkpoint without fingerprints: %v", err)
	}
}
