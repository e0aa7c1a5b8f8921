package interop

import (
	"archive/zip"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path"
	"strings"
)

// ReadPTH reads the tensors of a PyTorch archive written by torch.save
// (PyTorch 1.6 or later), such as the feature caches of the reference
// UniMoS code, {'fea': HalfTensor [N, d], 'label': LongTensor [N]}. Tensors
// are named as ParsePickle describes.
func ReadPTH(path string) (map[string]*Array, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("interop: %w", err)
	}
	arrays, err := parsePTH(data)
	if err != nil {
		return nil, fmt.Errorf("interop: %s: %w", path, err)
	}
	return arrays, nil
}

// ParsePTH decodes the bytes of a PyTorch archive; see ReadPTH.
func ParsePTH(data []byte) (map[string]*Array, error) {
	arrays, err := parsePTH(data)
	if err != nil {
		return nil, fmt.Errorf("interop: %w", err)
	}
	return arrays, nil
}

// parsePTH reads the archive layout torch.save writes: every record under
// one folder, <prefix>/data.pkl holding the pickle, <prefix>/data/<key>
// each storage and, from PyTorch 1.10 on, <prefix>/byteorder.
func parsePTH(data []byte) (map[string]*Array, error) {
	if len(data) > 0 && data[0] == opProto {
		return nil, errors.New("legacy torch.save format (PyTorch before 1.6, or _use_new_zipfile_serialization=False) " +
			"is not supported; load and save the file again with a recent PyTorch")
	}
	archive, err := openZip(data)
	if err != nil {
		return nil, err
	}
	records := map[string]*zip.File{}
	var pickles []string
	for _, f := range archive.files {
		records[f.Name] = f
		if dir, file := path.Split(f.Name); file == "data.pkl" && strings.Count(dir, "/") == 1 {
			pickles = append(pickles, f.Name)
		}
	}
	if len(pickles) != 1 {
		return nil, fmt.Errorf("not a PyTorch archive: want one <folder>/data.pkl record, found %d", len(pickles))
	}
	prefix := strings.TrimSuffix(pickles[0], "data.pkl")
	record := func(name string) ([]byte, error) {
		f := records[prefix+name]
		if f == nil {
			return nil, fmt.Errorf("no record %s%s in the archive", prefix, name)
		}
		return archive.read(f)
	}
	order := binary.ByteOrder(binary.LittleEndian)
	if records[prefix+"byteorder"] != nil {
		b, err := record("byteorder")
		if err != nil {
			return nil, err
		}
		switch s := strings.TrimSpace(string(b)); s {
		case "little":
		case "big":
			order = binary.BigEndian
		default:
			return nil, fmt.Errorf("record %sbyteorder holds %q, want little or big", prefix, s)
		}
	}
	pkl, err := record("data.pkl")
	if err != nil {
		return nil, err
	}
	arrays, err := parsePickle(pkl, func(key string) ([]byte, error) { return record("data/" + key) }, order)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", pickles[0], err)
	}
	return arrays, nil
}
