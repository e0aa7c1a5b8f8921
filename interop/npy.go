package interop

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"strconv"

	"github.com/unimos/unimos/internal/regularfile"
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

// maxNPYHeader bounds the header of a .npy file. NumPy writes a few
// hundred bytes, and since version 1.24 refuses to read more than 10000.
const maxNPYHeader = 1 << 20

// maxArrayBytes bounds the stored data of one array, whatever its file
// claims: a generous cap (DomainNet's 586 575 images with 1024-dimensional
// float32 features take 2.4 GB) that a crafted header cannot talk past.
const maxArrayBytes = 64 << 30

// readChunk is the number of stored bytes converted at a time.
const readChunk = 64 << 10

// ReadNPY reads a NumPy .npy file (format versions 1.0, 2.0 and 3.0). The
// file is converted as it is read: memory holds the array, not also the
// file's bytes.
func ReadNPY(path string) (*Array, error) {
	return readNPYFile(path, nil)
}

// readNPYFile reads the .npy file at path, checking its header against
// spec (nil: any array) before its data.
func readNPYFile(path string, spec *arraySpec) (*Array, error) {
	f, st, err := regularfile.Open(path, "a .npy file")
	if err != nil {
		return nil, fmt.Errorf("interop: %w", err)
	}
	defer f.Close()
	a, err := readNPY(f, st.Size(), spec)
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
	return readNPY(bytes.NewReader(data), int64(len(data)), nil)
}

// readNPY reads a .npy file of size bytes from r: its header, checked
// against spec, then its data.
func readNPY(r io.Reader, size int64, spec *arraySpec) (*Array, error) {
	h, err := readNPYHeader(r, size, spec)
	if err != nil {
		return nil, err
	}
	return h.readData(r)
}

// npyArray describes an array from its .npy header, the data to follow.
type npyArray struct {
	dt        dtype
	order     binary.ByteOrder
	shape     []int
	fortran   bool
	n         int   // elements
	dataStart int64 // bytes of the file before the data
}

// readNPYHeader reads the magic, the version and the header of a .npy
// file of size bytes from r, leaving r at the data. It checks the array
// against spec and the data size against the file size, so that nothing is
// allocated for an array that the caller does not want or that the file
// cannot hold.
func readNPYHeader(r io.Reader, size int64, spec *arraySpec) (*npyArray, error) {
	// The magic, then the major and minor version, then the header length:
	// 2 bytes little-endian in version 1, 4 bytes from version 2 on.
	var lead [12]byte
	got, _ := io.ReadFull(r, lead[:8])
	if got < len(npyMagic) || !bytes.Equal(lead[:len(npyMagic)], npyMagic) {
		return nil, errors.New("not a .npy file (bad magic)")
	}
	if got < 8 {
		return nil, errors.New("truncated .npy header")
	}
	major, minor := lead[6], lead[7]
	lenBytes := 4
	switch {
	case major == 1 && minor == 0:
		lenBytes = 2
	case (major == 2 || major == 3) && minor == 0:
	default:
		return nil, fmt.Errorf("unsupported .npy format version %d.%d (supported: 1.0, 2.0, 3.0)", major, minor)
	}
	if _, err := io.ReadFull(r, lead[8:8+lenBytes]); err != nil {
		return nil, errors.New("truncated .npy header")
	}
	start := int64(8 + lenBytes)
	headerLen := int64(binary.LittleEndian.Uint16(lead[8:]))
	if lenBytes == 4 {
		headerLen = int64(binary.LittleEndian.Uint32(lead[8:]))
	}
	if headerLen > size-start {
		return nil, fmt.Errorf("truncated .npy header: %d header bytes announced, %d present", headerLen, size-start)
	}
	if headerLen > maxNPYHeader {
		return nil, fmt.Errorf("a header of %d bytes, more than the %d a .npy header may have", headerLen, maxNPYHeader)
	}
	text := make([]byte, headerLen)
	if _, err := io.ReadFull(r, text); err != nil {
		return nil, fmt.Errorf("truncated .npy header: %w", err)
	}
	h, err := parseNPYHeader(string(text))
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
	if err := spec.check(dt, h.shape); err != nil {
		return nil, err
	}
	body := size - start - headerLen
	if int64(n) > body/int64(dt.size) {
		return nil, fmt.Errorf("truncated data: shape %v of %s needs %d elements of %d bytes, the file holds %d bytes",
			h.shape, dt.name, n, dt.size, body)
	}
	if body != int64(n)*int64(dt.size) {
		return nil, fmt.Errorf("shape/data size mismatch: shape %v of %s needs %d bytes, the file holds %d",
			h.shape, dt.name, int64(n)*int64(dt.size), body)
	}
	if body > maxArrayBytes {
		return nil, fmt.Errorf("shape %v of %s: %s of data, more than the %s unimos reads into memory",
			h.shape, dt.name, regularfile.Size(body), regularfile.Size(maxArrayBytes))
	}
	return &npyArray{dt: dt, order: order, shape: h.shape, fortran: h.fortranOrder, n: n, dataStart: start + headerLen}, nil
}

// readData reads the array's data from r, converting it piece by piece,
// and checks that r ends there.
func (h *npyArray) readData(r io.Reader) (*Array, error) {
	a := newArray(h.dt, h.n)
	buf := make([]byte, min(readChunk, h.n*h.dt.size))
	for done := 0; done < h.n; {
		piece := buf[:min(len(buf), (h.n-done)*h.dt.size)]
		if _, err := io.ReadFull(r, piece); err != nil {
			return nil, fmt.Errorf("reading the data: %w", err)
		}
		a.convert(done, h.dt, h.order, piece)
		done += len(piece) / h.dt.size
	}
	// Reading on to the end makes a zip member's reader check its CRC-32,
	// and catches a file that grew since its size was taken.
	if n, err := r.Read(make([]byte, 1)); n != 0 || (err != nil && err != io.EOF) {
		if err == nil {
			return nil, errors.New("shape/data size mismatch: data after the last element")
		}
		return nil, fmt.Errorf("reading the data: %w", err)
	}
	if !h.fortran || len(h.shape) < 2 {
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
