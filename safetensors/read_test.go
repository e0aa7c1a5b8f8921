package safetensors

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io/fs"
	"maps"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/unimos/unimos/internal/testkit"
)

// rawFile assembles a safetensors file by hand from a literal JSON header and
// data region, independently of Write (and without padding).
func rawFile(header string, body []byte) []byte {
	out := binary.LittleEndian.AppendUint64(nil, uint64(len(header)))
	out = append(out, header...)
	return append(out, body...)
}

// le32 is the little-endian encoding of float32 values.
func le32(values ...float32) []byte {
	var out []byte
	for _, v := range values {
		out = binary.LittleEndian.AppendUint32(out, math.Float32bits(v))
	}
	return out
}

// handMadeFile holds an F32 [2,2], an I64 [3] (data first in the file but
// listed second in the header), an F16 [2] and metadata.
func handMadeFile() []byte {
	header := `{"w":{"dtype":"F32","shape":[2,2],"data_offsets":[24,40]},` +
		`"ids":{"dtype":"I64","shape":[3],"data_offsets":[0,24]},` +
		`"h":{"dtype":"F16","shape":[2],"data_offsets":[40,44]},` +
		`"__metadata__":{"format":"pt","note":"hand made"}}`
	var body []byte
	for _, v := range []int64{-1, 0, 7} {
		body = binary.LittleEndian.AppendUint64(body, uint64(v))
	}
	body = append(body, le32(1, -2, 0.5, 4)...)
	body = append(body, 0x00, 0x3c, 0x00, 0xc0) // F16 1, -2
	return rawFile(header, body)
}

func TestParseHandMadeFile(t *testing.T) {
	f, err := Parse("hand.safetensors", handMadeFile())
	if err != nil {
		t.Fatal(err)
	}
	if got, want := f.Names(), []string{"ids", "w", "h"}; !slices.Equal(got, want) {
		t.Errorf("Names() = %v, want data order %v", got, want)
	}
	if want := map[string]string{"format": "pt", "note": "hand made"}; !maps.Equal(f.Metadata(), want) {
		t.Errorf("Metadata() = %v, want %v", f.Metadata(), want)
	}
	w := mustTensor(t, f, "w")
	if w.DType != F32 || !slices.Equal(w.Shape, []int{2, 2}) || w.NumElements() != 4 {
		t.Errorf("w: %s %v", w.DType, w.Shape)
	}
	if got, _ := w.Float32(); !slices.Equal(got, []float32{1, -2, 0.5, 4}) {
		t.Errorf("w = %v", got)
	}
	if got, _ := mustTensor(t, f, "ids").Int64(); !slices.Equal(got, []int64{-1, 0, 7}) {
		t.Errorf("ids = %v", got)
	}
	if got, _ := mustTensor(t, f, "h").Float32(); !slices.Equal(got, []float32{1, -2}) {
		t.Errorf("h = %v", got)
	}
	_, err = f.Tensor("missing")
	if err == nil || !strings.Contains(err.Error(), "hand.safetensors") || !strings.Contains(err.Error(), "ids, w, h") {
		t.Errorf("missing tensor error = %v, want the file and the tensors it has", err)
	}
}

func mustTensor(t *testing.T, f *File, name string) *Tensor {
	t.Helper()
	tensor, err := f.Tensor(name)
	if err != nil {
		t.Fatal(err)
	}
	return tensor
}

func TestParseEdgeCasesAccepted(t *testing.T) {
	cases := map[string][]byte{
		"empty header":          rawFile("{}", nil),
		"padded header":         rawFile(`{}      `, nil),
		"scalar":                rawFile(`{"s":{"dtype":"F32","shape":[],"data_offsets":[0,4]}}`, le32(3)),
		"zero-size tensors":     rawFile(`{"a":{"dtype":"F32","shape":[0,5],"data_offsets":[0,0]},"b":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"c":{"dtype":"I64","shape":[0],"data_offsets":[4,4]}}`, le32(1)),
		"huge dims times zero":  rawFile(`{"z":{"dtype":"F64","shape":[4294967296,4294967296,0],"data_offsets":[0,0]}}`, nil),
		"bool, u8, i8, i16 ...": rawFile(`{"b":{"dtype":"BOOL","shape":[1],"data_offsets":[0,1]},"u":{"dtype":"U8","shape":[1],"data_offsets":[1,2]},"i":{"dtype":"I16","shape":[1],"data_offsets":[2,4]}}`, []byte{1, 2, 3, 4}),
	}
	for name, data := range cases {
		t.Run(name, func(t *testing.T) {
			if _, err := Parse(name, data); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// malformedCase is a file that must be rejected with an error containing want.
type malformedCase struct {
	name string
	data []byte
	want string
}

// lengthPrefix returns an 8-byte header length followed by rest.
func lengthPrefix(n uint64, rest string) []byte {
	return append(binary.LittleEndian.AppendUint64(nil, n), rest...)
}

func malformedCases() []malformedCase {
	f32 := func(offsets string, shape string) string {
		return `{"dtype":"F32","shape":` + shape + `,"data_offsets":` + offsets + `}`
	}
	return []malformedCase{
		{"shorter than 8 bytes", []byte{1, 0, 0}, "shorter than the 8-byte"},
		{"empty", nil, "shorter than the 8-byte"},
		{"header past end", lengthPrefix(100, "{}"), "runs past the end"},
		{"absurd header length", lengthPrefix(1<<62, "{}"), "exceeds the limit"},
		{"header length near 2^64", lengthPrefix(math.MaxUint64, "{}"), "exceeds the limit"},
		{"zero header length", lengthPrefix(0, ""), "not a JSON object"},
		{"invalid JSON", rawFile(`{"a":`, nil), "invalid header"},
		{"header not an object", rawFile(`[1, 2]`, nil), "not a JSON object"},
		{"trailing garbage after object", rawFile(`{} x`, nil), "data after the header"},
		{"second object after header", rawFile(`{}{}`, nil), "data after the header"},
		{"tensor entry not an object", rawFile(`{"a":3}`, nil), `tensor "a"`},
		{"unknown dtype", rawFile(`{"a":{"dtype":"Q4","shape":[1],"data_offsets":[0,1]}}`, []byte{0}), `unknown dtype "Q4"`},
		{"missing dtype", rawFile(`{"a":{"shape":[1],"data_offsets":[0,4]}}`, le32(0)), "missing dtype"},
		{"missing shape", rawFile(`{"a":{"dtype":"F32","data_offsets":[0,4]}}`, le32(0)), "missing shape"},
		{"missing data_offsets", rawFile(`{"a":{"dtype":"F32","shape":[1]}}`, le32(0)), "missing data_offsets"},
		{"shape/byte-count mismatch", rawFile(`{"a":`+f32(`[0,8]`, `[3]`)+`}`, le32(1, 2)), "needs 12 bytes"},
		{"negative dimension", rawFile(`{"a":`+f32(`[0,4]`, `[-1]`)+`}`, le32(1)), "negative dimension"},
		{"overflowing shape", rawFile(`{"a":`+f32(`[0,4]`, `[4294967296,4294967296]`)+`}`, le32(1)), "overflows"},
		{"shape times size overflows", rawFile(`{"a":`+f32(`[0,4]`, `[4611686018427387904]`)+`}`, le32(1)), "overflows"},
		{"non-integer dimension", rawFile(`{"a":`+f32(`[0,4]`, `[1.5]`)+`}`, le32(1)), `tensor "a"`},
		{"offsets past data", rawFile(`{"a":`+f32(`[0,8]`, `[2]`)+`}`, le32(1)), "run past"},
		{"negative offset", rawFile(`{"a":`+f32(`[-4,0]`, `[1]`)+`}`, le32(1)), "not an increasing pair"},
		{"reversed offsets", rawFile(`{"a":`+f32(`[4,0]`, `[1]`)+`}`, le32(1)), "not an increasing pair"},
		{"three offsets", rawFile(`{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4,8]}}`, le32(1)), "must have 2 entries"},
		{"overlapping offsets", rawFile(`{"a":`+f32(`[0,8]`, `[2]`)+`,"b":`+f32(`[4,8]`, `[1]`)+`}`, le32(1, 2)), "overlaps"},
		{"identical offsets", rawFile(`{"a":`+f32(`[0,4]`, `[1]`)+`,"b":`+f32(`[0,4]`, `[1]`)+`}`, le32(1)), "overlaps"},
		{"gap between tensors", rawFile(`{"a":`+f32(`[0,4]`, `[1]`)+`,"b":`+f32(`[8,12]`, `[1]`)+`}`, le32(1, 2, 3)), "belong to no tensor"},
		{"gap at start", rawFile(`{"a":`+f32(`[4,8]`, `[1]`)+`}`, le32(1, 2)), "bytes [0, 4)"},
		{"trailing bytes", rawFile(`{"a":`+f32(`[0,4]`, `[1]`)+`}`, le32(1, 2)), "4 trailing bytes"},
		{"data but no tensors", rawFile(`{}`, le32(1)), "4 trailing bytes"},
		{"duplicate tensor", rawFile(`{"a":`+f32(`[0,4]`, `[1]`)+`,"a":`+f32(`[0,4]`, `[1]`)+`}`, le32(1)), `duplicate key "a"`},
		{"metadata not strings", rawFile(`{"__metadata__":{"n":1}}`, nil), "__metadata__ must map strings to strings"},
		{"metadata not an object", rawFile(`{"__metadata__":[]}`, nil), "__metadata__ must map strings to strings"},
	}
}

func TestParseRejectsMalformed(t *testing.T) {
	for _, c := range malformedCases() {
		t.Run(c.name, func(t *testing.T) {
			_, err := Parse("bad.safetensors", c.data)
			if err == nil {
				t.Fatal("accepted")
			}
			if !strings.Contains(err.Error(), "bad.safetensors") || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("error %q does not name the file and contain %q", err, c.want)
			}
		})
	}
}

func TestOpenErrors(t *testing.T) {
	dir := t.TempDir()
	_, err := Open(filepath.Join(dir, "none.safetensors"))
	if !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("missing file: %v, want fs.ErrNotExist", err)
	}
	short := filepath.Join(dir, "short.safetensors")
	if err := os.WriteFile(short, []byte{1, 2}, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(short); err == nil || !strings.Contains(err.Error(), short) {
		t.Errorf("short file: %v, want an error naming %s", err, short)
	}
	if _, err := Open(dir); err == nil || !strings.Contains(err.Error(), dir+": is a folder, not a safetensors file") {
		t.Errorf("directory: %v", err)
	}
	fifo := filepath.Join(dir, "pipe.safetensors")
	testkit.MakeFIFO(t, fifo)
	testkit.Within(t, 10*time.Second, func() { // opening a named pipe would block
		if _, err := Open(fifo); err == nil || !strings.Contains(err.Error(), "is a named pipe, not a safetensors file") {
			t.Errorf("named pipe: %v", err)
		}
	})
}

func TestWriteMatchesHandEncoding(t *testing.T) {
	a, _ := FromFloat32("a", F32, []int{2}, []float32{1, -2})
	b, _ := FromInt64("b", I64, []int{1}, []int64{-1})
	var buf bytes.Buffer
	if err := Write(&buf, []*Tensor{a, b}, map[string]string{"z": "1", "a<&>": "x"}); err != nil {
		t.Fatal(err)
	}
	header := `{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"I64","shape":[1],"data_offsets":[8,16]},"__metadata__":{"a<&>":"x","z":"1"}}`
	header += strings.Repeat(" ", (8-(8+len(header))%8)%8)
	want := rawFile(header, append(le32(1, -2), 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff))
	if !bytes.Equal(buf.Bytes(), want) {
		t.Errorf("Write =\n%q\nwant\n%q", buf.Bytes(), want)
	}
}

func TestWriteRoundTripAllDTypes(t *testing.T) {
	var tensors []*Tensor
	for _, dt := range []DType{F16, BF16, F32, F64} {
		tensor, err := FromFloat32("f"+string(dt), dt, []int{3, 1}, []float32{0.25, -1, 8})
		if err != nil {
			t.Fatal(err)
		}
		tensors = append(tensors, tensor)
	}
	for _, dt := range []DType{I8, U8, I16, U16, I32, U32, I64} {
		tensor, err := FromInt64("i"+string(dt), dt, []int{1, 3}, []int64{1, 0, 100})
		if err != nil {
			t.Fatal(err)
		}
		tensors = append(tensors, tensor)
	}
	path := filepath.Join(t.TempDir(), "all.safetensors")
	if err := WriteFile(path, tensors, map[string]string{"k": "v"}); err != nil {
		t.Fatal(err)
	}
	raw, _ := os.ReadFile(path)
	if n := binary.LittleEndian.Uint64(raw); (8+n)%8 != 0 {
		t.Errorf("data starts at %d, not 8-byte aligned", 8+n)
	}
	f, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if f.Metadata()["k"] != "v" {
		t.Errorf("metadata = %v", f.Metadata())
	}
	for _, want := range tensors {
		got := mustTensor(t, f, want.Name)
		if got.DType != want.DType || !slices.Equal(got.Shape, want.Shape) || !bytes.Equal(got.Data, want.Data) {
			t.Errorf("%s: got %s %v, want %s %v", want.Name, got.DType, got.Shape, want.DType, want.Shape)
		}
	}
	if got := f.Names(); !slices.Equal(got, namesOf(tensors)) {
		t.Errorf("Names() = %v, want write order", got)
	}
}

func namesOf(tensors []*Tensor) []string {
	var names []string
	for _, t := range tensors {
		names = append(names, t.Name)
	}
	return names
}

func TestWriteRejects(t *testing.T) {
	ok, _ := FromFloat32("a", F32, []int{1}, []float32{1})
	cases := map[string][]*Tensor{
		"duplicate name": {ok, ok},
		"reserved name":  {{Name: "__metadata__", DType: F32, Shape: []int{1}, Data: make([]byte, 4)}},
		"short data":     {{Name: "s", DType: F32, Shape: []int{2}, Data: make([]byte, 4)}},
		"unknown dtype":  {{Name: "u", DType: "F8", Shape: []int{1}, Data: make([]byte, 1)}},
		"nil tensor":     {nil},
	}
	for name, tensors := range cases {
		path := filepath.Join(t.TempDir(), "x.safetensors")
		if err := WriteFile(path, tensors, nil); err == nil {
			t.Errorf("%s: accepted", name)
		}
		if _, err := os.Stat(path); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("%s: file exists after a rejected write", name)
		}
	}
}

// TestOpenMapsFiles checks the memory-mapped path and Close semantics.
func TestOpenMapsFiles(t *testing.T) {
	n := 1<<18 + 10 // a megabyte
	values := make([]float32, n)
	for i := range values {
		values[i] = float32(i)
	}
	big, _ := FromFloat32("big", F32, []int{n}, values)
	path := filepath.Join(t.TempDir(), "big.safetensors")
	if err := WriteFile(path, []*Tensor{big}, nil); err != nil {
		t.Fatal(err)
	}
	f, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	got, err := mustTensor(t, f, "big").Float32()
	if err != nil || !slices.Equal(got, values) {
		t.Fatalf("big tensor differs (err %v)", err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	if _, err := f.Tensor("big"); err == nil || !strings.Contains(err.Error(), "closed") {
		t.Errorf("Tensor after Close: %v", err)
	}
}

func BenchmarkOpen(b *testing.B) {
	values := make([]float32, 4<<20)
	big, _ := FromFloat32("big", F16, []int{len(values)}, values)
	path := filepath.Join(b.TempDir(), "big.safetensors")
	if err := WriteFile(path, []*Tensor{big}, nil); err != nil {
		b.Fatal(err)
	}
	dst := make([]float32, len(values))
	b.SetBytes(int64(len(big.Data)))
	for b.Loop() {
		f, err := Open(path)
		if err != nil {
			b.Fatal(err)
		}
		mustTensorB(b, f).Float32Into(dst)
		f.Close()
	}
}

func mustTensorB(b *testing.B, f *File) *Tensor {
	t, err := f.Tensor("big")
	if err != nil {
		b.Fatal(err)
	}
	return t
}
