package testkit

import (
	"encoding/binary"
	"hash/crc32"
)

// PNGDeclaring returns a PNG of a few dozen bytes whose header declares a
// w×h 8-bit RGB image and which holds no pixel data: what a decompression
// bomb looks like to a reader that checks the declared size first.
func PNGDeclaring(w, h uint32) []byte {
	chunk := func(out []byte, kind string, data []byte) []byte {
		out = binary.BigEndian.AppendUint32(out, uint32(len(data)))
		body := append([]byte(kind), data...)
		out = append(out, body...)
		return binary.BigEndian.AppendUint32(out, crc32.ChecksumIEEE(body))
	}
	ihdr := binary.BigEndian.AppendUint32(nil, w)
	ihdr = binary.BigEndian.AppendUint32(ihdr, h)
	ihdr = append(ihdr, 8, 2, 0, 0, 0) // 8-bit RGB, deflate, no filter, no interlace
	out := chunk([]byte("\x89PNG\r\n\x1a\n"), "IHDR", ihdr)
	return chunk(out, "IEND", nil)
}
