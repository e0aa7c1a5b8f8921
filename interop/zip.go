package interop

import (
	"archive/zip"
	"bytes"
	"fmt"
	"hash/crc32"
	"io"
)

// maxInflation bounds how much larger than the archive its members may be
// in total; DEFLATE cannot exceed about 1032:1.
const maxInflation = 1100

// zipArchive is an in-memory (or memory-mapped) zip archive: a .npz or a
// PyTorch archive. Its compressed members are read under one shared
// budget, not each under its own: directory entries can point at the same
// compressed bytes (a zip bomb), so neither a member's claimed size nor the
// member count is trusted.
type zipArchive struct {
	data  []byte
	files []*zip.File
	left  uint64 // bytes the members may still inflate to
}

func openZip(data []byte) (*zipArchive, error) {
	zr, err := zip.NewReader(bytes.NewReader(data), int64(len(data)))
	if err != nil {
		return nil, fmt.Errorf("not a zip archive, or a truncated one: %w", err)
	}
	return &zipArchive{data: data, files: zr.File, left: maxInflation * uint64(len(data))}, nil
}

// read returns the uncompressed content of a member in new memory,
// verifying its size and CRC-32.
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

// content returns the uncompressed content of a member, verifying its size
// and CRC-32. A stored (uncompressed) member, as torch.save writes them, is
// returned as a slice of the archive's own bytes, without a copy; a
// compressed one is inflated into new memory by read.
func (z *zipArchive) content(f *zip.File) ([]byte, error) {
	if f.Method != zip.Store {
		return z.read(f)
	}
	if f.CompressedSize64 != f.UncompressedSize64 {
		return nil, fmt.Errorf("member %s is stored uncompressed, but its directory entry gives sizes %d and %d",
			f.Name, f.CompressedSize64, f.UncompressedSize64)
	}
	start, err := f.DataOffset()
	if err != nil {
		return nil, fmt.Errorf("member %s: %w", f.Name, err)
	}
	if start < 0 || uint64(start) > uint64(len(z.data)) || f.UncompressedSize64 > uint64(len(z.data))-uint64(start) {
		return nil, fmt.Errorf("member %s claims %d bytes from offset %d, past the end of the %d-byte archive (truncated?)",
			f.Name, f.UncompressedSize64, start, len(z.data))
	}
	b := z.data[start : uint64(start)+f.UncompressedSize64]
	if crc32.ChecksumIEEE(b) != f.CRC32 {
		return nil, fmt.Errorf("member %s: checksum mismatch (the archive is damaged)", f.Name)
	}
	return b, nil
}
