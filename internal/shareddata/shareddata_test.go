package shareddata

import (
	"os"
	"path/filepath"
	"testing"
)

func TestDirFindsSharedDataOrSkips(t *testing.T) {
	dir := Dir(t, "parity_kit") // skips when ../shared/data is absent
	if _, err := os.Stat(filepath.Join(dir, "dataset.json")); err != nil {
		t.Errorf("Dir returned %s, which has no dataset.json: %v", dir, err)
	}
}

func TestDirSkipsMissingFolder(t *testing.T) {
	skipped := false
	t.Run("missing", func(t *testing.T) {
		defer func() { skipped = t.Skipped() }()
		Dir(t, "no-such-folder")
	})
	if !skipped {
		t.Error("a missing folder did not skip the test")
	}
}
