package features

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/unimos/unimos/internal/imagefile"
)

// notStoreError is Open's error for a dir that is not a feature store: its
// message says what dir is and which command makes a store of it, and it
// unwraps to the error of reading dataset.json, so that errors.Is(err,
// fs.ErrNotExist) still tells a writer it may start a new store in dir.
type notStoreError struct {
	msg string
	err error
}

func (e *notStoreError) Error() string { return e.msg }
func (e *notStoreError) Unwrap() error { return e.err }

// notStore explains why dir has no readable dataset.json (readErr): dir is
// a file, or a folder without dataset.json, perhaps one of images. Other
// failures (dir missing, dataset.json unreadable) keep readErr's wording.
func notStore(dir string, readErr error) error {
	st, err := os.Stat(dir)
	switch {
	case err != nil:
		return fmt.Errorf("features: %w", readErr)
	case !st.IsDir():
		return &notStoreError{fmt.Sprintf("features: %s is a file, not a feature store (a folder with %s); "+
			"to add features from a .npy, .npz or .pth file to a store, run: unimos import --from %s --domain NAME --out STORE",
			dir, DatasetFile, shellQuote(dir)), readErr}
	case !errors.Is(readErr, fs.ErrNotExist):
		return fmt.Errorf("features: %w", readErr)
	}
	msg := fmt.Sprintf("features: %s is not a feature store (no %s)", dir, DatasetFile)
	switch depth := imageDepth(dir); {
	case depth >= 2:
		msg += fmt.Sprintf("; it holds folders of images: to encode them with CLIP into a store, run: "+
			"unimos extract --images %s --weights WEIGHTS --out STORE", shellQuote(dir))
	case depth == 1:
		// dir looks like one domain of ROOT/<Domain>/<Class>/<image>, and
		// extract takes the ROOT.
		abs, err := filepath.Abs(dir)
		if err != nil {
			abs = dir
		}
		msg += fmt.Sprintf("; it holds folders of images, as one domain of an image folder does: to encode them with CLIP into a store, run: "+
			"unimos extract --images %s --domains %s --weights WEIGHTS --out STORE",
			shellQuote(filepath.Dir(abs)), shellQuote(filepath.Base(abs)))
	case depth == 0:
		msg += "; it holds images: to encode images with CLIP into a store, put them in ROOT/<Domain>/<Class>/ folders " +
			"and run: unimos extract --images ROOT --weights WEIGHTS --out STORE"
	}
	return &notStoreError{msg, readErr}
}

// maxImageScan bounds the folders imageDepth reads, so that the hint of an
// error never costs a walk of a large tree.
const maxImageScan = 100

// imageDepth returns how far below dir the shallowest image file lies, as
// far as ROOT/<Domain>/<Class>/<image> goes (0: dir holds images, 2: dir is
// such a ROOT), or -1 when there is none. Names starting with "." are
// skipped, as extract skips them.
func imageDepth(dir string) int {
	level, scanned := []string{dir}, 0
	for depth := 0; depth <= 2; depth++ {
		var next []string
		for _, d := range level {
			if scanned == maxImageScan {
				return -1
			}
			scanned++
			entries, err := os.ReadDir(d)
			if err != nil {
				continue
			}
			for _, e := range entries {
				if strings.HasPrefix(e.Name(), ".") {
					continue
				}
				path := filepath.Join(d, e.Name())
				if isDir(e, path) {
					next = append(next, path)
				} else if imagefile.Is(e.Name()) {
					return depth
				}
			}
		}
		level = next
	}
	return -1
}

// isDir reports whether the entry at path is a folder, following a symbolic
// link (datasets are often assembled from links).
func isDir(e fs.DirEntry, path string) bool {
	if e.Type()&fs.ModeSymlink == 0 {
		return e.IsDir()
	}
	st, err := os.Stat(path)
	return err == nil && st.IsDir()
}

// shellQuote returns s as one shell word: unchanged when it holds only
// characters the shell takes literally, else in single quotes.
func shellQuote(s string) string {
	if s != "" && strings.Trim(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-./+,:@%=") == "" {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}
