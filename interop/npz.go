package interop

import (
	"archive/zip"
	"fmt"
	"os"
	"strings"
)

// npzFile is an opened .npz archive whose arrays are decoded on demand.
type npzFile struct {
	archive *zipArchive
	members map[string]*zip.File // by array name
	names   []string             // array names in archive order
}

// openNPZ indexes the members of a .npz archive: numpy.savez stores array
// "x" as member "x.npy".
func openNPZ(data []byte) (*npzFile, error) {
	archive, err := openZip(data)
	if err != nil {
		return nil, err
	}
	z := &npzFile{archive: archive, members: map[string]*zip.File{}}
	for _, f := range archive.files {
		if strings.HasSuffix(f.Name, "/") {
			continue // a directory entry
		}
		name := strings.TrimSuffix(f.Name, ".npy")
		if z.members[name] != nil {
			return nil, fmt.Errorf("array %q appears twice in the archive", name)
		}
		z.members[name] = f
		z.names = append(z.names, name)
	}
	return z, nil
}

// array decodes the named array.
func (z *npzFile) array(name string) (*Array, error) {
	f := z.members[name]
	if f == nil {
		return nil, missingArray(name, z.names)
	}
	data, err := z.archive.read(f)
	if err != nil {
		return nil, err
	}
	a, err := parseNPY(data)
	if err != nil {
		return nil, fmt.Errorf("member %s: %w", f.Name, err)
	}
	return a, nil
}

// all decodes every array.
func (z *npzFile) all() (map[string]*Array, error) {
	arrays := make(map[string]*Array, len(z.names))
	for _, name := range z.names {
		a, err := z.array(name)
		if err != nil {
			return nil, err
		}
		arrays[name] = a
	}
	return arrays, nil
}

// ReadNPZ reads every array of a NumPy .npz archive (numpy.savez or
// numpy.savez_compressed), keyed by array name: member "x.npy" is array "x".
func ReadNPZ(path string) (map[string]*Array, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("interop: %w", err)
	}
	arrays, err := parseNPZ(data)
	if err != nil {
		return nil, fmt.Errorf("interop: %s: %w", path, err)
	}
	return arrays, nil
}

// ParseNPZ decodes the bytes of a NumPy .npz archive; see ReadNPZ.
func ParseNPZ(data []byte) (map[string]*Array, error) {
	arrays, err := parseNPZ(data)
	if err != nil {
		return nil, fmt.Errorf("interop: %w", err)
	}
	return arrays, nil
}

func parseNPZ(data []byte) (map[string]*Array, error) {
	z, err := openNPZ(data)
	if err != nil {
		return nil, err
	}
	return z.all()
}
