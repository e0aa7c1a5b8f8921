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
	// verified holds the compressed members read to their end, whose size
	// and CRC-32 are known to be right: a section of one is inflated only
	// up to the section's end.
	verified map[*zip.File]bool
}

func openZip(data []byte) (*zipArchive, error) {
	zr, err := zip.NewReader(bytes.NewReader(data), int64(len(data)))
	if err != nil {
		return nil, fmt.Errorf("not a zip archive, or a truncated one: %w", err)
	}
	return &zipArchive{data: data, files: zr.File, left: maxInflation * uint64(len(data)), verified: map[*zip.File]bool{}}, nil
}

// content returns the uncompressed content of a member, verifying its size
// and CRC-32; see section.
func (z *zipArchive) content(f *zip.File) ([]byte, error) {
	return z.section(f, 0, f.UncompressedSize64)
}

// section returns bytes [from, to) of a member's uncompressed content,
// verifying the whole member's size and CRC-32. A stored (uncompressed)
// member, as torch.save writes them, gives a slice of the archive's own
// bytes, without a copy. A compressed one is inflated through to its end,
// keeping only the section in new memory: reading a little of a large
// member costs time, not memory. The time is charged against the
// archive's inflation budget: the whole member the first time, the bytes
// up to the section's end after that.
func (z *zipArchive) section(f *zip.File, from, to uint64) ([]byte, error) {
	size := f.UncompressedSize64
	if from > to || to > size {
		return nil, fmt.Errorf("member %s: bytes %d to %d asked of %d", f.Name, from, to, size)
	}
	if f.Method == zip.Store {
		b, err := z.stored(f)
		if err != nil {
			return nil, err
		}
		return b[from:to], nil
	}
	verified := z.verified[f]
	cost := size
	if verified {
		cost = to
	}
	if cost > z.left {
		return nil, fmt.Errorf("member %s claims %d bytes, more than the archive can inflate to", f.Name, size)
	}
	z.left -= cost
	rc, err := f.Open()
	if err != nil {
		return nil, fmt.Errorf("member %s: %w", f.Name, err)
	}
	defer rc.Close()
	// io.Discard's ReadFrom reads through a small pooled buffer.
	if _, err := io.CopyN(io.Discard, rc, int64(from)); err != nil {
		return nil, fmt.Errorf("member %s: %w", f.Name, err)
	}
	buf := make([]byte, to-from)
	if _, err := io.ReadFull(rc, buf); err != nil {
		return nil, fmt.Errorf("member %s: %w", f.Name, err)
	}
	if !verified {
		// Reading on to the end makes archive/zip check the size and CRC-32.
		if _, err := io.Copy(io.Discard, rc); err != nil {
			return nil, fmt.Errorf("member %s: %w", f.Name, err)
		}
		z.verified[f] = true
	}
	return buf, nil
}

// stored returns the content of a stored member as a slice of the
// archive, verifying its size and CRC-32.
func (z *zipArchive) stored(f *zip.File) ([]byte, error) {
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
