//go:build unix

package mmapfile

import (
	"os"

	"golang.org/x/sys/unix"
)

// mmap maps the first size bytes of fd read-only.
func mmap(fd *os.File, size int) ([]byte, func() error, error) {
	data, err := unix.Mmap(int(fd.Fd()), 0, size, unix.PROT_READ, unix.MAP_SHARED)
	if err != nil {
		return nil, nil, err
	}
	return data, func() error { return unix.Munmap(data) }, nil
}
