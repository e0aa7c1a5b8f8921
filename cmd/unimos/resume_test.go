package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/unimos/unimos/unimos"
)

// TestMain lets a test re-run this binary as the unimos command: with
// UNIMOS_TEST_MAIN set, the process runs main on its arguments after "--".
func TestMain(m *testing.M) {
	if os.Getenv("UNIMOS_TEST_MAIN") != "" {
		args := os.Args
		for i, a := range args {
			if a == "--" {
				args = args[i+1:]
				break
			}
		}
		os.Exit(run(args, &context{stdout: os.Stdout, stderr: os.Stderr}))
	}
	os.Exit(m.Run())
}

// TestInterruptAndResume stops `unimos adapt` with SIGINT during training,
// resumes it with --resume, and requires the result of a run that was never
// interrupted.
func TestInterruptAndResume(t *testing.T) {
	dir := t.TempDir()
	store := filepath.Join(dir, "tiny")
	if code, _, errOut := runCLI(t, "synth", "--preset", "tiny", "--out", store); code != 0 {
		t.Fatalf("synth: %q", errOut)
	}
	task := []string{"adapt", "--features", store, "--source", "photo", "--target", "sketch", "--epochs", "60", "--seed", "4"}
	whole := filepath.Join(dir, "whole")
	if code, _, errOut := runCLI(t, append(task, "--out", whole, "--quiet")...); code != 0 {
		t.Fatalf("uninterrupted run: %q", errOut)
	}

	stopped := filepath.Join(dir, "stopped")
	cmd := exec.Command(os.Args[0], append([]string{"-test.run=^$", "--"}, append(task, "--out", stopped)...)...)
	cmd.Env = append(os.Environ(), "UNIMOS_TEST_MAIN=1")
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var lines []string
	scanner := bufio.NewScanner(stderr)
	for scanner.Scan() {
		lines = append(lines, scanner.Text())
		if strings.HasPrefix(scanner.Text(), "epoch 3/60") {
			cmd.Process.Signal(syscall.SIGINT)
		}
	}
	err = cmd.Wait()
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.ExitCode() != 1 {
		t.Fatalf("interrupted run: %v, want exit status 1; stderr:\n%s", err, strings.Join(lines, "\n"))
	}
	if last := lines[len(lines)-1]; !strings.Contains(last, "unimos adapt --resume "+stopped) {
		t.Errorf("last message %q does not say how to resume", last)
	}
	if _, err := os.Stat(filepath.Join(stopped, unimos.ResultFile)); err == nil {
		t.Error("an interrupted run wrote result.json")
	}

	if code, _, errOut := runCLI(t, "adapt", "--resume", stopped, "--quiet"); code != 0 {
		t.Fatalf("resume: %q", errOut)
	}
	want, got := readResult(t, whole), readResult(t, stopped)
	if got.Final.Accuracy != want.Final.Accuracy || len(got.History) != len(want.History) {
		t.Fatalf("resumed run: final %v with %d evaluations, uninterrupted %v with %d", got.Final.Accuracy, len(got.History), want.Final.Accuracy, len(want.History))
	}
	for i := range want.History {
		if got.History[i].Loss != want.History[i].Loss || *got.History[i].Accuracy != *want.History[i].Accuracy {
			t.Errorf("epoch %d differs: %+v vs %+v", want.History[i].Epoch, got.History[i], want.History[i])
		}
	}
	if _, err := os.Stat(filepath.Join(stopped, unimos.CheckpointFile)); err == nil {
		t.Error("the checkpoint is still there after the run completed")
	}
}

func readResult(t *testing.T, dir string) *unimos.Result {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(dir, unimos.ResultFile))
	if err != nil {
		t.Fatal(err)
	}
	var r unimos.Result
	if err := json.Unmarshal(raw, &r); err != nil {
		t.Fatal(err)
	}
	return &r
}
