// Package shareddata locates the third-party test data that lives beside the
// repository in ../shared/data (reference CLIP outputs, the parity kit, real
// photographs), for tests: a test that needs a folder that is absent is
// skipped with a message saying which.
package shareddata

import (
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
