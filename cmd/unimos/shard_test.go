package main

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/unimos/unimos/internal/shareddata"
)

// clearSchedulerEnv unsets the variables --shard auto reads, so that a test
// run inside a Slurm or Kubernetes job sees none but its own.
func clearSchedulerEnv(t *testing.T) {
	t.Helper()
	for _, v := range []string{"SLURM_ARRAY_TASK_ID", "SLURM_ARRAY_TASK_MIN", "SLURM_ARRAY_TASK_MAX",
		"SLURM_ARRAY_TASK_COUNT", "SLURM_ARRAY_TASK_STEP", "JOB_COMPLETION_INDEX", "UNIMOS_SHARD_COUNT"} {
		t.Setenv(v, "")
	}
}

// TestExtractShardAuto extracts as the tasks of a Slurm array 0-2 would,
// then merges, and compares with an unsharded extraction byte for byte.
func TestExtractShardAuto(t *testing.T) {
	weights := filepath.Join(shareddata.Dir(t, "clip_reference"), "models", "vit_tiny.safetensors")
	clearSchedulerEnv(t)
	root, _ := officeSubset(t, 1)
	base := []string{"--weights", weights, "--images", root, "--batch", "4"}
	want := filepath.Join(t.TempDir(), "want")
	if err, _, stderr := callCommand(runExtract, append(base, "--out", want)...); err != nil {
		t.Fatalf("%v\n%s", err, stderr)
	}
	t.Setenv("SLURM_ARRAY_TASK_MIN", "0")
	t.Setenv("SLURM_ARRAY_TASK_MAX", "2")
	t.Setenv("SLURM_ARRAY_TASK_COUNT", "3")
	var shards []string
	for i := range 3 {
		t.Setenv("SLURM_ARRAY_TASK_ID", fmt.Sprint(i))
		dir := filepath.Join(t.TempDir(), fmt.Sprint("shard", i))
		err, stdout, stderr := callCommand(runExtract, append(base, "--out", dir, "--shard", "auto")...)
		if err != nil {
			t.Fatalf("%v\n%s", err, stderr)
		}
		if !strings.Contains(stdout, fmt.Sprintf("shard %d/3", i)) {
			t.Errorf("shard stdout %q", stdout)
		}
		shards = append(shards, dir)
	}
	got := filepath.Join(t.TempDir(), "got")
	if err, _, _ := callCommand(runMerge, append([]string{"--out", got}, shards...)...); err != nil {
		t.Fatal(err)
	}
	sameFiles(t, want, got)
}

// sameFiles requires every file under want to be in got with the same
// bytes, and no more files in got.
func sameFiles(t *testing.T, want, got string) {
	t.Helper()
	count := func(root string) int {
		n := 0
		filepath.WalkDir(root, func(path string, d os.DirEntry, err error) error {
			if err == nil && !d.IsDir() {
				n++
			}
			return err
		})
		return n
	}
	filepath.WalkDir(want, func(path string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(want, path)
		a, _ := os.ReadFile(path)
		b, errB := os.ReadFile(filepath.Join(got, rel))
		if errB != nil || !bytes.Equal(a, b) {
			t.Errorf("%s differs (%v)", rel, errB)
		}
		return nil
	})
	if a, b := count(want), count(got); a != b {
		t.Errorf("%s has %d files, %s %d", want, a, got, b)
	}
}

// TestBenchShardAuto runs a bench as the 2 pods of a Kubernetes Indexed Job
// would, into one folder, then the report, and compares it with an
// unsharded bench's.
func TestBenchShardAuto(t *testing.T) {
	clearSchedulerEnv(t)
	store := officeHomeStore(t)
	args := []string{"--features", store, "--protocol", "office-home", "--tasks", "A->C,C->A", "--epochs", "1", "--seeds", "1"}
	whole := filepath.Join(t.TempDir(), "whole")
	if err, _, stderr := callCommand(runBench, append(args, "--out", whole)...); err != nil {
		t.Fatalf("%v\n%s", err, stderr)
	}
	shared := filepath.Join(t.TempDir(), "shared")
	t.Setenv("UNIMOS_SHARD_COUNT", "2")
	for i := range 2 {
		t.Setenv("JOB_COMPLETION_INDEX", fmt.Sprint(i))
		err, stdout, stderr := callCommand(runBench, append(args, "--out", shared, "--shard", "auto")...)
		if err != nil {
			t.Fatalf("%v\n%s", err, stderr)
		}
		if want := fmt.Sprintf("shard %d/2: 3 runs of %s", i, shared); !strings.Contains(stdout, want) {
			t.Errorf("stdout %q, want %q", stdout, want)
		}
	}
	if _, err := os.Stat(filepath.Join(shared, "report.md")); err == nil {
		t.Error("a shard wrote a report")
	}
	// The report goes into a folder of its own, from the shared one.
	report := filepath.Join(t.TempDir(), "report")
	if err, stdout, _ := callCommand(runBench, "--report-only", "--out", report, shared); err != nil || !strings.Contains(stdout, "report: ") {
		t.Fatalf("report-only: %v, %q", err, stdout)
	}
	want, _ := os.ReadFile(filepath.Join(whole, "report.md"))
	got, _ := os.ReadFile(filepath.Join(report, "report.md"))
	if len(want) == 0 || !bytes.Equal(got, want) {
		t.Errorf("report of the shards:\n%s\nwant:\n%s", got, want)
	}
}

// TestBenchShardUsageErrors checks the usage messages from their start,
// which names the flag at fault once ("unimos bench: " comes before).
func TestBenchShardUsageErrors(t *testing.T) {
	clearSchedulerEnv(t)
	base := []string{"--features", "f", "--protocol", "pairs", "--out", "o"}
	for _, c := range []struct {
		args []string
		want string // the message's start
	}{
		{append(base, "--shard", "auto"), "--shard auto: no scheduler shard in the environment"},
		{append(base, "--shard", "3/3"), "--shard: shard 3/3: want 0 <= i < n"},
		{append(base, "--shard", "0/2", "--shard-count", "2"), "--shard-count goes with --shard auto"},
		{append(base, "other"), `unexpected argument "other" (more bench folders go with --report-only`},
		{[]string{"--report-only", "--out", "o", "--shard", "0/2"}, "--report-only reports every shard; drop --shard"},
	} {
		err, _, _ := callCommand(runBench, c.args...)
		var usage usageError
		if !errors.As(err, &usage) || !strings.HasPrefix(err.Error(), c.want) {
			t.Errorf("bench %q: err = %v, want a usage error starting %q", c.args, err, c.want)
		}
	}
	t.Setenv("JOB_COMPLETION_INDEX", "0")
	err, _, _ := callCommand(runBench, append(base, "--shard", "auto")...)
	if err == nil || !strings.HasPrefix(err.Error(), "--shard auto: JOB_COMPLETION_INDEX=0 is set") ||
		!strings.Contains(err.Error(), "give --shard-count N or set UNIMOS_SHARD_COUNT") {
		t.Errorf("Kubernetes pod without a count: %v", err)
	}
}
