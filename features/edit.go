package features

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"

	"github.com/unimos/unimos/tensor"
)

// PutDomain writes domain d into the store s, adding it or replacing the
// domain of the same name, with its [K, Dim] text features when text is
// non-nil (a replaced domain otherwise keeps its text file), and then lists
// it in s.Dir/dataset.json. dataset.json is written last, so that a crash or
// a failed write never leaves the store listing a domain whose files are
// missing; every file is replaced atomically. The domain's paths file goes
// first and is written again only from d.Paths, so that the paths of
// replaced features never name the rows of new ones, even after a crash.
//
// s.Meta gives the dim and classes the data must fit. For a store not yet on
// disk, pass &Store{Dir: dir, Meta: meta} with meta.Domains empty: PutDomain
// creates dir and dataset.json. On success s.Meta lists d.Name. PutDomain
// reports whether d replaced a domain of the same name.
func (s *Store) PutDomain(d *Domain, text *tensor.Matrix) (replaced bool, err error) {
	if d == nil || d.Features == nil {
		return false, fmt.Errorf("features: PutDomain: no domain features")
	}
	meta := s.Meta
	replaced = slices.Contains(meta.Domains, d.Name)
	if !replaced {
		meta.Domains = append(slices.Clip(meta.Domains), d.Name)
	}
	datasetPath := filepath.Join(s.Dir, DatasetFile)
	if err := meta.Validate(); err != nil {
		return false, fmt.Errorf("features: put domain %q into %s: %w", d.Name, datasetPath, err)
	}
	fail := func(format string, args ...any) error {
		return fmt.Errorf("features: put domain %q into %s: %s", d.Name, s.Dir, fmt.Sprintf(format, args...))
	}
	k := len(meta.Classes)
	if d.Features.Cols != meta.Dim {
		return false, fail("features have dim %d but %s says %d", d.Features.Cols, DatasetFile, meta.Dim)
	}
	for i, l := range d.Labels {
		if l < -1 || l >= k {
			return false, fail("label of row %d is %d, outside [-1, %d) for the %d classes of %s", i, l, k, k, DatasetFile)
		}
	}
	if text != nil && (text.Rows != k || text.Cols != meta.Dim) {
		return false, fail("text features are [%d, %d]; want [%d, %d] (classes, dim) as in %s",
			text.Rows, text.Cols, k, meta.Dim, DatasetFile)
	}
	if err := os.Remove(pathsFile(s.Dir, d.Name)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return false, fmt.Errorf("features: remove the paths file of the replaced domain: %w", err)
	}
	if err := WriteDomain(s.Dir, d); err != nil {
		return false, err
	}
	if text != nil {
		if err := WriteText(s.Dir, d.Name, text); err != nil {
			return false, err
		}
	}
	if err := WriteDataset(s.Dir, meta); err != nil {
		return false, err
	}
	s.Meta = meta
	return replaced, nil
}

// ReadPaths reads a file of image paths, one per feature row, in the form of
// a domain's <Domain>.paths.txt: exactly rows lines, none of them empty.
func ReadPaths(path string, rows int) ([]string, error) {
	paths, err := readPaths(path, rows)
	if err == nil && paths == nil { // readPaths takes a missing file for "no paths"
		return nil, fmt.Errorf("features: %w", &fs.PathError{Op: "open", Path: path, Err: fs.ErrNotExist})
	}
	return paths, err
}
