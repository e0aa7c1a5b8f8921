package safetensors

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"slices"
	"strconv"

	"github.com/unimos/unimos/internal/atomicfile"
)

// Write writes tensors and metadata (may be nil) in safetensors format. The
// data is laid out in the order of tensors and the header lists the tensors
// in that order, then "__metadata__" with sorted keys, so equal inputs give
// identical bytes. The header is padded with spaces so that the data starts
// at an 8-byte-aligned offset.
func Write(w io.Writer, tensors []*Tensor, metadata map[string]string) error {
	header, err := encodeHeader(tensors, metadata)
	if err != nil {
		return err
	}
	var length [8]byte
	binary.LittleEndian.PutUint64(length[:], uint64(len(header)))
	if _, err := w.Write(length[:]); err != nil {
		return fmt.Errorf("safetensors: write header: %w", err)
	}
	if _, err := w.Write(header); err != nil {
		return fmt.Errorf("safetensors: write header: %w", err)
	}
	for _, t := range tensors {
		if _, err := w.Write(t.Data); err != nil {
			return fmt.Errorf("safetensors: write tensor %q: %w", t.Name, err)
		}
	}
	return nil
}

// WriteFile writes tensors and metadata to path atomically: readers see the
// old file or the complete new one, never a partial file.
func WriteFile(path string, tensors []*Tensor, metadata map[string]string) error {
	if _, err := encodeHeader(tensors, metadata); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return atomicfile.Write(path, func(w io.Writer) error { return Write(w, tensors, metadata) })
}

// encodeHeader validates the tensors and returns the padded JSON header.
func encodeHeader(tensors []*Tensor, metadata map[string]string) ([]byte, error) {
	var b bytes.Buffer
	b.WriteByte('{')
	seen := make(map[string]bool, len(tensors))
	offset := 0
	for i, t := range tensors {
		if t == nil {
			return nil, fmt.Errorf("safetensors: tensor %d is nil", i)
		}
		if t.Name == metadataKey {
			return nil, fmt.Errorf("safetensors: %q is reserved and cannot name a tensor", metadataKey)
		}
		if seen[t.Name] {
			return nil, fmt.Errorf("safetensors: duplicate tensor name %q", t.Name)
		}
		seen[t.Name] = true
		if err := t.checkData(); err != nil {
			return nil, err
		}
		if i > 0 {
			b.WriteByte(',')
		}
		writeJSONString(&b, t.Name)
		fmt.Fprintf(&b, `:{"dtype":"%s","shape":[`, t.DType)
		for j, d := range t.Shape {
			if j > 0 {
				b.WriteByte(',')
			}
			b.WriteString(strconv.Itoa(d))
		}
		fmt.Fprintf(&b, `],"data_offsets":[%d,%d]}`, offset, offset+len(t.Data))
		offset += len(t.Data)
	}
	if len(metadata) > 0 {
		if len(tensors) > 0 {
			b.WriteByte(',')
		}
		writeJSONString(&b, metadataKey)
		b.WriteString(":{")
		for i, k := range slices.Sorted(maps.Keys(metadata)) {
			if i > 0 {
				b.WriteByte(',')
			}
			writeJSONString(&b, k)
			b.WriteByte(':')
			writeJSONString(&b, metadata[k])
		}
		b.WriteByte('}')
	}
	b.WriteByte('}')
	for (8+b.Len())%8 != 0 {
		b.WriteByte(' ')
	}
	return b.Bytes(), nil
}

// writeJSONString appends s as a JSON string literal, without the HTML
// escaping that json.Marshal applies.
func writeJSONString(b *bytes.Buffer, s string) {
	enc := json.NewEncoder(b)
	enc.SetEscapeHTML(false)
	enc.Encode(s)           // cannot fail for a string
	b.Truncate(b.Len() - 1) // Encode appends a newline
}
