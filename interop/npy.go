package interop

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"strconv"
)

// npyMagic opens every .npy file.
var npyMagic = []byte("\x93NUMPY")

// npyDTypes maps the type part of a NumPy descr ("f4" of "<f4") to a dtype.
var npyDTypes = map[string]dtype{
	"f2": dtFloat16, "f4": dtFloat32, "f8": dtFloat64,
	"i1": dtInt8, "i2": dtInt16, "i4": dtInt32, "i8": dtInt64,
	"u1": dtUint8, "u2": dtUint16, "u4": dtUint32,
}

// npyHeader is the content of a .npy header dictionary.
type npyHeader struct {
	descr        string
	fortranOrder bool
	shape        []int
}

// ReadNPY reads a NumPy .npy file (format versions 1.0, 2.0 and 3.0).
func ReadNPY(path string) (*Array, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("interop: %w", err)
	}
	a, err := parseNPY(data)
	if err != nil {
		return nil, fmt.Errorf("interop: %s: %w", path, err)
	}
	return a, nil
}

// ParseNPY decodes the bytes of a NumPy .npy file; see ReadNPY.
func ParseNPY(data []byte) (*Array, error) {
	a, err := parseNPY(data)
	if err != nil {
		return nil, fmt.Errorf("interop: %w", err)
	}
	return a, nil
}

func parseNPY(data []byte) (*Array, error) {
	if !bytes.HasPrefix(data, npyMagic) {
		return nil, errors.New("not a .npy file (bad magic)")
	}
	// After the magic: major and minor version, then the header length,
	// 2 bytes little-endian in version 1 and 4 bytes from version 2 on.
	if len(data) < 8 {
		return nil, errors.New("truncated .npy header")
	}
	major, minor := data[6], data[7]
	lenBytes := 4
	switch {
	case major == 1 && minor == 0:
		lenBytes = 2
	case (major == 2 || major == 3) && minor == 0:
	default:
		return nil, fmt.Errorf("unsupported .npy format version %d.%d (supported: 1.0, 2.0, 3.0)", major, minor)
	}
	start := 8 + lenBytes
	if len(data) < start {
		return nil, errors.New("truncated .npy header")
	}
	headerLen := uint64(binary.LittleEndian.Uint16(data[8:]))
	if lenBytes == 4 {
		headerLen = uint64(binary.LittleEndian.Uint32(data[8:]))
	}
	if headerLen > uint64(len(data)-start) {
		return nil, fmt.Errorf("truncated .npy header: %d header bytes announced, %d present", headerLen, len(data)-start)
	}
	end := start + int(headerLen)
	h, err := parseNPYHeader(string(data[start:end]))
	if err != nil {
		return nil, fmt.Errorf("bad .npy header: %w", err)
	}
	dt, order, err := npyDType(h.descr)
	if err != nil {
		return nil, err
	}
	n, err := numElements(h.shape)
	if err != nil {
		return nil, fmt.Errorf("bad .npy shape: %w", err)
	}
	body := data[end:]
	if n > len(body)/dt.size {
		return nil, fmt.Errorf("truncated data: shape %v of %s needs %d elements of %d bytes, the file holds %d bytes",
			h.shape, dt.name, n, dt.size, len(body))
	}
	if len(body) != n*dt.size {
		return nil, fmt.Errorf("shape/data size mismatch: shape %v of %s needs %d bytes, the file holds %d",
			h.shape, dt.name, n*dt.size, len(body))
	}
	a := decode(dt, order, body)
	if !h.fortranOrder || len(h.shape) < 2 {
		a.Shape = h.shape
		return a, nil
	}
	// Fortran order stores the first index fastest: element (i0, i1, ...)
	// sits at Σ ik·strides[k] with strides[0] = 1.
	strides := make([]int, len(h.shape))
	s := 1
	for k, d := range h.shape {
		strides[k] = s
		s *= d
	}
	return a.view(0, h.shape, strides), nil
}

// npyDType interprets a NumPy descr such as "<f4": a byte-order character
// ('<' little, '>' big, '|' not applicable) and a type code.
func npyDType(descr string) (dtype, binary.ByteOrder, error) {
	if len(descr) >= 2 && descr[1] == 'O' {
		return dtype{}, nil, fmt.Errorf("dtype %q is an object array: pickled object arrays are not supported", descr)
	}
	unsupported := fmt.Errorf("unsupported dtype %q (supported: float16, float32, float64, int8, int16, int32, int64, uint8, uint16, uint32)", descr)
	if len(descr) < 3 {
		return dtype{}, nil, unsupported
	}
	dt, ok := npyDTypes[descr[1:]]
	if !ok {
		return dtype{}, nil, unsupported
	}
	switch {
	case descr[0] == '<':
		return dt, binary.LittleEndian, nil
	case descr[0] == '>':
		return dt, binary.BigEndian, nil
	case descr[0] == '|' && dt.size == 1:
		return dt, binary.LittleEndian, nil
	}
	return dtype{}, nil, fmt.Errorf("dtype %q: unsupported byte order %q", descr, descr[0])
}

// parseNPYHeader parses the Python dict literal of a .npy header, e.g.
// {'descr': '<f4', 'fortran_order': False, 'shape': (37, 16), }, followed
// by padding. It accepts exactly the literals NumPy writes; nothing is
// evaluated.
func parseNPYHeader(s string) (npyHeader, error) {
	var h npyHeader
	p := &literalParser{s: s}
	if err := p.expect('{'); err != nil {
		return h, err
	}
	seen := map[string]bool{}
	for !p.consume('}') {
		key, err := p.str()
		if err != nil {
			return h, err
		}
		if seen[key] {
			return h, fmt.Errorf("key %q appears twice", key)
		}
		seen[key] = true
		if err := p.expect(':'); err != nil {
			return h, err
		}
		switch key {
		case "descr":
			if p.peek() == '[' {
				return h, errors.New("structured (record) dtypes are not supported")
			}
			h.descr, err = p.str()
		case "fortran_order":
			h.fortranOrder, err = p.boolean()
		case "shape":
			h.shape, err = p.intTuple()
		default:
			return h, fmt.Errorf("unexpected key %q", key)
		}
		if err != nil {
			return h, fmt.Errorf("%s: %w", key, err)
		}
		if !p.consume(',') {
			if err := p.expect('}'); err != nil {
				return h, err
			}
			break
		}
	}
	p.skipSpace()
	if p.pos != len(p.s) {
		return h, fmt.Errorf("unexpected %q after the dictionary", p.s[p.pos:])
	}
	for _, k := range []string{"descr", "fortran_order", "shape"} {
		if !seen[k] {
			return h, fmt.Errorf("missing key %q", k)
		}
	}
	return h, nil
}

// literalParser reads the few Python literals of a .npy header.
type literalParser struct {
	s   string
	pos int
}

func (p *literalParser) skipSpace() {
	for p.pos < len(p.s) && (p.s[p.pos] == ' ' || p.s[p.pos] == '\t' || p.s[p.pos] == '\n' || p.s[p.pos] == '\r') {
		p.pos++
	}
}

// peek returns the next non-space byte, or 0 at the end.
func (p *literalParser) peek() byte {
	p.skipSpace()
	if p.pos == len(p.s) {
		return 0
	}
	return p.s[p.pos]
}

// consume skips c if it is the next non-space byte.
func (p *literalParser) consume(c byte) bool {
	if p.peek() != c {
		return false
	}
	p.pos++
	return true
}

func (p *literalParser) expect(c byte) error {
	if !p.consume(c) {
		return p.unexpected(fmt.Sprintf("%q", c))
	}
	return nil
}

// unexpected reports what was found where want was expected.
func (p *literalParser) unexpected(want string) error {
	if p.peek() == 0 {
		return fmt.Errorf("expected %s, found the end of the header", want)
	}
	return fmt.Errorf("expected %s at offset %d, found %q", want, p.pos, p.s[p.pos])
}

// str reads a quoted string without escapes.
func (p *literalParser) str() (string, error) {
	q := p.peek()
	if q != '\'' && q != '"' {
		return "", p.unexpected("a quoted string")
	}
	start := p.pos + 1
	for i := start; i < len(p.s); i++ {
		switch p.s[i] {
		case q:
			p.pos = i + 1
			return p.s[start:i], nil
		case '\\', '\n':
			return "", fmt.Errorf("unsupported character %q in string at offset %d", p.s[i], i)
		}
	}
	return "", errors.New("unterminated string")
}

// boolean reads True or False.
func (p *literalParser) boolean() (bool, error) {
	p.skipSpace()
	for _, lit := range []string{"True", "False"} {
		if len(p.s)-p.pos >= len(lit) && p.s[p.pos:p.pos+len(lit)] == lit {
			p.pos += len(lit)
			return lit == "True", nil
		}
	}
	return false, p.unexpected("True or False")
}

// intTuple reads a tuple of non-negative integers: (), (37,), (37, 16).
// Python 2 NumPy wrote long integers with an L suffix, which is accepted.
func (p *literalParser) intTuple() ([]int, error) {
	if err := p.expect('('); err != nil {
		return nil, err
	}
	dims := []int{}
	for !p.consume(')') {
		p.skipSpace()
		start := p.pos
		for p.pos < len(p.s) && p.s[p.pos] >= '0' && p.s[p.pos] <= '9' {
			p.pos++
		}
		if p.pos == start {
			return nil, p.unexpected("a non-negative integer")
		}
		d, err := strconv.Atoi(p.s[start:p.pos])
		if err != nil {
			return nil, fmt.Errorf("dimension %s out of range", p.s[start:p.pos])
		}
		if p.pos < len(p.s) && p.s[p.pos] == 'L' {
			p.pos++
		}
		if len(dims) == maxDims {
			return nil, fmt.Errorf("more than %d dimensions", maxDims)
		}
		dims = append(dims, d)
		if !p.consume(',') {
			// Without a comma, (37) would be an integer, not a tuple.
			if len(dims) == 1 {
				return nil, p.unexpected("',' after the only dimension")
			}
			if err := p.expect(')'); err != nil {
				return nil, err
			}
			break
		}
	}
	return dims, nil
}
