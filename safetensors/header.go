package safetensors

import (
	"bytes"
	"cmp"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"slices"
)

// MaxHeaderSize bounds the JSON header length, as the reference
// implementation does, so that a corrupt length cannot make a reader allocate
// or scan gigabytes.
const MaxHeaderSize = 100_000_000

// HeadLen is the number of leading bytes IsSafetensors looks at.
const HeadLen = 9

// IsSafetensors reports whether a file starting with head (its first
// HeadLen bytes, or all of a shorter file) starts as every safetensors file
// does: the 8-byte header length, then the '{' that opens the JSON header.
// It looks no further: a damaged file that starts so is Parse's to
// describe.
func IsSafetensors(head []byte) bool { return len(head) >= HeadLen && head[8] == '{' }

// metadataKey is the reserved header entry holding free-form string metadata.
const metadataKey = "__metadata__"

// headerEntry is one tensor's header record. Pointers tell "absent" from
// zero values.
type headerEntry struct {
	DType       *string  `json:"dtype"`
	Shape       *[]int64 `json:"shape"`
	DataOffsets *[]int64 `json:"data_offsets"`
}

// span is a tensor's validated byte range within the data region.
type span struct {
	name       string
	begin, end int
}

// Parse validates data as a safetensors file and returns it; name is used in
// error messages. The returned File's tensors alias data, which the caller
// must not modify.
func Parse(name string, data []byte) (*File, error) {
	fail := func(format string, args ...any) error {
		return fmt.Errorf("safetensors: %s: %s", name, fmt.Sprintf(format, args...))
	}
	if len(data) < 8 {
		return nil, fail("file is %d bytes, shorter than the 8-byte header length", len(data))
	}
	n := binary.LittleEndian.Uint64(data)
	if n > MaxHeaderSize {
		return nil, fail("header length %d exceeds the limit of %d bytes", n, MaxHeaderSize)
	}
	if n > uint64(len(data)-8) {
		return nil, fail("header length %d runs past the end of the %d-byte file", n, len(data))
	}
	header := data[8 : 8+n]
	body := data[8+n:]

	f := &File{path: name, tensors: make(map[string]*Tensor)}
	var spans []span
	err := decodeHeader(header, func(key string, raw json.RawMessage) error {
		if key == metadataKey {
			if err := json.Unmarshal(raw, &f.metadata); err != nil {
				return fmt.Errorf("__metadata__ must map strings to strings: %w", err)
			}
			return nil
		}
		t, s, err := parseEntry(key, raw, len(body))
		if err != nil {
			return fmt.Errorf("tensor %q: %w", key, err)
		}
		t.file = name
		t.Data = body[s.begin:s.end:s.end]
		f.tensors[key] = t
		spans = append(spans, s)
		return nil
	})
	if err != nil {
		return nil, fail("invalid header: %v", err)
	}
	if err := checkTiling(spans, len(body)); err != nil {
		return nil, fail("%v", err)
	}
	for _, s := range spans {
		f.order = append(f.order, s.name)
	}
	return f, nil
}

// decodeHeader walks the top-level JSON object, calling entry for each key in
// order and rejecting duplicate keys, which encoding/json would silently
// collapse. Only whitespace may follow the object (writers pad with spaces).
func decodeHeader(header []byte, entry func(key string, raw json.RawMessage) error) error {
	if len(header) == 0 || header[0] != '{' {
		return errors.New("header is not a JSON object")
	}
	dec := json.NewDecoder(bytes.NewReader(header))
	if _, err := dec.Token(); err != nil {
		return err
	}
	seen := make(map[string]bool)
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return err
		}
		key, ok := tok.(string)
		if !ok {
			return fmt.Errorf("unexpected %v in header object", tok)
		}
		if seen[key] {
			return fmt.Errorf("duplicate key %q", key)
		}
		seen[key] = true
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			return fmt.Errorf("key %q: %w", key, err)
		}
		if err := entry(key, raw); err != nil {
			return err
		}
	}
	if _, err := dec.Token(); err != nil {
		return err
	}
	rest := header[dec.InputOffset():]
	if len(bytes.TrimLeft(rest, " \t\r\n")) != 0 {
		return errors.New("data after the header object")
	}
	return nil
}

// parseEntry validates one tensor record against a data region of bodyLen
// bytes: known dtype, non-negative shape whose byte count fits in an int and
// equals the offsets' range, offsets inside the region.
func parseEntry(name string, raw json.RawMessage, bodyLen int) (*Tensor, span, error) {
	var e headerEntry
	if err := json.Unmarshal(raw, &e); err != nil {
		return nil, span{}, err
	}
	switch {
	case e.DType == nil:
		return nil, span{}, errors.New("missing dtype")
	case e.Shape == nil:
		return nil, span{}, errors.New("missing shape")
	case e.DataOffsets == nil:
		return nil, span{}, errors.New("missing data_offsets")
	}
	dtype := DType(*e.DType)
	size := dtype.Size()
	if size == 0 {
		return nil, span{}, fmt.Errorf("unknown dtype %q", *e.DType)
	}
	shape := make([]int, len(*e.Shape))
	for i, d := range *e.Shape {
		if d < 0 {
			return nil, span{}, fmt.Errorf("shape %v has a negative dimension", *e.Shape)
		}
		if d > math.MaxInt {
			return nil, span{}, fmt.Errorf("shape %v overflows", *e.Shape)
		}
		shape[i] = int(d)
	}
	count, err := numElements(shape)
	if err != nil || count > math.MaxInt/size {
		return nil, span{}, fmt.Errorf("shape %v overflows", *e.Shape)
	}
	offsets := *e.DataOffsets
	if len(offsets) != 2 {
		return nil, span{}, fmt.Errorf("data_offsets %v must have 2 entries", offsets)
	}
	begin, end := offsets[0], offsets[1]
	if begin < 0 || end < begin {
		return nil, span{}, fmt.Errorf("data_offsets %v are not an increasing pair of non-negative offsets", offsets)
	}
	if end > int64(bodyLen) {
		return nil, span{}, fmt.Errorf("data_offsets %v run past the %d-byte data region", offsets, bodyLen)
	}
	if want := int64(count * size); end-begin != want {
		return nil, span{}, fmt.Errorf("%s shape %v needs %d bytes but data_offsets %v hold %d", dtype, shape, want, offsets, end-begin)
	}
	t := &Tensor{Name: name, DType: dtype, Shape: shape}
	return t, span{name, int(begin), int(end)}, nil
}

// checkTiling requires the spans, sorted by offsets, to cover [0, bodyLen)
// exactly: no overlap, no gap, no trailing bytes. spans is sorted in place.
func checkTiling(spans []span, bodyLen int) error {
	slices.SortStableFunc(spans, func(a, b span) int {
		return cmp.Or(cmp.Compare(a.begin, b.begin), cmp.Compare(a.end, b.end))
	})
	pos := 0
	prev := ""
	for _, s := range spans {
		switch {
		case s.begin < pos:
			return fmt.Errorf("tensor %q [%d, %d) overlaps tensor %q ending at %d", s.name, s.begin, s.end, prev, pos)
		case s.begin > pos:
			return fmt.Errorf("bytes [%d, %d) of the data region belong to no tensor", pos, s.begin)
		}
		pos, prev = s.end, s.name
	}
	if pos != bodyLen {
		return fmt.Errorf("%d trailing bytes after the last tensor's data", bodyLen-pos)
	}
	return nil
}

// numElements returns the product of shape, or an error when a dimension is
// negative or the product overflows. A zero dimension makes the product 0
// however large the others are.
func numElements(shape []int) (int, error) {
	for _, d := range shape {
		if d < 0 {
			return 0, fmt.Errorf("shape %v has a negative dimension", shape)
		}
	}
	if slices.Contains(shape, 0) {
		return 0, nil
	}
	n := 1
	for _, d := range shape {
		if n > math.MaxInt/d {
			return 0, fmt.Errorf("shape %v overflows", shape)
		}
		n *= d
	}
	return n, nil
}
