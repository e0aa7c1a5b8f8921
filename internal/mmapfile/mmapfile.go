// Package mmapfile gives a file's bytes, memory-mapped read-only where the
// platform allows, so that readers of large weight files slice tensors out
// of the mapping instead of copying the file onto the heap.
package mmapfile

import (
	"fmt"

	"github.com/unimos/unimos/internal/regularfile"
)

// Open returns the contents of the regular file at path and a function that
// releases them; want names what the file should be, for the error when it
// is not a regular file (see regularfile.Open: a named pipe or a device is
// refused before it is opened). Where mapping works the bytes are the
// file's pages, read on demand and shared with the page cache; elsewhere
// they are read into memory. The bytes must not be modified, nor used after
// release, and the file must not be truncated in place while mapped
// (replace it by rename).
func Open(path, want string) (data []byte, release func() error, err error) {
	fd, st, err := regularfile.Open(path, want)
	if err != nil {
		return nil, nil, err
	}
	defer fd.Close()
	size := st.Size()
	if int64(int(size)) != size {
		return nil, nil, fmt.Errorf("%s: file of %d bytes too large to read", path, size)
	}
	if size > 0 {
		if data, release, err := mmap(fd, int(size)); err == nil {
			return data, release, nil
		}
	}
	data = make([]byte, size) // mapping failed or is unsupported: read instead
	if _, err := fd.ReadAt(data, 0); err != nil {
		return nil, nil, err
	}
	return data, func() error { return nil }, nil
}
