package interop

import (
	"encoding/binary"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/unimos/unimos/internal/testkit"
)

// encode writes values in the given byte order with the width of each
// value's Go type.
func encode(order binary.ByteOrder, values ...any) []byte {
	var out []byte
	for _, v := range values {
		var err error
		out, err = binary.Append(out, order, v)
		if err != nil {
			panic(err)
		}
	}
	return out
}

func TestNPYDTypesAndOrders(t *testing.T) {
	le, be := binary.LittleEndian, binary.BigEndian
	for _, tc := range []struct {
		name, descr, shape string
		body               []byte
		wantShape          []int
		wantF              []float32
		wantI              []int64
	}{
		{"f4 big-endian", ">f4", "(2,)", encode(be, float32(1.5), float32(-2.25)), []int{2}, []float32{1.5, -2.25}, nil},
		{"f8 little-endian", "<f8", "(2,)", encode(le, 0.1, -3.0), []int{2}, []float32{float32(0.1), -3}, nil},
		{"f8 big-endian", ">f8", "(1,)", encode(be, 1e300), []int{1}, []float32{float32(math.Inf(1))}, nil},
		// 0x3c00 is 1.0, 0xc000 is -2.0, 0x0001 the smallest subnormal 2^-24.
		{"f2 little-endian", "<f2", "(3,)", encode(le, uint16(0x3c00), uint16(0xc000), uint16(1)), []int{3}, []float32{1, -2, 0x1p-24}, nil},
		{"f2 big-endian", ">f2", "(1,)", encode(be, uint16(0x3555)), []int{1}, []float32{0x1.554p-2}, nil},
		{"i4 little-endian", "<i4", "(3,)", encode(le, int32(-7), int32(0), int32(math.MaxInt32)), []int{3}, nil, []int64{-7, 0, math.MaxInt32}},
		{"i4 big-endian", ">i4", "(2,)", encode(be, int32(-1), int32(258)), []int{2}, nil, []int64{-1, 258}},
		{"i8 big-endian", ">i8", "(2,)", encode(be, int64(math.MinInt64), int64(5)), []int{2}, nil, []int64{math.MinInt64, 5}},
		{"u1", "|u1", "(2,)", []byte{255, 3}, []int{2}, nil, []int64{255, 3}},
		{"i1", "|i1", "(2,)", []byte{255, 3}, []int{2}, nil, []int64{-1, 3}},
		{"u2 big-endian", ">u2", "(1,)", encode(be, uint16(65535)), []int{1}, nil, []int64{65535}},
		{"u4", "<u4", "(1,)", encode(le, uint32(math.MaxUint32)), []int{1}, nil, []int64{math.MaxUint32}},
		{"i2", "<i2", "(1,)", encode(le, int16(-300)), []int{1}, nil, []int64{-300}},
		{"scalar", "<f4", "()", encode(le, float32(4)), []int{}, []float32{4}, nil},
		{"empty", "<i8", "(0, 5)", nil, []int{0, 5}, nil, []int64{}},
	} {
		a, err := ParseNPY(testkit.NPY(1, testkit.NPYHeader(tc.descr, false, tc.shape), tc.body))
		if err != nil {
			t.Errorf("%s: %v", tc.name, err)
			continue
		}
		if !slices.Equal(a.Shape, tc.wantShape) || !slices.Equal(a.Float32, tc.wantF) || !slices.Equal(a.Int64, tc.wantI) {
			t.Errorf("%s: got %v %v %v, want %v %v %v", tc.name, a.Shape, a.Float32, a.Int64, tc.wantShape, tc.wantF, tc.wantI)
		}
		if (a.Float32 == nil) == (a.Int64 == nil) {
			t.Errorf("%s: want exactly one of Float32 and Int64", tc.name)
		}
	}
}

func TestNPYFortranOrder(t *testing.T) {
	// m[i][j] = 10*i + j for a 2x3 matrix, and a 2x3x2 array, written with
	// the first index varying fastest.
	var colMajor []float64
	for j := 0; j < 3; j++ {
		for i := 0; i < 2; i++ {
			colMajor = append(colMajor, float64(10*i+j))
		}
	}
	a, err := ParseNPY(testkit.NPY(1, testkit.NPYHeader("<f8", true, "(2, 3)"), encode(binary.LittleEndian, colMajor)))
	if err != nil {
		t.Fatal(err)
	}
	if want := []float32{0, 1, 2, 10, 11, 12}; !slices.Equal(a.Shape, []int{2, 3}) || !slices.Equal(a.Float32, want) {
		t.Errorf("2-D: got %v %v, want [2 3] %v", a.Shape, a.Float32, want)
	}

	var fortran3, rowMajor3 []int32
	for k := 0; k < 2; k++ {
		for j := 0; j < 3; j++ {
			for i := 0; i < 2; i++ {
				fortran3 = append(fortran3, int32(100*i+10*j+k))
			}
		}
	}
	for i := 0; i < 2; i++ {
		for j := 0; j < 3; j++ {
			for k := 0; k < 2; k++ {
				rowMajor3 = append(rowMajor3, int32(100*i+10*j+k))
			}
		}
	}
	b, err := ParseNPY(testkit.NPY(1, testkit.NPYHeader(">i4", true, "(2, 3, 2)"), encode(binary.BigEndian, fortran3)))
	if err != nil {
		t.Fatal(err)
	}
	for n, v := range rowMajor3 {
		if b.Int64[n] != int64(v) {
			t.Fatalf("3-D: element %d is %d, want %d", n, b.Int64[n], v)
		}
	}

	// A 1-D array is the same in both orders.
	c, err := ParseNPY(testkit.NPY(1, testkit.NPYHeader("<i8", true, "(3,)"), encode(binary.LittleEndian, []int64{4, 5, 6})))
	if err != nil || !slices.Equal(c.Int64, []int64{4, 5, 6}) {
		t.Errorf("1-D Fortran: got %v, %v", c, err)
	}
}

func TestNPYHeaderVersions(t *testing.T) {
	body := encode(binary.LittleEndian, float32(1), float32(2))
	for _, major := range []byte{1, 2, 3} {
		a, err := ParseNPY(testkit.NPY(major, testkit.NPYHeader("<f4", false, "(1, 2)"), body))
		if err != nil {
			t.Errorf("version %d.0: %v", major, err)
			continue
		}
		if !slices.Equal(a.Float32, []float32{1, 2}) || !slices.Equal(a.Shape, []int{1, 2}) {
			t.Errorf("version %d.0: got %v %v", major, a.Shape, a.Float32)
		}
	}
	// Other spellings NumPy has written or Python accepts.
	for _, header := range []string{
		`{"descr": "<f4", "fortran_order": False, "shape": (1, 2)}`,
		"{'shape': (1L, 2L), 'fortran_order': False, 'descr': '<f4'}",
		"{ 'descr' : '<f4' ,\t'fortran_order' : False , 'shape' : ( 1 , 2 , ) , }",
	} {
		if _, err := ParseNPY(testkit.NPY(1, header, body)); err != nil {
			t.Errorf("%s: %v", header, err)
		}
	}
}

func TestNPYErrors(t *testing.T) {
	le := binary.LittleEndian
	good := testkit.NPY(1, testkit.NPYHeader("<f4", false, "(2,)"), encode(le, float32(1), float32(2)))
	withVersion := func(major, minor byte) []byte {
		b := slices.Clone(good)
		b[6], b[7] = major, minor
		return b
	}
	for _, tc := range []struct {
		name string
		data []byte
		want string
	}{
		{"empty", nil, "bad magic"},
		{"bad magic", append([]byte("\x93NUMPX"), good[6:]...), "bad magic"},
		{"version 4.0", withVersion(4, 0), "unsupported .npy format version 4.0"},
		{"version 1.1", withVersion(1, 1), "unsupported .npy format version 1.1"},
		{"header cut", good[:9], "truncated .npy header"},
		{"header shorter than announced", good[:40], "truncated .npy header"},
		{"object array", testkit.NPY(1, testkit.NPYHeader("|O", false, "(2,)"), make([]byte, 16)), "pickled object arrays are not supported"},
		{"complex", testkit.NPY(1, testkit.NPYHeader("<c8", false, "(1,)"), make([]byte, 8)), `unsupported dtype "<c8"`},
		{"unicode", testkit.NPY(1, testkit.NPYHeader("<U3", false, "(1,)"), make([]byte, 12)), "unsupported dtype"},
		{"native order", testkit.NPY(1, testkit.NPYHeader("=f4", false, "(1,)"), make([]byte, 4)), "unsupported byte order"},
		{"| on a wide type", testkit.NPY(1, testkit.NPYHeader("|f4", false, "(1,)"), make([]byte, 4)), "unsupported byte order"},
		{"structured", testkit.NPY(1, "{'descr': [('a', '<f4')], 'fortran_order': False, 'shape': (1,), }", make([]byte, 4)), "structured"},
		{"missing key", testkit.NPY(1, "{'descr': '<f4', 'shape': (1,), }", make([]byte, 4)), `missing key "fortran_order"`},
		{"extra key", testkit.NPY(1, "{'descr': '<f4', 'fortran_order': False, 'shape': (1,), 'x': 1}", make([]byte, 4)), `unexpected key "x"`},
		{"duplicate key", testkit.NPY(1, "{'descr': '<f4', 'descr': '<f4', 'fortran_order': False, 'shape': (1,)}", make([]byte, 4)), "appears twice"},
		{"not a dict", testkit.NPY(1, "('<f4', False, (1,))", make([]byte, 4)), `expected '{'`},
		{"unterminated", append([]byte("\x93NUMPY\x01\x00\x07\x00"), "{'descr"...), "unterminated"},
		{"newline in string", testkit.NPY(1, "{'descr", nil), "unsupported character"},
		{"escape", testkit.NPY(1, `{'descr': '<f\4', 'fortran_order': False, 'shape': (1,)}`, nil), "unsupported character"},
		{"bad bool", testkit.NPY(1, "{'descr': '<f4', 'fortran_order': 0, 'shape': (1,)}", nil), "fortran_order: expected True or False"},
		{"call", testkit.NPY(1, "{'descr': '<f4', 'fortran_order': False, 'shape': __import__('os')}", nil), "shape: expected '('"},
		{"shape without comma", testkit.NPY(1, testkit.NPYHeader("<f4", false, "(2)"), make([]byte, 8)), "','"},
		{"negative dimension", testkit.NPY(1, testkit.NPYHeader("<f4", false, "(-2,)"), make([]byte, 8)), "non-negative integer"},
		{"float dimension", testkit.NPY(1, testkit.NPYHeader("<f4", false, "(2.0,)"), make([]byte, 8)), "expected ','"},
		{"dimension overflows int", testkit.NPY(1, testkit.NPYHeader("<f4", false, "(99999999999999999999,)"), nil), "out of range"},
		{"product overflows", testkit.NPY(1, testkit.NPYHeader("<f4", false, "(4294967296, 4294967296)"), nil), "too many elements"},
		{"junk after dict", testkit.NPY(1, testkit.NPYHeader("<f4", false, "(2,)")+" x", make([]byte, 8)), "after the dictionary"},
		{"truncated data", good[:len(good)-1], "truncated data"},
		// 10^12 elements announced in a 100-byte file: an error, not an allocation.
		{"huge shape", testkit.NPY(1, testkit.NPYHeader("<f8", false, "(1000000, 1000000)"), make([]byte, 36)), "truncated data"},
		{"trailing data", append(slices.Clone(good), 0, 0, 0, 0), "size mismatch"},
		{"data for empty shape", testkit.NPY(1, testkit.NPYHeader("<f4", false, "(0,)"), make([]byte, 4)), "size mismatch"},
	} {
		_, err := ParseNPY(tc.data)
		if err == nil {
			t.Errorf("%s: no error", tc.name)
			continue
		}
		if !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: error %q does not mention %q", tc.name, err, tc.want)
		}
	}
}

func TestReadNPYNamesTheFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "broken.npy")
	if err := os.WriteFile(path, []byte("\x93NUMPY\x09\x00"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := ReadNPY(path)
	if err == nil || !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), "version 9.0") {
		t.Errorf("got %v, want an error naming %s and the version", err, path)
	}
	if _, err := ReadNPY(filepath.Join(t.TempDir(), "absent.npy")); err == nil || !strings.Contains(err.Error(), "absent.npy") {
		t.Errorf("missing file: got %v", err)
	}
}
