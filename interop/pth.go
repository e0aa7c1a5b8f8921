package interop

import (
	"fmt"
)

// ReadPTH reads the tensors of a file written by torch.save, in the zip
// layout of PyTorch 1.6 on or the legacy one before it, such as the feature
// caches of the reference UniMoS code, {'fea': HalfTensor [N, d], 'label':
// LongTensor [N]}. Tensors are named as ParsePickle describes.
func ReadPTH(path string) (map[string]*Array, error) {
	data, err := readArchive(path)
	if err != nil {
		return nil, err
	}
	arrays, err := parsePTH(data)
	if err != nil {
		return nil, fmt.Errorf("interop: %s: %w", path, err)
	}
	return arrays, nil
}

// ParsePTH decodes the bytes of a file written by torch.save; see ReadPTH.
func ParsePTH(data []byte) (map[string]*Array, error) {
	arrays, err := parsePTH(data)
	if err != nil {
		return nil, fmt.Errorf("interop: %w", err)
	}
	return arrays, nil
}

func parsePTH(data []byte) (map[string]*Array, error) {
	f, err := openTorch(data)
	if err != nil {
		return nil, err
	}
	found, err := f.tensors(f.root)
	if err != nil {
		return nil, err
	}
	arrays, err := toArrays(f, found)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", f.pickle, err)
	}
	return arrays, nil
}
