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

// TestExtractShardsThenMerge runs the two shards and merge through the CLI
// and compares the result with an unsharded run, file by file.
func TestExtractShardsThenMerge(t *testing.T) {
	weights := filepath.Join(shareddata.Dir(t, "clip_reference"), "models", "vit_tiny.safetensors")
	root, _ := officeSubset(t, 2)
	base := []string{"--weights", weights, "--images", root, "--batch", "6"}
	want := filepath.Join(t.TempDir(), "want")
	if err, _, stderr := callCommand(runExtract, append(base, "--out", want)...); err != nil {
		t.Fatalf("%v\n%s", err, stderr)
	}
	var shards []string
	for i := range 2 {
		dir := filepath.Join(t.TempDir(), fmt.Sprint("shard", i))
		err, stdout, stderr := callCommand(runExtract, append(base, "--out", dir, "--shard", fmt.Sprintf("%d/2", i))...)
		if err != nil {
			t.Fatalf("%v\n%s", err, stderr)
		}
		if !strings.Contains(stdout, fmt.Sprintf("shard %d/2", i)) {
			t.Errorf("shard stdout %q", stdout)
		}
		shards = append(shards, dir)
	}
	got := filepath.Join(t.TempDir(), "got")
	err, stdout, _ := callCommand(runMerge, append([]string{"--out", got}, shards...)...)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(stdout, "merged from 2 shards") {
		t.Errorf("merge stdout %q", stdout)
	}
	for _, f := range []string{"dataset.json", "amazon.safetensors", "amazon.paths.txt", "Web_Cam.safetensors", "text/Web_Cam.safetensors"} {
		a, errA := os.ReadFile(filepath.Join(want, f))
		b, errB := os.ReadFile(filepath.Join(got, f))
		if errA != nil || errB != nil || !bytes.Equal(a, b) {
			t.Errorf("%s differs between the merged and the unsharded store (%v, %v)", f, errA, errB)
		}
	}
	if err, _, _ := callCommand(runMerge, "--out", t.TempDir(), shards[0]); err == nil || !strings.Contains(err.Error(), "missing 1 shard of 2: 1/2") {
		t.Errorf("merge of one shard: %v", err)
	}
}

func TestMergeUsageErrors(t *testing.T) {
	for _, c := range []struct {
		args []string
		want string
	}{
		{nil, "--out is required"},
		{[]string{"--out", "o"}, "no shard folders given"},
		{[]string{"--bogus"}, "unknown flag --bogus"},
	} {
		err, _, _ := callCommand(runMerge, c.args...)
		var usage usageError
		if !errors.As(err, &usage) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("merge %q: err = %v, want a usage error mentioning %q", c.args, err, c.want)
		}
	}
	err, _, _ := callCommand(runMerge, "--out", t.TempDir(), t.TempDir())
	var usage usageError
	if err == nil || errors.As(err, &usage) || !strings.Contains(err.Error(), "not a finished shard") {
		t.Errorf("merge of a non-shard: err = %v, want a runtime error", err)
	}
}
