package interop

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
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
	format, data, err := readByFormat(path)
	if err != nil {
		return nil, nil, err
	}
	features, labels, err = parseFeatures(format, data)
	if err != nil {
		return nil, nil, fmt.Errorf("interop: %s: %w", path, err)
	}
	return features, labels, nil
}

func parseFeatures(format string, data []byte) (features, labels *Array, err error) {
	featuresName, labelsName := npzFeatures, npzLabels
	if format == ".pth" {
		featuresName, labelsName = pthFeatures, pthLabels
	}
	if format == ".npy" {
		if features, err = parseNPY(data); err != nil {
			return nil, nil, err
		}
	} else {
		src, err := openArrays(format, data)
		if err != nil {
			return nil, nil, err
		}
		if features, err = src.get(featuresName); err != nil {
			return nil, nil, err
		}
		if len(src.names) > 1 || !slices.Contains(src.names, featuresName) {
			if labels, err = src.get(labelsName); err != nil {
				return nil, nil, err
			}
		}
	}
	if !features.isFloatMatrix() {
		return nil, nil, fmt.Errorf("%s: want a 2-D float array [N, d], got %s %v", featuresName, features.DType, features.Shape)
	}
	if labels != nil && (labels.Int64 == nil || len(labels.Shape) != 1 || labels.Shape[0] != features.Shape[0]) {
		return nil, nil, fmt.Errorf("%s: want a 1-D integer array [%d] to match the features, got %s %v",
			labelsName, features.Shape[0], labels.DType, labels.Shape)
	}
	return features, labels, nil
}

// ReadMatrix reads one float matrix [K, d], such as the class text
// features, from a file chosen by its extension: a .npy file; the array
// "text_features" of a .npz archive or of a .pth/.pt file, or else its only
// array. A .pth file may hold a tensor saved alone or a dict (or list) of
// tensors.
func ReadMatrix(path string) (*Array, error) {
	format, data, err := readByFormat(path)
	if err != nil {
		return nil, err
	}
	m, err := parseMatrix(format, data)
	if err != nil {
		return nil, fmt.Errorf("interop: %s: %w", path, err)
	}
	return m, nil
}

func parseMatrix(format string, data []byte) (*Array, error) {
	var m *Array
	name := "the array"
	if format == ".npy" {
		var err error
		if m, err = parseNPY(data); err != nil {
			return nil, err
		}
	} else {
		src, err := openArrays(format, data)
		if err != nil {
			return nil, err
		}
		switch {
		case slices.Contains(src.names, textFeatures):
			name = textFeatures
		case len(src.names) == 1:
			name = src.names[0]
		default:
			return nil, fmt.Errorf("want an array named %q or a single array, found %d (%s)",
				textFeatures, len(src.names), someNames(src.names))
		}
		if m, err = src.get(name); err != nil {
			return nil, err
		}
		name = fmt.Sprintf("array %q", name)
	}
	if !m.isFloatMatrix() {
		return nil, fmt.Errorf("%s: want a 2-D float array [K, d], got %s %v", name, m.DType, m.Shape)
	}
	return m, nil
}

// readByFormat reads the file at path after checking that its extension is
// one the readers know; it returns the extension (".pt" as ".pth").
func readByFormat(path string) (string, []byte, error) {
	format := strings.ToLower(filepath.Ext(path))
	switch format {
	case ".npy", ".npz", ".pth":
	case ".pt":
		format = ".pth"
	default:
		return "", nil, fmt.Errorf("interop: %s: unknown file type %q (want .npy, .npz, .pth or .pt)", path, format)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return "", nil, fmt.Errorf("interop: %w", err)
	}
	return format, data, nil
}

// arraySource gives the arrays of a .npz or .pth file by name.
type arraySource struct {
	names []string
	get   func(name string) (*Array, error)
}

// openArrays opens a .npz archive, whose arrays are decoded on demand, or
// a .pth archive, whose tensors are all rebuilt at once.
func openArrays(format string, data []byte) (*arraySource, error) {
	if format == ".npz" {
		z, err := openNPZ(data)
		if err != nil {
			return nil, err
		}
		return &arraySource{names: z.names, get: z.array}, nil
	}
	arrays, err := parsePTH(data)
	if err != nil {
		return nil, err
	}
	names := make([]string, 0, len(arrays))
	for name := range arrays {
		names = append(names, name)
	}
	slices.Sort(names)
	get := func(name string) (*Array, error) {
		if a := arrays[name]; a != nil {
			return a, nil
		}
		return nil, missingArray(name, names)
	}
	return &arraySource{names: names, get: get}, nil
}
