package interop

import (
	"archive/zip"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// pickleBuilder writes pickle opcodes by hand, as documented in Python's
// pickletools, independently of the unpickler's tables.
type pickleBuilder struct{ b []byte }

func newPickle(protocol byte) *pickleBuilder { return &pickleBuilder{b: []byte{0x80, protocol}} }

func (p *pickleBuilder) raw(b ...byte) *pickleBuilder { p.b = append(p.b, b...); return p }

// str writes BINUNICODE.
func (p *pickleBuilder) str(s string) *pickleBuilder {
	p.b = binary.LittleEndian.AppendUint32(append(p.b, 'X'), uint32(len(s)))
	return p.raw([]byte(s)...)
}

// global writes GLOBAL.
func (p *pickleBuilder) global(module, name string) *pickleBuilder {
	return p.raw([]byte("c" + module + "\n" + name + "\n")...)
}

// int writes BININT.
func (p *pickleBuilder) int(v int) *pickleBuilder {
	p.b = binary.LittleEndian.AppendUint32(append(p.b, 'J'), uint32(int32(v)))
	return p
}

// tuple writes MARK, the integers, TUPLE.
func (p *pickleBuilder) tuple(vs ...int) *pickleBuilder {
	p.raw('(')
	for _, v := range vs {
		p.int(v)
	}
	return p.raw('t')
}

// tensor writes what torch.save emits for a tensor:
// _rebuild_tensor_v2(persistent storage, offset, size, stride, False, OrderedDict()).
func (p *pickleBuilder) tensor(storageType, key string, numel, offset int, size, stride []int) *pickleBuilder {
	p.global("torch._utils", "_rebuild_tensor_v2").raw('(')
	p.raw('(').str("storage").global("torch", storageType).str(key).str("cpu").int(numel).raw('t', 'Q')
	p.int(offset).tuple(size...).tuple(stride...).raw(0x89)
	p.global("collections", "OrderedDict").raw(')', 'R')
	return p.raw('t', 'R')
}

// done appends STOP.
func (p *pickleBuilder) done() []byte { return append(p.b, '.') }

// storages serves storage records from a map.
func storages(records map[string][]byte) func(string) ([]byte, error) {
	return func(key string) ([]byte, error) {
		if b, ok := records[key]; ok {
			return b, nil
		}
		return nil, fmt.Errorf("no record data/%s", key)
	}
}

var le = binary.LittleEndian

func TestPickleStridedTensors(t *testing.T) {
	src := []float32{0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11}
	// {'t': the [4, 3] transpose of a [3, 4] matrix, 'v': a strided, offset
	// slice of another storage}.
	pkl := newPickle(2).raw('}', '(').
		str("t").tensor("FloatStorage", "0", 12, 0, []int{4, 3}, []int{1, 4}).
		str("v").tensor("LongStorage", "1", 6, 1, []int{2}, []int{2}).
		raw('u').done()
	arrays, err := ParsePickle(pkl, storages(map[string][]byte{
		"0": encode(le, src),
		"1": encode(le, []int64{10, 11, 12, 13, 14, 15}),
	}), le)
	if err != nil {
		t.Fatal(err)
	}
	var want []float32 // naive transpose: t[i][j] = src[j*4+i]
	for i := 0; i < 4; i++ {
		for j := 0; j < 3; j++ {
			want = append(want, src[j*4+i])
		}
	}
	if a := arrays["t"]; a == nil || a.DType != "float32" || !slices.Equal(a.Shape, []int{4, 3}) || !slices.Equal(a.Float32, want) {
		t.Errorf("t: got %+v, want [4 3] %v", a, want)
	}
	if v := arrays["v"]; v == nil || v.DType != "int64" || !slices.Equal(v.Int64, []int64{11, 13}) {
		t.Errorf("v: got %+v, want [11 13]", v)
	}
}

func TestPickleStorageTypes(t *testing.T) {
	be := binary.BigEndian
	for _, tc := range []struct {
		storage string
		order   binary.ByteOrder
		raw     []byte
		wantF   []float32
		wantI   []int64
	}{
		{"HalfStorage", be, encode(be, []uint16{0x3c00, 0xbc00}), []float32{1, -1}, nil},
		{"BFloat16Storage", le, encode(le, []uint16{0x3f80, 0xc040}), []float32{1, -3}, nil},
		{"DoubleStorage", be, encode(be, []float64{0.5, -8}), []float32{0.5, -8}, nil},
		{"FloatStorage", be, encode(be, []float32{2.5, 7}), []float32{2.5, 7}, nil},
		{"IntStorage", be, encode(be, []int32{-2, 1 << 30}), nil, []int64{-2, 1 << 30}},
		{"ShortStorage", le, encode(le, []int16{-2, 300}), nil, []int64{-2, 300}},
		{"CharStorage", le, []byte{0xfe, 5}, nil, []int64{-2, 5}},
		{"ByteStorage", le, []byte{0xfe, 5}, nil, []int64{254, 5}},
		{"LongStorage", be, encode(be, []int64{-1, 1 << 40}), nil, []int64{-1, 1 << 40}},
	} {
		pkl := newPickle(2).tensor(tc.storage, "k", 2, 0, []int{2}, []int{1}).done()
		arrays, err := ParsePickle(pkl, storages(map[string][]byte{"k": tc.raw}), tc.order)
		if err != nil {
			t.Errorf("%s: %v", tc.storage, err)
			continue
		}
		a := arrays[""] // a tensor pickled alone
		if len(arrays) != 1 || a == nil || !slices.Equal(a.Float32, tc.wantF) || !slices.Equal(a.Int64, tc.wantI) {
			t.Errorf("%s: got %v, want %v %v", tc.storage, arrays, tc.wantF, tc.wantI)
		}
	}
}

func TestPickleContainers(t *testing.T) {
	st := map[string][]byte{"0": encode(le, []float32{1, 2}), "1": encode(le, []float32{3}), "2": encode(le, []float32{4})}
	p := newPickle(2).raw('}', '(')
	// 'model': a state_dict, an OrderedDict with a _metadata attribute set
	// by BUILD, holding a Parameter.
	p.str("model").global("collections", "OrderedDict").raw(')', 'R')
	p.raw('q', 9) // BINPUT 9
	p.str("w").global("torch._utils", "_rebuild_parameter").raw('(').
		tensor("FloatStorage", "0", 2, 0, []int{2}, []int{1}).raw(0x88).global("collections", "OrderedDict").raw(')', 'R', 't', 'R')
	p.raw('s')                                                           // SETITEM
	p.raw('}').str("_metadata").raw('}', 's').raw('b')                   // BUILD {'_metadata': {}}
	p.str("epoch").int(5)                                                // skipped: not a tensor
	p.str("lr").raw('G', 0x3f, 0x50, 0x62, 0x4d, 0xd2, 0xf1, 0xa9, 0xfc) // BINFLOAT 0.001
	p.str("hist").raw(']', '(').tensor("FloatStorage", "1", 1, 0, []int{1}, []int{1}).raw('N', 0x89, 'e')
	p.str("by_id").raw('}').raw('K', 7).tensor("FloatStorage", "2", 1, 0, []int{}, []int{}).raw('s')
	p.str("again").raw('h', 9) // the same state_dict: walked once
	arrays, err := ParsePickle(p.raw('u').done(), storages(st), le)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for name := range arrays {
		names = append(names, name)
	}
	slices.Sort(names)
	if want := []string{"by_id.7", "hist.0", "model.w"}; !slices.Equal(names, want) {
		t.Fatalf("names %v, want %v", names, want)
	}
	if w := arrays["model.w"]; !slices.Equal(w.Float32, []float32{1, 2}) {
		t.Errorf("model.w = %v", w.Float32)
	}
	if s := arrays["by_id.7"]; len(s.Shape) != 0 || !slices.Equal(s.Float32, []float32{4}) {
		t.Errorf("scalar: got %v %v", s.Shape, s.Float32)
	}
}

func TestPickleProtocol4(t *testing.T) {
	// FRAME, SHORT_BINUNICODE, MEMOIZE, STACK_GLOBAL, BINUNICODE8 and LONG1
	// as protocol 4 writes them.
	p := &pickleBuilder{b: []byte{0x80, 4, 0x95, 0, 0, 0, 0, 0, 0, 0, 0}}
	sstr := func(s string) { p.raw(0x8c, byte(len(s))).raw([]byte(s)...).raw(0x94) }
	p.raw('}', 0x94, '(')
	p.raw(0x8d, 3, 0, 0, 0, 0, 0, 0, 0).raw([]byte("fea")...)
	sstr("torch._utils")
	sstr("_rebuild_tensor_v2")
	p.raw(0x93, 0x94, '(', '(') // the arguments, then the persistent id
	sstr("storage")
	sstr("torch")
	sstr("HalfStorage")
	p.raw(0x93, 0x94)
	sstr("0")
	sstr("cpu")
	p.raw(0x8a, 2, 0x2c, 0x01) // LONG1 300
	p.raw('t', 'Q', 'K', 0).raw('M', 0x2c, 0x01).raw(0x85).raw('K', 1).raw(0x85).raw(0x89)
	sstr("collections")
	sstr("OrderedDict")
	p.raw(0x93, ')', 'R', 't', 'R', 'u')
	raw := make([]uint16, 300)
	for i := range raw {
		raw[i] = 0x3c00 // 1.0
	}
	arrays, err := ParsePickle(p.done(), storages(map[string][]byte{"0": encode(le, raw)}), le)
	if err != nil {
		t.Fatal(err)
	}
	fea := arrays["fea"]
	if fea == nil || fea.DType != "float16" || !slices.Equal(fea.Shape, []int{300}) || fea.Float32[299] != 1 {
		t.Errorf("got %+v", fea)
	}
}

func TestPickleRefusesUnsafe(t *testing.T) {
	for _, tc := range []struct {
		name, want string
		pkl        []byte
	}{
		{"os.system via GLOBAL and REDUCE", "os.system",
			newPickle(2).global("os", "system").str("echo pwned").raw(0x85, 'R').done()},
		{"builtins.eval via STACK_GLOBAL", "builtins.eval",
			newPickle(4).raw(0x8c, 8).raw([]byte("builtins")...).raw(0x8c, 4).raw([]byte("eval")...).raw(0x93).done()},
		{"torch.storage._load_from_bytes", "torch.storage._load_from_bytes",
			newPickle(2).global("torch.storage", "_load_from_bytes").done()},
		{"numpy arrays", "numpy.core.multiarray._reconstruct",
			newPickle(2).global("numpy.core.multiarray", "_reconstruct").done()},
		{"torch.Tensor", "torch.Tensor", newPickle(2).global("torch", "Tensor").done()},
		{"storage type outside torch", "evil.FloatStorage", newPickle(2).global("evil", "FloatStorage").done()},
		{"INST", "INST", newPickle(2).raw('(').raw([]byte("ios\nsystem\n")...).done()},
		{"OBJ", "OBJ", newPickle(2).raw('(').global("collections", "OrderedDict").raw('o').done()},
		{"NEWOBJ", "NEWOBJ", newPickle(2).global("collections", "OrderedDict").raw(')', 0x81).done()},
		{"EXT1", "EXT1", newPickle(2).raw(0x82, 1).done()},
		{"BUILD on a list", "BUILD", newPickle(2).raw(']', '}', 'b').done()},
		{"calling a storage type", "storage type",
			newPickle(2).global("torch", "FloatStorage").raw(')', 'R').done()},
	} {
		_, err := ParsePickle(tc.pkl, storages(nil), le)
		if !errors.Is(err, ErrUnsafePickle) {
			t.Errorf("%s: got %v, want ErrUnsafePickle", tc.name, err)
			continue
		}
		for _, want := range []string{tc.want, "refused for safety"} {
			if !strings.Contains(err.Error(), want) {
				t.Errorf("%s: error %q does not mention %q", tc.name, err, want)
			}
		}
	}
}

func TestPickleMalformed(t *testing.T) {
	tensor := func(numel, offset int, size, stride []int) []byte {
		return newPickle(2).tensor("FloatStorage", "0", numel, offset, size, stride).done()
	}
	four := map[string][]byte{"0": make([]byte, 16)}
	for _, tc := range []struct {
		name, want string
		pkl        []byte
		st         map[string][]byte
	}{
		{"empty", "no STOP", nil, nil},
		{"no STOP", "no STOP", newPickle(2).raw('N').b, nil},
		{"protocol 6", "unsupported pickle protocol 6", newPickle(6).raw('N').done(), nil},
		{"text opcode", "unsupported opcode", newPickle(2).raw([]byte("I1\n")...).done(), nil},
		{"underflow", "REDUCE at offset 2: stack underflow", newPickle(2).raw('R').done(), nil},
		{"two values at STOP", "2 values", newPickle(2).raw('N', 'N').done(), nil},
		{"open MARK at STOP", "1 marks", newPickle(2).raw('N', '(').done(), nil},
		{"pop below MARK", "stack underflow", newPickle(2).raw('N', '(', '0').done(), nil},
		{"POP_MARK without MARK", "no MARK", newPickle(2).raw('1').done(), nil},
		{"missing memo", "memo entry 3", newPickle(2).raw('h', 3).done(), nil},
		{"truncated string", "truncated argument", newPickle(2).raw('X', 0xff, 0xff, 0xff, 0x7f, 'a').done(), nil},
		{"huge BINUNICODE8", "truncated argument", newPickle(4).raw(0x8d, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff).done(), nil},
		{"unterminated GLOBAL", "truncated argument", newPickle(2).raw('c', 'o', 's').b, nil},
		{"LONG1 too wide", "too large", newPickle(2).raw(0x8a, 9, 1, 2, 3, 4, 5, 6, 7, 8, 9).done(), nil},
		{"odd SETITEMS", "odd number", newPickle(2).raw('}', '(', 'N', 'u').done(), nil},
		{"APPEND to a dict", "appending to a dict", newPickle(2).raw('}', 'N', 'a').done(), nil},
		{"SETITEM on a list", "setting items of a list", newPickle(2).raw(']', 'N', 'N', 's').done(), nil},
		{"bad persistent id", "persistent id", newPickle(2).str("x").raw('Q').done(), nil},
		{"OrderedDict with items", "want 0", newPickle(2).global("collections", "OrderedDict").raw('N', 0x85, 'R').done(), nil},
		{"missing storage", "storage 0: no record data/0", tensor(4, 0, []int{4}, []int{1}), nil},
		{"storage size", "storage 0: 12 bytes, but 4 elements", tensor(4, 0, []int{4}, []int{1}), map[string][]byte{"0": make([]byte, 12)}},
		{"view past the end", "reaches element 4", tensor(4, 1, []int{4}, []int{1}), four},
		{"negative offset", "negative storage offset", tensor(4, -1, []int{1}, []int{1}), four},
		{"negative size", "negative dimension", tensor(4, 0, []int{-1}, []int{1}), four},
		{"stride count", "1 strides for 2 dimensions", tensor(4, 0, []int{2, 2}, []int{1}), four},
		{"broadcast", "more elements than their storages", tensor(4, 0, []int{3, 4}, []int{0, 1}), four},
		{"storage typed twice", "used both as", newPickle(2).raw('(').
			tensor("FloatStorage", "0", 4, 0, []int{1}, []int{1}).
			tensor("IntStorage", "0", 4, 0, []int{1}, []int{1}).raw('t').done(), four},
		{"tensor under a tuple key", "dict key of type tuple", newPickle(2).raw('}', ')').
			tensor("FloatStorage", "0", 4, 0, []int{1}, []int{1}).raw('s').done(), four},
	} {
		_, err := ParsePickle(tc.pkl, storages(tc.st), le)
		if err == nil {
			t.Errorf("%s: no error", tc.name)
			continue
		}
		if !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: error %q does not mention %q", tc.name, err, tc.want)
		}
	}
}

func TestPickleCycles(t *testing.T) {
	// l = []; l.append(l): walking it must terminate.
	arrays, err := ParsePickle(newPickle(2).raw(']', 'q', 0, 'h', 0, 'a').done(), storages(nil), le)
	if err != nil || len(arrays) != 0 {
		t.Errorf("got %v, %v", arrays, err)
	}
	// 70 nested lists around a tensor.
	p := newPickle(2)
	for range 70 {
		p.raw(']')
	}
	p.tensor("FloatStorage", "0", 1, 0, []int{1}, []int{1})
	for range 70 {
		p.raw('a')
	}
	_, err = ParsePickle(p.done(), storages(map[string][]byte{"0": make([]byte, 4)}), le)
	if err == nil || !strings.Contains(err.Error(), "nested more than") {
		t.Errorf("deep nesting: got %v", err)
	}
}

// fixturePickle returns data.pkl and the storage records of the reference
// cache fixture.
func fixturePickle(t testing.TB) ([]byte, map[string][]byte) {
	data, err := os.ReadFile(filepath.Join(fixtureDir(t), "reference_cache.pth"))
	if err != nil {
		t.Fatal(err)
	}
	zr, err := zip.NewReader(bytes.NewReader(data), int64(len(data)))
	if err != nil {
		t.Fatal(err)
	}
	var pkl []byte
	records := map[string][]byte{}
	for _, f := range zr.File {
		rc, err := f.Open()
		if err != nil {
			t.Fatal(err)
		}
		b, err := io.ReadAll(rc)
		if err != nil {
			t.Fatal(err)
		}
		if key, ok := strings.CutPrefix(f.Name, "reference_cache/data/"); ok {
			records[key] = b
		} else if f.Name == "reference_cache/data.pkl" {
			pkl = b
		}
	}
	return pkl, records
}

func TestPickleFixtureTruncations(t *testing.T) {
	pkl, records := fixturePickle(t)
	if _, err := ParsePickle(pkl, storages(records), le); err != nil {
		t.Fatal(err)
	}
	for n := range len(pkl) - 1 {
		if _, err := ParsePickle(pkl[:n], storages(records), le); err == nil {
			t.Errorf("pickle cut to %d bytes: no error", n)
		}
	}
}

func TestPickleArraysDoNotShareMemory(t *testing.T) {
	// Two tensor objects over the whole of storage "0" (the budget allows it
	// thanks to the unused part of storage "1"): each gets its own memory.
	pkl := newPickle(2).raw('}', '(').
		str("c").tensor("FloatStorage", "1", 8, 0, []int{1}, []int{1}).
		str("a").tensor("FloatStorage", "0", 4, 0, []int{2, 2}, []int{2, 1}).
		str("b").tensor("FloatStorage", "0", 4, 0, []int{4}, []int{1}).
		raw('u').done()
	arrays, err := ParsePickle(pkl, storages(map[string][]byte{
		"0": encode(le, []float32{1, 2, 3, 4}),
		"1": make([]byte, 32),
	}), le)
	if err != nil {
		t.Fatal(err)
	}
	a, b := arrays["a"], arrays["b"]
	if !slices.Equal(a.Float32, []float32{1, 2, 3, 4}) || !slices.Equal(b.Float32, a.Float32) {
		t.Fatalf("a %v, b %v", a.Float32, b.Float32)
	}
	a.Float32[0] = 99
	if b.Float32[0] != 1 {
		t.Error("a and b share memory")
	}
}
