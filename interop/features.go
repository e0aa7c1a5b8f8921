package interop

import (
	"fmt"
	"path/filepath"
	"slices"
	"strings"

	"github.com/unimos/unimos/internal/regularfile"
)

// Array names looked up in multi-array files: numpy.savez(path,
// features=..., labels=...), the reference UniMoS feature cache, and the
// name ReadMatrix prefers.
const (
	npzFeatures  = "features"
	npzLabels    = "labels"
	pthFeatures  = "fea"
	pthLabels    = "label"
	textFeatures = "text_features"
)

// ReadFeatures reads image features [N, d] and their labels [N] from a file
// written by another tool, chosen by the file's extension:
//
//   - .npy: a float array [N, d]; labels is nil.
//   - .npz: the float array "features" and the integer array "labels".
//   - .pth or .pt: the entries "fea" and "label" of a dict saved by
//     torch.save, as the reference UniMoS code caches features.
//
// A .npz or .pth file that holds the features alone gives nil labels (an
// unlabelled domain); one that holds other arrays but no labels is an
// error listing them, so that a misnamed labels array is not mistaken for
// their absence.
func ReadFeatures(path string) (features, labels *Array, err error) {
	format, err := formatOf(path)
	if err != nil {
		return nil, nil, err
	}
	if format == ".npy" {
		features, err = readNPYFile(path, featuresSpec(npzFeatures))
		return features, nil, err
	}
	data, err := readArchive(path)
	if err != nil {
		return nil, nil, err
	}
	features, labels, err = parseFeatures(format, data)
	if err != nil {
		return nil, nil, fmt.Errorf("interop: %s: %w", path, err)
	}
	return features, labels, nil
}

// featuresSpec and labelsSpec are what ReadFeatures wants: float features
// [N, d] and integer labels [N] for the same N.
func featuresSpec(name string) *arraySpec {
	return &arraySpec{name: name, want: "a 2-D float array [N, d]", float: true, shape: []int{anyDim, anyDim}}
}

func labelsSpec(name string, n int) *arraySpec {
	return &arraySpec{name: name, want: fmt.Sprintf("a 1-D integer array [%d] to match the features", n), shape: []int{n}}
}

// parseFeatures reads the features and labels of a .npz or .pth archive:
// both headers are checked, and both arrays' data verified, before either
// array is decoded.
func parseFeatures(format string, data []byte) (features, labels *Array, err error) {
	featuresName, labelsName := npzFeatures, npzLabels
	if format == ".pth" {
		featuresName, labelsName = pthFeatures, pthLabels
	}
	src, err := openArrays(format, data)
	if err != nil {
		return nil, nil, err
	}
	shape, readFeatures, err := src.open(featuresName, featuresSpec(featuresName))
	if err != nil {
		return nil, nil, err
	}
	readLabels := func() (*Array, error) { return nil, nil }
	if len(src.names) > 1 || !slices.Contains(src.names, featuresName) {
		if _, readLabels, err = src.open(labelsName, labelsSpec(labelsName, shape[0])); err != nil {
			return nil, nil, err
		}
	}
	if features, err = readFeatures(); err != nil {
		return nil, nil, err
	}
	if labels, err = readLabels(); err != nil {
		return nil, nil, err
	}
	return features, labels, nil
}

// ReadMatrix reads one float matrix [K, d], such as the class text
// features, from a file chosen by its extension: a .npy file; the array
// "text_features" of a .npz archive or of a .pth/.pt file, or else its only
// array. A .pth file may hold a tensor saved alone or a dict (or list) of
// tensors.
func ReadMatrix(path string) (*Array, error) {
	format, err := formatOf(path)
	if err != nil {
		return nil, err
	}
	if format == ".npy" {
		return readNPYFile(path, matrixSpec("the array"))
	}
	data, err := readArchive(path)
	if err != nil {
		return nil, err
	}
	m, err := parseMatrix(format, data)
	if err != nil {
		return nil, fmt.Errorf("interop: %s: %w", path, err)
	}
	return m, nil
}

// matrixSpec is what ReadMatrix wants.
func matrixSpec(name string) *arraySpec {
	return &arraySpec{name: name, want: "a 2-D float array [K, d]", float: true, shape: []int{anyDim, anyDim}}
}

// parseMatrix reads the matrix of a .npz or .pth archive; see ReadMatrix.
func parseMatrix(format string, data []byte) (*Array, error) {
	src, err := openArrays(format, data)
	if err != nil {
		return nil, err
	}
	var name string
	switch {
	case slices.Contains(src.names, textFeatures):
		name = textFeatures
	case len(src.names) == 1:
		name = src.names[0]
	default:
		return nil, fmt.Errorf("want an array named %q or a single array, found %d (%s)",
			textFeatures, len(src.names), someNames(src.names))
	}
	_, read, err := src.open(name, matrixSpec(fmt.Sprintf("array %q", name)))
	if err != nil {
		return nil, err
	}
	return read()
}

// formatOf checks that the extension of path is one the readers know and
// returns it (".pt" as ".pth").
func formatOf(path string) (string, error) {
	format := strings.ToLower(filepath.Ext(path))
	switch format {
	case ".npy", ".npz", ".pth":
	case ".pt":
		format = ".pth"
	default:
		return "", fmt.Errorf("interop: %s: unknown file type %q (want .npy, .npz, .pth or .pt)", path, format)
	}
	return format, nil
}

// maxArchiveBytes bounds a .npz or .pth file, which is read whole (its
// readers index it in memory).
const maxArchiveBytes = maxArrayBytes

// readArchive reads a .npz or .pth file whole, once it is known to be a
// regular file of a plausible size.
func readArchive(path string) ([]byte, error) {
	data, err := regularfile.ReadFile(path, "a "+filepath.Ext(path)+" file", maxArchiveBytes)
	if err != nil {
		return nil, fmt.Errorf("interop: %w", err)
	}
	return data, nil
}

// arraySource gives the arrays of a .npz or .pth file by name.
type arraySource struct {
	names []string
	// open checks the named array against spec and returns its shape and
	// a function that decodes it.
	open func(name string, spec *arraySpec) (shape []int, read func() (*Array, error), err error)
}

// openArrays opens a .npz or .pth archive, whose arrays are checked on
// open, from their .npy header or their tensor's storage type and shape,
// and decoded on demand.
func openArrays(format string, data []byte) (*arraySource, error) {
	if format == ".npz" {
		z, err := openNPZ(data)
		if err != nil {
			return nil, err
		}
		open := func(name string, spec *arraySpec) ([]int, func() (*Array, error), error) {
			m, err := z.open(name, spec)
			if err != nil {
				return nil, nil, err
			}
			return m.array.shape, m.read, nil
		}
		return &arraySource{names: z.names, open: open}, nil
	}
	f, err := openTorch(data)
	if err != nil {
		return nil, err
	}
	found, err := f.tensors(f.root)
	if err != nil {
		return nil, err
	}
	tensors := make(map[string]*tensorRef, len(found))
	names := make([]string, 0, len(found))
	for _, t := range found {
		tensors[t.name] = t.tensor
		names = append(names, t.name)
	}
	slices.Sort(names)
	m := newArrayMaker(f)
	open := func(name string, spec *arraySpec) ([]int, func() (*Array, error), error) {
		t := tensors[name]
		if t == nil {
			return nil, nil, missingArray(name, names)
		}
		if err := spec.check(t.storage.dt, t.shape); err != nil {
			return nil, nil, err
		}
		if err := f.verify(t.storage); err != nil {
			return nil, nil, fmt.Errorf("%s: %w", f.pickle, err)
		}
		read := func() (*Array, error) {
			a, err := m.array(t)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", f.pickle, err)
			}
			return a, nil
		}
		return t.shape, read, nil
	}
	return &arraySource{names: names, open: open}, nil
}
