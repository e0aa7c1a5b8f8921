package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/unimos/unimos/features"
	"github.com/unimos/unimos/unimos"
)

// tinyTask writes the synthetic "tiny" store and returns it with the adapt
// arguments of a short photo -> sketch run into out.
func tinyTask(t *testing.T, out string, epochs string) (store string, args []string) {
	t.Helper()
	store = filepath.Join(t.TempDir(), "tiny")
	if code, _, errOut := runCLI(t, "synth", "--preset", "tiny", "--out", store); code != 0 {
		t.Fatalf("synth: %q", errOut)
	}
	return store, []string{"adapt", "--features", store, "--source", "photo", "--target", "sketch", "--epochs", epochs, "--seed", "5", "--quiet", "--out", out}
}

// TestAdaptRefusesExistingRun checks that adapt does not train over a run
// directory unless --force, and that --force replaces the run whole.
func TestAdaptRefusesExistingRun(t *testing.T) {
	out := filepath.Join(t.TempDir(), "run")
	_, args := tinyTask(t, out, "1")
	if code, _, errOut := runCLI(t, args...); code != 0 {
		t.Fatalf("first run: %q", errOut)
	}
	before, err := os.ReadFile(filepath.Join(out, unimos.ResultFile))
	if err != nil {
		t.Fatal(err)
	}
	code, _, errOut := runCLI(t, args...)
	if code != 2 || !strings.Contains(errOut, "already holds a run (result.json, model.safetensors, predictions.csv)") || !strings.Contains(errOut, "--force") {
		t.Errorf("second run: status %d, stderr %q; want a refusal naming the files and --force", code, errOut)
	}
	if after, _ := os.ReadFile(filepath.Join(out, unimos.ResultFile)); string(after) != string(before) {
		t.Error("the refused run changed result.json")
	}
	// A stopped run is pointed at --resume.
	if err := os.WriteFile(filepath.Join(out, unimos.CheckpointFile), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if code, _, errOut := runCLI(t, args...); code != 2 || !strings.Contains(errOut, "unimos adapt --resume "+out) {
		t.Errorf("run over a checkpoint: status %d, stderr %q; want a pointer to --resume", code, errOut)
	}
	forced := append(args[:len(args):len(args)], "--force", "--epochs", "2")
	if code, _, errOut := runCLI(t, forced...); code != 0 {
		t.Fatalf("--force: status %d, stderr %q", code, errOut)
	}
	if r := readResult(t, out); r.Config.Epochs != 2 {
		t.Errorf("--force kept the old run: %d epochs", r.Config.Epochs)
	}
	if _, err := os.Stat(filepath.Join(out, unimos.CheckpointFile)); err == nil {
		t.Error("--force left the old checkpoint beside the new run")
	}
}

// TestResumeRefusals checks what --resume refuses: a finished run, a
// directory without a run, and flags that differ from the checkpoint
// (while the same values, and the flags that only watch the run, pass).
func TestResumeRefusals(t *testing.T) {
	dir := t.TempDir()
	finished := filepath.Join(dir, "finished")
	store, args := tinyTask(t, finished, "1")
	if code, _, errOut := runCLI(t, args...); code != 0 {
		t.Fatalf("run: %q", errOut)
	}
	if code, _, errOut := runCLI(t, "adapt", "--resume", finished); code != 1 || !strings.Contains(errOut, "is a finished run") {
		t.Errorf("resume of a finished run: status %d, stderr %q", code, errOut)
	}
	if code, _, errOut := runCLI(t, "adapt", "--resume", dir); code != 1 || !strings.Contains(errOut, "holds no stopped run") {
		t.Errorf("resume of an empty folder: status %d, stderr %q", code, errOut)
	}

	// A run stopped before its first iteration, as Ctrl-C stops one.
	stopped := filepath.Join(dir, "stopped")
	stopRun(t, store, stopped)

	for _, c := range []struct {
		flags []string
		want  string // "" = accepted
	}{
		{[]string{"--epochs", "30"}, "--epochs 30 (saved: 3)"},
		{[]string{"--epochs", "30", "--lr", "0.5"}, "--epochs 30 (saved: 3), --lr 0.5 (saved: 0.003)"},
		{[]string{"--target", "painting"}, "--target painting (saved: sketch)"},
		{[]string{"--no-ortho=false"}, "--no-ortho false (saved: true)"},
		{[]string{"--force"}, "--force (nothing is replaced"},
		{[]string{"--features", filepath.Join(dir, "elsewhere")}, "--features " + filepath.Join(dir, "elsewhere")},
	} {
		code, _, errOut := runCLI(t, append([]string{"adapt", "--resume", stopped}, c.flags...)...)
		if code != 2 || !strings.Contains(errOut, c.want) || !strings.Contains(errOut, "start a new run with another --out") {
			t.Errorf("--resume with %q: status %d, stderr %q, want %q", c.flags, code, errOut, c.want)
		}
	}
	// The saved values themselves, and the flags that only watch the run.
	code, out, errOut := runCLI(t, "adapt", "--resume", stopped, "--epochs", "3", "--no-ortho", "--source", "photo",
		"--features", store, "--quiet", "--checkpoint-every", "1")
	if code != 0 || !strings.Contains(out, "photo->sketch") {
		t.Errorf("--resume with the saved values: status %d, stdout %q, stderr %q", code, out, errOut)
	}
}

// stopRun trains 3 epochs of photo -> sketch with --no-ortho into out and
// stops it before its first iteration, leaving a checkpoint.
func stopRun(t *testing.T, store, out string) {
	t.Helper()
	cfg, err := unimos.Preset("office-home")
	if err != nil {
		t.Fatal(err)
	}
	cfg.Epochs, cfg.Seed, cfg.Ablations.NoOrtho = 3, 5, true
	s, err := features.Open(store)
	if err != nil {
		t.Fatal(err)
	}
	_, err = unimos.AdaptStore(s, "photo", "sketch", cfg, out, unimos.RunOptions{Stop: func() bool { return true }})
	if err != unimos.ErrStopped {
		t.Fatalf("stopped run: %v", err)
	}
}

// TestAdaptWarnsOfAbsentSourceClass relabels a class away from the source and
// requires a warning naming it.
func TestAdaptWarnsOfAbsentSourceClass(t *testing.T) {
	out := filepath.Join(t.TempDir(), "run")
	store, args := tinyTask(t, out, "1")
	s, err := features.Open(store)
	if err != nil {
		t.Fatal(err)
	}
	photo, err := s.Domain("photo")
	if err != nil {
		t.Fatal(err)
	}
	for i, y := range photo.Labels { // class 2's images now say class 3
		if y == 2 {
			photo.Labels[i] = 3
		}
	}
	if _, err := s.PutDomain(photo, nil); err != nil {
		t.Fatal(err)
	}
	code, _, errOut := runCLI(t, args...)
	want := "warning: source domain photo has no image of class " + s.Meta.Classes[2] + ":"
	if code != 0 || !strings.Contains(errOut, want) {
		t.Errorf("status %d, stderr %q, want %q", code, errOut, want)
	}
}
