//go:build !unix

package safetensors

import (
	"errors"
	"os"
)

// mmapFile reports that mapping is unsupported; Open then reads the file.
func mmapFile(*os.File, int64) ([]byte, func() error, error) {
	return nil, nil, errors.New("mmap not supported on this platform")
}
