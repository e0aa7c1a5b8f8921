package unimos

import (
	"os"
	"path/filepath"
)

// ModelPath is the model file that a command's --model PATH names: the
// ModelFile inside PATH when PATH is a run directory, PATH itself
// otherwise.
func ModelPath(path string) string {
	if info, err := os.Stat(path); err == nil && info.IsDir() {
		return filepath.Join(path, ModelFile)
	}
	return path
}
