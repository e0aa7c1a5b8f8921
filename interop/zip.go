package interop

import (
	"archive/zip"
	"bytes"
	"fmt"
	"io"
)

// maxInflation bounds how much larger than the archive its members may be
// in total; DEFLATE cannot exceed about 1032:1.
const maxInflation = 1100

// zipArchive is an in-memory zip archive (a .npz or a PyTorch archive).
// Its members are read under one shared budget, not each under its own:
// directory entries can point at the same compressed bytes (a zip bomb),
// so neither a member's claimed size nor the member count is trusted.
type zipArchive struct {
	files []*zip.File
	left  uint64 // bytes the members may still inflate to
}

func openZip(data []byte) (*zipArchive, error) {
	zr, err := zip.NewReader(bytes.NewReader(data), int64(len(data)))
	if err != nil {
		return nil, fmt.Errorf("not a zip archive, or a truncated one: %w", err)
	}
	return &zipArchive{files: zr.File, left: maxInflation * uint64(len(data))}, nil
}

// read returns the uncompressed content of a member, verifying its size and
// CRC-32.
func (z *zipArchive) read(f *zip.File) ([]byte, error) {
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
	buf := make([]byte, size)
	if _, err := io.ReadFull(rc, buf); err != nil {
		return nil, fmt.Errorf("member %s: %w", f.Name, err)
	}
	// Reading on to the end makes archive/zip check the CRC-32.
	if n, err := rc.Read(make([]byte, 1)); n != 0 || err != io.EOF {
		if err == nil || err == io.EOF {
			err = zip.ErrFormat
		}
		return nil, fmt.Errorf("member %s: %w", f.Name, err)
	}
	return buf, nil
}
