package main

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"syscall"
	"testing"

	"github.com/unimos/unimos/features"
	"github.com/unimos/unimos/safetensors"
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

// TestAdaptWarnsOfAbsentSourceClass relabels one class, then two, away
// from the source and requires a warning naming them, in the singular for
// one; the one-epoch run's summary counts its epoch in the singular too.
func TestAdaptWarnsOfAbsentSourceClass(t *testing.T) {
	for _, c := range []struct {
		absent []int // classes relabelled as class 3 (boat); the tiny preset has cat, dog, car, boat, chair, ...
		want   string
	}{
		{[]int{2}, "has no image of class car: the vision classifier learns nothing of it from the source"},
		{[]int{2, 4}, "has no image of classes car, chair: the vision classifier learns nothing of them from the source"},
	} {
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
		for i, y := range photo.Labels {
			if slices.Contains(c.absent, y) {
				photo.Labels[i] = 3
			}
		}
		if _, err := s.PutDomain(photo, nil); err != nil {
			t.Fatal(err)
		}
		code, stdout, errOut := runCLI(t, args...)
		if want := "warning: source domain photo " + c.want; code != 0 || !strings.Contains(errOut, want) {
			t.Errorf("status %d, stderr %q, want %q", code, errOut, want)
		}
		if !strings.Contains(stdout, "(mean of the outputs of 1 epoch; unimos's own addition)") {
			t.Errorf("summary of a one-epoch run:\n%s", stdout)
		}
	}
}

// TestAdaptRejectsBadHyperparameters gives adapt numbers that cannot
// train (NaN, infinite, absurdly large) and requires a usage error naming
// the setting before any training, and no run directory written.
func TestAdaptRejectsBadHyperparameters(t *testing.T) {
	out := filepath.Join(t.TempDir(), "run")
	_, args := tinyTask(t, out, "1")
	for _, c := range []struct {
		flags []string
		want  string
	}{
		{[]string{"--lr", "NaN"}, "learning rate must be in (0, 10], got NaN"},
		{[]string{"--tau", "Inf"}, "tau must be in [0, 10], got +Inf"},
		{[]string{"--alpha", "1e308"}, "alpha must be in [0, 1000], got 1e+308"},
		{[]string{"--test-weight", "NaN"}, "fixed test weight must be at most 1, got NaN"},
		{[]string{"--mix", "NaN"}, "fixed test weight must be at most 1, got NaN"}, // the deprecated spelling
		{[]string{"--prior-momentum", "-Inf"}, "prior momentum must be in [0, 1)"},
	} {
		code, _, errOut := runCLI(t, append(slices.Clone(args), c.flags...)...)
		if code != 2 || !strings.Contains(errOut, c.want) {
			t.Errorf("%q: status %d, stderr %q, want 2 and %q", c.flags, code, errOut, c.want)
		}
		if _, err := os.Stat(out); err == nil {
			t.Errorf("%q: the refused run created %s", c.flags, out)
		}
	}
}

// TestAdaptStopsWhenTrainingDiverges trains with a learning rate that makes
// the loss overflow within the first epoch, and requires exit status 1 with
// an error naming the epoch and iteration, and nothing written that could
// pass for a run: no result, model, predictions or checkpoint.
func TestAdaptStopsWhenTrainingDiverges(t *testing.T) {
	out := filepath.Join(t.TempDir(), "run")
	_, args := tinyTask(t, out, "3")
	code, _, errOut := runCLI(t, append(args, "--lr", "10", "--checkpoint-every", "1")...)
	if code != 1 || !strings.Contains(errOut, "training diverged in epoch 1/3, iteration ") || !strings.Contains(errOut, "no result is written") {
		t.Errorf("status %d, stderr %q, want 1 and the epoch and iteration of the divergence", code, errOut)
	}
	for _, f := range append(runFiles, unimos.LockFile) {
		if _, err := os.Stat(filepath.Join(out, f)); err == nil {
			t.Errorf("the diverged run left %s", f)
		}
	}
}

// TestResumeRefusesChangedData stops a run, rewrites the store's target
// domain with other features of the same row count, and requires --resume
// to refuse, naming what changed; a checkpoint written before fingerprints
// were recorded resumes with a note that its data cannot be checked.
func TestResumeRefusesChangedData(t *testing.T) {
	dir := t.TempDir()
	store, _ := tinyTask(t, filepath.Join(dir, "unused"), "1")
	stopped := filepath.Join(dir, "stopped")
	stopRun(t, store, stopped)
	checkpoint := filepath.Join(stopped, unimos.CheckpointFile)
	before, err := os.ReadFile(checkpoint)
	if err != nil {
		t.Fatal(err)
	}

	s, err := features.Open(store)
	if err != nil {
		t.Fatal(err)
	}
	sketch, err := s.Domain("sketch")
	if err != nil {
		t.Fatal(err)
	}
	original := sketch.Features.Clone()
	// Swap the first two rows: same rows, same count, another dataset.
	r0, r1 := sketch.Features.Row(0), sketch.Features.Row(1)
	for j := range r0 {
		r0[j], r1[j] = r1[j], r0[j]
	}
	if _, err := s.PutDomain(sketch, nil); err != nil {
		t.Fatal(err)
	}
	code, _, errOut := runCLI(t, "adapt", "--resume", stopped, "--quiet")
	if code != 1 || !strings.Contains(errOut, checkpoint) || !strings.Contains(errOut, "the target features or labels differ") {
		t.Errorf("resume on a changed store: status %d, stderr %q, want 1 naming the target", code, errOut)
	}
	if after, _ := os.ReadFile(checkpoint); !bytes.Equal(after, before) {
		t.Error("the refused resume changed the checkpoint")
	}
	if _, err := os.Stat(filepath.Join(stopped, unimos.ResultFile)); err == nil {
		t.Error("the refused resume wrote a result")
	}

	// An older checkpoint, without fingerprints, on the store as it was.
	sketch.Features = original
	if _, err := s.PutDomain(sketch, nil); err != nil {
		t.Fatal(err)
	}
	editCheckpointMetadata(t, checkpoint, func(meta map[string]string) {
		maps.DeleteFunc(meta, func(k, _ string) bool { return strings.HasPrefix(k, "data_sha256.") })
	})
	code, out, errOut := runCLI(t, "adapt", "--resume", stopped, "--quiet")
	if code != 0 || !strings.Contains(out, "photo->sketch") || !strings.Contains(errOut, "did not record its data: whether photo->sketch changed in the store since cannot be checked") {
		t.Errorf("resume of an older checkpoint: status %d, stdout %q, stderr %q, want success with a note", code, out, errOut)
	}
}

// TestAdaptLocksTheRunDirectory starts `unimos adapt` in another process
// and, while it trains, runs a second adapt (plain, --force) and a resume
// into the same directory: each must be refused, naming the first
// process's id, and leave its files alone. Stopped, the first run leaves
// no lock behind and resumes.
func TestAdaptLocksTheRunDirectory(t *testing.T) {
	out := filepath.Join(t.TempDir(), "run")
	_, args := tinyTask(t, out, "60")
	args = slices.DeleteFunc(args, func(a string) bool { return a == "--quiet" })
	cmd := exec.Command(os.Args[0], append([]string{"-test.run=^$", "--"}, append(args, "--checkpoint-every", "1")...)...)
	cmd.Env = append(os.Environ(), "UNIMOS_TEST_MAIN=1")
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	scanner := bufio.NewScanner(stderr)
	var lines []string
	for scanner.Scan() && !strings.HasPrefix(scanner.Text(), "epoch 2/60") { // the checkpoint of epoch 1 is saved
		lines = append(lines, scanner.Text())
	}
	go io.Copy(io.Discard, stderr) // keep the child from blocking on a full pipe
	if _, err := unimos.CheckpointMetadata(filepath.Join(out, unimos.CheckpointFile)); err != nil {
		t.Fatalf("no checkpoint while the first run trains: %v; its stderr:\n%s", err, strings.Join(lines, "\n"))
	}
	inUse := fmt.Sprintf("%s is in use by another unimos adapt or bench (pid %d)", out, cmd.Process.Pid)
	for _, second := range [][]string{
		args,
		append(slices.Clone(args), "--force"),
		{"adapt", "--resume", out, "--quiet"},
	} {
		if code, _, errOut := runCLI(t, second...); code != 1 || !strings.Contains(errOut, inUse) {
			t.Errorf("%q while another run trains: status %d, stderr %q, want 1 and %q", second, code, errOut, inUse)
		}
	}
	// The first run rewrites its checkpoint every epoch; --force must not
	// have removed it (the first run could have written it again since, so
	// this catches the removal only most of the time).
	if _, err := unimos.CheckpointMetadata(filepath.Join(out, unimos.CheckpointFile)); err != nil {
		t.Errorf("the refused runs removed the first run's checkpoint: %v", err)
	}

	cmd.Process.Signal(syscall.SIGINT)
	var exit *exec.ExitError
	if err := cmd.Wait(); !errors.As(err, &exit) || exit.ExitCode() != 1 {
		t.Fatalf("interrupted run: %v, want exit status 1", err)
	}
	if _, err := os.Stat(filepath.Join(out, unimos.LockFile)); err == nil {
		t.Error("the stopped run left its lock file")
	}
	if code, _, errOut := runCLI(t, "adapt", "--resume", out, "--quiet", "--epochs", "60"); code != 0 {
		t.Errorf("resume after the first run stopped: status %d, stderr %q", code, errOut)
	}
}

// editCheckpointMetadata rewrites a checkpoint with its metadata edited.
func editCheckpointMetadata(t *testing.T, path string, edit func(map[string]string)) {
	t.Helper()
	f, err := safetensors.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	meta := maps.Clone(f.Metadata())
	var tensors []*safetensors.Tensor
	for _, name := range f.Names() {
		x, _ := f.Tensor(name)
		tensors = append(tensors, &safetensors.Tensor{Name: x.Name, DType: x.DType, Shape: x.Shape, Data: bytes.Clone(x.Data)})
	}
	f.Close()
	edit(meta)
	if err := safetensors.WriteFile(path, tensors, meta); err != nil {
		t.Fatal(err)
	}
}

// TestResumeRefusesTamperedCheckpoint resumes, through the command, runs
// whose checkpoints were tampered with (the unimos package tests every
// field; these are the ones the command reads or that used to crash it or
// to end "successfully"), and requires exit status 1 naming the checkpoint
// and the field, with no result written.
func TestResumeRefusesTamperedCheckpoint(t *testing.T) {
	dir := t.TempDir()
	store, _ := tinyTask(t, filepath.Join(dir, "unused"), "1")
	for _, c := range []struct {
		key, value, want string
	}{
		{"source_batches.next", "-5", "metadata source_batches.next -5"},
		{"epoch", "1000000", "metadata epoch 1000000"},
		{"epoch", "-3", "metadata epoch -3"},
		{"train_seconds", "NaN", "metadata train_seconds \"NaN\""},
		{"config", `"bottleneck_dim":100000000`, "metadata config: bottleneck dim must be in [1, 65536], got 100000000"},
	} {
		run := filepath.Join(dir, c.key+strings.ReplaceAll(c.value, `"`, ""))
		stopRun(t, store, run)
		checkpoint := filepath.Join(run, unimos.CheckpointFile)
		editCheckpointMetadata(t, checkpoint, func(meta map[string]string) {
			if c.key == "config" { // one field of the JSON
				meta[c.key] = strings.Replace(meta[c.key], `"bottleneck_dim":256`, c.value, 1)
				return
			}
			meta[c.key] = c.value
		})
		code, _, errOut := runCLI(t, "adapt", "--resume", run, "--quiet")
		if code != 1 || !strings.Contains(errOut, checkpoint) || !strings.Contains(errOut, c.want) {
			t.Errorf("%s %s: status %d, stderr %q, want 1 and %q", c.key, c.value, code, errOut, c.want)
		}
		if _, err := os.Stat(filepath.Join(run, unimos.ResultFile)); err == nil {
			t.Errorf("%s %s: a result was written", c.key, c.value)
		}
	}
}

// TestAdaptSummaryColumns trains onto a labelled, a partly labelled and an
// unlabelled target: every value of the summary, number or text, starts in
// the same column.
func TestAdaptSummaryColumns(t *testing.T) {
	gap := regexp.MustCompile(`^  \S+(?: \S+)*\s{2,}`) // the indent, the label and the spaces after it
	for _, c := range []struct {
		name  string
		label func(t *testing.T, dir, domain string)
		lines int // below the heading
	}{
		{"labelled", func(*testing.T, string, string) {}, 6},
		{"partly labelled", unlabel, 7},
		{"unlabelled", unlabelAll, 3},
	} {
		out := filepath.Join(t.TempDir(), "run")
		store, args := tinyTask(t, out, "2")
		c.label(t, store, "sketch")
		code, stdout, errOut := runCLI(t, args...)
		if code != 0 {
			t.Fatalf("%s: status %d, stderr %q", c.name, code, errOut)
		}
		lines := strings.Split(strings.TrimSuffix(stdout, "\n"), "\n")[1:]
		columns := map[int][]string{}
		for _, l := range lines {
			n := len(gap.FindString(l))
			columns[n] = append(columns[n], l)
		}
		if len(lines) != c.lines || len(columns) != 1 {
			t.Errorf("%s: %d lines, values starting in columns %v, want %d lines in one column:\n%s", c.name, len(lines), slices.Sorted(maps.Keys(columns)), c.lines, stdout)
		}
	}
}
