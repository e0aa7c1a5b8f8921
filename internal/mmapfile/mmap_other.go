//go:build !unix

package mmapfile

import (
	"errors"
	"os"
)

// mmap reports that mapping is unsupported; Open then reads the file.
func mmap(*os.File, int) ([]byte, func() error, error) {
	return nil, nil, errors.New("mmap not supported on this platform")
}
