// Package shareddata locates the third-party test data that lives beside the
// repository in ../shared/data (reference CLIP outputs, the parity kit, real
// photographs), for tests: a test that needs a folder that is absent is
// skipped with a message saying which.
package shareddata

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
)

// Dir returns <repository>/../shared/data/<sub>, found by walking up from
// the working directory to go.mod, or skips the test when it is absent.
func Dir(t testing.TB, sub string) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			break
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Skip("shared test data: go.mod not found above the test directory")
		}
		dir = parent
	}
	path := filepath.Join(dir, "..", "shared", "data", sub)
	if _, err := os.Stat(path); err != nil {
		t.Skipf("shared test data %s not available: %v", path, err)
	}
	return path
}

// CheckpointFormats is clip_formats/manifest.json: the same small CLIP
// models saved in the formats users have, each beside an equivalent.
type CheckpointFormats struct {
	// Dir is the clip_formats folder, which the names below are relative to.
	Dir string `json:"-"`
	// Equivalent maps each checkpoint (a file or a Hugging Face folder) to
	// the safetensors file or folder holding the same weights.
	Equivalent map[string]string `json:"equivalent"`
	// Refuse lists the malicious pickles a reader must refuse.
	Refuse []string `json:"refuse"`
}

// ReadCheckpointFormats reads clip_formats/manifest.json, or skips the test
// when the folder is absent.
func ReadCheckpointFormats(t testing.TB) CheckpointFormats {
	t.Helper()
	m := CheckpointFormats{Dir: Dir(t, "clip_formats")}
	data, err := os.ReadFile(filepath.Join(m.Dir, "manifest.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(data, &m); err != nil {
		t.Fatalf("%s: %v", filepath.Join(m.Dir, "manifest.json"), err)
	}
	return m
}
