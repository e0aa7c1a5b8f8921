package main

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/unimos/unimos/features"
	"github.com/unimos/unimos/synth"
	"github.com/unimos/unimos/unimos"
)

// officeHomeStore writes a small Office-Home-shaped synthetic store.
func officeHomeStore(t *testing.T) string {
	t.Helper()
	p, err := synth.PresetByName("office-home")
	if err != nil {
		t.Fatal(err)
	}
	p.Dim = 80
	if p, err = p.Scaled(0.03); err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(t.TempDir(), "office-home")
	if err := synth.Write(dir, p, 1); err != nil {
		t.Fatal(err)
	}
	return dir
}

func TestBenchCommand(t *testing.T) {
	store := officeHomeStore(t)
	out := filepath.Join(t.TempDir(), "bench")
	args := []string{"--features", store, "--protocol", "office-home", "--tasks", "A->C,C->A", "--epochs", "1",
		"--seeds", "1,2", "--select", "infomax", "--out", out}
	err, stdout, stderr := callCommand(runBench, args...)
	if err != nil {
		t.Fatalf("bench: %v\n%s", err, stderr)
	}
	if !strings.Contains(stdout, "report: "+filepath.Join(out, "report.md")) || !strings.Contains(stderr, "[10/10] unimos C->A seed 2: accuracy") {
		t.Errorf("stdout %q\nstderr %q", stdout, stderr)
	}
	for _, f := range []string{"report.md", "results.csv", "results.json", "plots/office-home-tasks.png"} {
		if _, err := os.Stat(filepath.Join(out, f)); err != nil {
			t.Error(err)
		}
	}
	report, _ := os.ReadFile(filepath.Join(out, "report.md"))
	if !strings.Contains(string(report), "UniMoS, epoch picked by infomax (label-free)") {
		t.Errorf("report lacks the --select row")
	}
	// A rerun makes nothing.
	err, _, stderr = callCommand(runBench, args...)
	if err != nil || strings.Count(stderr, "finished earlier") != 10 {
		t.Errorf("rerun: %v\n%s", err, stderr)
	}
	// --report-only needs neither the store nor the protocol.
	if err, stdout, _ := callCommand(runBench, "--out", out, "--report-only"); err != nil || !strings.Contains(stdout, "report:") {
		t.Errorf("--report-only: %v", err)
	}
}

// TestBenchCommandFailure: a run that fails makes the command fail at the
// end, after the other runs and the report.
func TestBenchCommandFailure(t *testing.T) {
	dir := officeHomeStore(t)
	store, err := features.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	clipart, err := store.Domain("Clipart")
	if err != nil {
		t.Fatal(err)
	}
	clipart.Labels[3] = -1
	if err := features.WriteDomain(dir, clipart); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(t.TempDir(), "bench")
	err, stdout, stderr := callCommand(runBench, "--features", dir, "--protocol", "office-home", "--tasks", "C->A,A->C",
		"--methods", "unimos", "--epochs", "1", "--out", out)
	var usage usageError
	if err == nil || errors.As(err, &usage) || !strings.Contains(err.Error(), "1 of 2 runs failed") {
		t.Errorf("error %v", err)
	}
	if !strings.Contains(stderr, "[1/2] unimos C->A seed 2023: FAILED") || !strings.Contains(stderr, "[2/2] unimos A->C seed 2023: accuracy") ||
		!strings.Contains(stdout, "report:") {
		t.Errorf("stdout %q\nstderr %q", stdout, stderr)
	}
}

func TestBenchUsageErrors(t *testing.T) {
	cases := [][]string{
		{"--features", "x", "--protocol", "office-home"},            // --out missing
		{"--features", "x", "--out", "o"},                           // --protocol missing
		{"--features", "x", "--protocol", "office31", "--out", "o"}, // unknown protocol
		{"--features", "x", "--protocol", "visda", "--out", "o", "--seeds", "a"},
		{"--features", "x", "--protocol", "visda", "--out", "o", "--methods", "dann"},
		{"--features", "x", "--protocol", "visda", "--out", "o", "--tasks", "real->synthetic"},
		{"--features", "x", "--protocol", "visda", "--out", "o", "--select", "accuracy"},
		{"--features", "x", "--protocol", "visda", "--out", "o", "--epochs", "-1"},
	}
	for _, args := range cases {
		err, _, _ := callCommand(runBench, args...)
		var usage usageError
		if !errors.As(err, &usage) {
			t.Errorf("%q: error %v, want a usage error", args, err)
		}
	}
}

// TestBenchInterruptAndContinue stops `unimos bench` with SIGINT during a
// UniMoS run and reruns it: the run continues from its checkpoint to its
// last epoch. (That the continued run equals an uninterrupted one, bit for
// bit, is bench.TestStopAndContinue.)
func TestBenchInterruptAndContinue(t *testing.T) {
	store := officeHomeStore(t)
	out := filepath.Join(t.TempDir(), "bench")
	const epochs = 200 // the signal comes after the first epoch, seconds before the last
	args := []string{"--features", store, "--protocol", "office-home", "--tasks", "A->C", "--methods", "unimos",
		"--epochs", strconv.Itoa(epochs), "--checkpoint-every", "1", "--out", out}
	cmd := exec.Command(os.Args[0], append([]string{"-test.run=^$", "--", "bench"}, args...)...)
	cmd.Env = append(os.Environ(), "UNIMOS_TEST_MAIN=1")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	run := filepath.Join(out, "runs", "office-home", "unimos", "Art_to_Clipart", "seed-2023")
	for deadline := time.Now().Add(time.Minute); ; time.Sleep(10 * time.Millisecond) {
		if _, err := os.Stat(filepath.Join(run+".partial", unimos.CheckpointFile)); err == nil {
			break
		}
		if time.Now().After(deadline) {
			cmd.Process.Kill()
			t.Fatalf("no checkpoint after a minute; stderr:\n%s", stderr.String())
		}
	}
	cmd.Process.Signal(syscall.SIGINT)
	err := cmd.Wait()
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.ExitCode() != 1 {
		t.Fatalf("interrupted bench: %v, want exit status 1; stderr:\n%s", err, stderr.String())
	}
	for _, want := range []string{"stopped, saved in " + run + ".partial", "bench stopped: 0 of 1 runs finished; run the same command again to continue"} {
		if !strings.Contains(stderr.String(), want) {
			t.Errorf("stderr lacks %q:\n%s", want, stderr.String())
		}
	}

	err, _, errOut := callCommand(runBench, args...)
	if err != nil || !strings.Contains(errOut, "continued from a stopped bench") {
		t.Fatalf("continued bench: %v\n%s", err, errOut)
	}
	if r := readResult(t, run); len(r.History) != epochs+1 {
		t.Errorf("continued run has %d evaluations, want %d", len(r.History), epochs+1)
	}
}
