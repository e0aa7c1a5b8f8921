package interop

import (
	"archive/zip"
	"fmt"
	"io"
	"strings"
)

// npzFile is an opened .npz archive whose arrays are decoded on demand.
//
// A member is read in two passes. The first reads its .npy header, checks
// the array against what the caller wants and the member's size against
// the header, then inflates the rest of the member into nothing, which
// makes archive/zip check its length and CRC-32. Only then does the second
// pass allocate the array and convert the data as it inflates. A crafted
// member (a header announcing a gigabyte, a size or checksum that lies)
// thus costs time in proportion to what it inflates to, but no memory
// beyond the array the caller asked for; inflating twice is the price, and
// DEFLATE runs at hundreds of megabytes a second.
type npzFile struct {
	archive *zipArchive
	members map[string]*zip.File // by array name
	names   []string             // array names in archive order
	// left is what the members opened so far may still inflate to, in
	// total: directory entries can share compressed bytes (a zip bomb), so
	// a budget for the archive, not for each member, bounds the work.
	left uint64
}

// openNPZ indexes the members of a .npz archive: numpy.savez stores array
// "x" as member "x.npy".
func openNPZ(data []byte) (*npzFile, error) {
	archive, err := openZip(data)
	if err != nil {
		return nil, err
	}
	z := &npzFile{archive: archive, members: map[string]*zip.File{}, left: maxInflation * uint64(len(data))}
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

// npzMember is a member whose header has been checked and whose data has
// been verified, ready to decode.
type npzMember struct {
	file  *zip.File
	array *npyArray
}

// open checks the named array's header against spec (nil: any array) and
// verifies its member's data, without decoding it.
func (z *npzFile) open(name string, spec *arraySpec) (*npzMember, error) {
	f := z.members[name]
	if f == nil {
		return nil, missingArray(name, z.names)
	}
	size := f.UncompressedSize64
	if size > z.left {
		return nil, fmt.Errorf("member %s claims %d bytes, more than the archive can inflate to", f.Name, size)
	}
	z.left -= size
	rc, err := f.Open()
	if err != nil {
		return nil, fmt.Errorf("member %s: %w", f.Name, err)
	}
	defer rc.Close()
	h, err := readNPYHeader(rc, int64(size), spec)
	if err != nil {
		return nil, fmt.Errorf("member %s: %w", f.Name, err)
	}
	// io.Discard's ReadFrom reads through a small pooled buffer.
	if _, err := io.Copy(io.Discard, rc); err != nil {
		return nil, fmt.Errorf("member %s: %w", f.Name, err)
	}
	return &npzMember{file: f, array: h}, nil
}

// read decodes a member that open verified.
func (m *npzMember) read() (*Array, error) {
	rc, err := m.file.Open()
	if err != nil {
		return nil, fmt.Errorf("member %s: %w", m.file.Name, err)
	}
	defer rc.Close()
	if _, err := io.CopyN(io.Discard, rc, m.array.dataStart); err != nil {
		return nil, fmt.Errorf("member %s: %w", m.file.Name, err)
	}
	a, err := m.array.readData(rc)
	if err != nil {
		return nil, fmt.Errorf("member %s: %w", m.file.Name, err)
	}
	return a, nil
}

// all decodes every array, once every member has been verified.
func (z *npzFile) all() (map[string]*Array, error) {
	members := make([]*npzMember, len(z.names))
	for i, name := range z.names {
		m, err := z.open(name, nil)
		if err != nil {
			return nil, err
		}
		members[i] = m
	}
	arrays := make(map[string]*Array, len(z.names))
	for i, m := range members {
		a, err := m.read()
		if err != nil {
			return nil, err
		}
		arrays[z.names[i]] = a
	}
	return arrays, nil
}

// ReadNPZ reads every array of a NumPy .npz archive (numpy.savez or
// numpy.savez_compressed), keyed by array name: member "x.npy" is array "x".
func ReadNPZ(path string) (map[string]*Array, error) {
	data, err := readArchive(path)
	if err != nil {
		return nil, err
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
