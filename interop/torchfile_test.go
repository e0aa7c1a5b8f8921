package interop

import (
	"archive/zip"
	"bytes"
	"encoding/binary"
	"errors"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/unimos/unimos/internal/testkit"
	"github.com/unimos/unimos/safetensors"
)

// deflatedPTH returns a PyTorch archive whose data.pkl, deflated, is
// PROTO 2, then n copies of op, then STOP, written in chunks so that the
// test itself does not hold the whole pickle.
func deflatedPTH(t testing.TB, op byte, n int) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	w, err := zw.CreateHeader(&zip.FileHeader{Name: "bomb/data.pkl", Method: zip.Deflate})
	if err != nil {
		t.Fatal(err)
	}
	w.Write([]byte{0x80, 2})
	chunk := bytes.Repeat([]byte{op}, 1<<20)
	for left := n; left > 0; left -= len(chunk) {
		w.Write(chunk[:min(left, len(chunk))])
	}
	w.Write([]byte{'.'})
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// TestPickleBombIsRefusedCheaply is the hardening issue's file: a 97 kB
// .pth whose pickle is 10^8 NONE opcodes (deflated). It grew the process to
// 4.85 GB; it must be refused with one short error, allocating about
// nothing beyond the file.
func TestPickleBombIsRefusedCheaply(t *testing.T) {
	data := deflatedPTH(t, 'N', 100_000_000)
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	_, err := ParsePTH(data)
	runtime.ReadMemStats(&after)
	if !errors.Is(err, ErrTooLarge) {
		t.Fatalf("got %v, want ErrTooLarge", err)
	}
	if len(err.Error()) > 300 || !strings.Contains(err.Error(), "bomb/data.pkl inflates to 100000003 bytes") {
		t.Errorf("error of %d bytes: %.300s", len(err.Error()), err)
	}
	if grew := after.TotalAlloc - before.TotalAlloc; grew > memoryPerInputByte*uint64(len(data)) {
		t.Errorf("refusing a %d-byte file allocated %d bytes", len(data), grew)
	}
}

// TestPickleBounds runs pickles that stay under the size bound but build
// too much: each is refused with one short error, and memory stays within
// about memoryPerInputByte times the file's size (and minMemory).
func TestPickleBounds(t *testing.T) {
	repeat := func(n int, b ...byte) []byte { return bytes.Repeat(b, n) }
	manyNames := newPickle(2).raw('}').tensor("FloatStorage", "0", 1, 0, []int{1}, []int{1}).raw('q', 0).raw('0')
	for i := range maxNames + 1 {
		manyNames.str(strconv.Itoa(i)).raw('h', 0, 's')
	}
	memoKeys := newPickle(2).raw('N')
	for i := range maxMemo + 1 {
		memoKeys.raw('r').raw(binary.LittleEndian.AppendUint32(nil, uint32(i))...)
	}
	for _, tc := range []struct {
		name, want string
		data       []byte
	}{
		{"values on the stack", "more than 1048576 values on the stack",
			buildPTH(t, "a", newPickle(2).raw(repeat(maxStack+1, 'N')...).done(), nil, "")},
		{"open marks", "more than 65536 open MARKs",
			buildPTH(t, "a", newPickle(2).raw(repeat(maxMarks+1, '(')...).done(), nil, "")},
		{"memo entries", "more than 1048576 memo entries", buildPTH(t, "a", memoKeys.done(), nil, "")},
		{"tensor names", "more than 1048576 tensor names",
			buildPTH(t, "a", manyNames.done(), map[string][]byte{"0": make([]byte, 4)}, "")},
		// A list of empty dicts, deflated: 2 bytes of pickle per dict, far
		// more in memory. The padding makes the archive large enough for
		// its pickle to pass the size bound.
		{"memory", "more than 4 MB of memory", testkit.Zip(t,
			testkit.ZipMember{Name: "a/data.pkl", Data: newPickle(2).raw(']').raw(repeat(1<<20, '}', 'a')...).done(), Deflate: true},
			testkit.ZipMember{Name: "a/padding", Data: make([]byte, 40<<10)})},
	} {
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		_, err := ParsePTH(tc.data)
		runtime.ReadMemStats(&after)
		if !errors.Is(err, ErrTooLarge) {
			t.Errorf("%s: got %.300v, want ErrTooLarge", tc.name, err)
			continue
		}
		if len(err.Error()) > 300 || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: error of %d bytes does not say %q: %.300s", tc.name, len(err.Error()), tc.want, err)
		}
		// The bound, with room for Go's own overhead: map buckets, slice
		// doubling and the names' map.
		limit := 3 * uint64(max(minMemory, memoryPerInputByte*len(tc.data)))
		if grew := after.TotalAlloc - before.TotalAlloc; grew > limit {
			t.Errorf("%s: a %d-byte file allocated %d bytes, more than %d", tc.name, len(tc.data), grew, limit)
		}
	}
}

// legacyFile lays out the pre-1.6 torch.save format: the magic number,
// version and system-information pickles, the object pickle (whose
// persistent ids have six items), the storage keys, then each storage as
// its element count and bytes, in the given byte order.
func legacyFile(order binary.ByteOrder, object []byte, keys []string, storages map[string][]byte, elemSize int) []byte {
	little := order == binary.LittleEndian
	info := newPickle(2).raw('}').str("protocol_version").int(1001).raw('s').str("little_endian")
	if little {
		info.raw(0x88)
	} else {
		info.raw(0x89)
	}
	out := slices.Concat(legacyMagic, legacyVersion, info.raw('s').done(), object)
	list := newPickle(2).raw(']', '(')
	for _, k := range keys {
		list.str(k)
	}
	out = append(out, list.raw('e').done()...)
	for _, k := range keys {
		out = order.(binary.AppendByteOrder).AppendUint64(out, uint64(len(storages[k])/elemSize))
		out = append(out, storages[k]...)
	}
	return out
}

// legacyTensor writes a tensor as the legacy format pickles it: the
// persistent id has a sixth item, the view metadata (None).
func (p *pickleBuilder) legacyTensor(storageType, key string, numel, offset int, size, stride []int, view bool) *pickleBuilder {
	p.global("torch._utils", "_rebuild_tensor_v2").raw('(')
	p.raw('(').str("storage").global("torch", storageType).str(key).str("cpu").int(numel)
	if view {
		p.raw('(').str("root").int(0).int(numel).raw('t')
	} else {
		p.raw('N')
	}
	p.raw('t', 'Q').int(offset).tuple(size...).tuple(stride...).raw(0x89)
	p.global("collections", "OrderedDict").raw(')', 'R')
	return p.raw('t', 'R')
}

func TestLegacyLayout(t *testing.T) {
	be := binary.BigEndian
	object := func(view bool) []byte {
		return newPickle(2).raw('}', '(').
			str("w").legacyTensor("FloatStorage", "140", 6, 0, []int{2, 3}, []int{3, 1}, view).
			str("wt").legacyTensor("FloatStorage", "141", 6, 0, []int{3, 2}, []int{1, 3}, view).
			raw('u').done()
	}
	values := []float32{1, 2, 3, 4, 5, 6}
	for _, order := range []binary.ByteOrder{le, be} {
		data := legacyFile(order, object(false), []string{"140", "141"},
			map[string][]byte{"140": encode(order, values), "141": encode(order, values)}, 4)
		c, err := parseCheckpoint(data)
		if err != nil {
			t.Fatalf("%v: %v", order, err)
		}
		w, _ := c.Tensor("w")
		wt, _ := c.Tensor("wt")
		gw, _ := w.Float32()
		gwt, _ := wt.Float32()
		if !slices.Equal(gw, values) || !slices.Equal(gwt, []float32{1, 4, 2, 5, 3, 6}) {
			t.Errorf("%v: w %v, wt %v", order, gw, gwt)
		}
		arrays, err := ParsePTH(data)
		if err != nil || !slices.Equal(arrays["wt"].Float32, []float32{1, 4, 2, 5, 3, 6}) {
			t.Errorf("%v: ParsePTH: %v, %v", order, arrays, err)
		}
	}
	both := map[string][]byte{"140": encode(le, values), "141": encode(le, values)}
	good := legacyFile(le, object(false), []string{"140", "141"}, both, 4)
	for _, tc := range []struct {
		name, want string
		data       []byte
	}{
		{"truncated storage", "run past the end of the file", good[:len(good)-1]},
		{"truncated count", "ends at its element count", good[:len(good)-24-4]},
		{"truncated object", "legacy torch.save format: object", good[:len(legacyMagic)+len(legacyVersion)+60]},
		{"wrong version", "unknown format version", slices.Concat(legacyMagic, []byte("\x80\x02M\xea\x03."))},
		{"storage view", "storage views", legacyFile(le, object(true), []string{"140", "141"}, both, 4)},
		{"unknown key", "the object names no such storage",
			legacyFile(le, object(false), []string{"9"}, map[string][]byte{"9": encode(le, values)}, 4)},
		{"key twice", "listed twice", legacyFile(le, object(false), []string{"140", "140"}, both, 4)},
		{"missing storage", "not in the file's list of storages", legacyFile(le, object(false), []string{"140"}, both, 4)},
		{"count differs", "holds 5 elements, but its tensors say 6",
			legacyFile(le, object(false), []string{"140"}, map[string][]byte{"140": encode(le, values[:5])}, 4)},
	} {
		_, err := parseCheckpoint(tc.data)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: got %v, want an error saying %q", tc.name, err, tc.want)
		}
	}
}

// module pickles a TorchScript module object of class cls whose attributes
// are written by attrs, as torch.jit.save does: GLOBAL, EMPTY_TUPLE,
// NEWOBJ, then a dict of attributes and BUILD.
func (p *pickleBuilder) module(cls string, attrs func(*pickleBuilder)) *pickleBuilder {
	p.global("__torch__.clip.model", cls).raw(')', 0x81).raw('}', '(')
	p.str("training").raw(0x89)
	attrs(p)
	return p.raw('u', 'b')
}

func TestCheckpointModulesAndStateDicts(t *testing.T) {
	st := map[string][]byte{"0": encode(le, []uint16{0x3c00, 0x4000, 0x4200, 0x4400}), "1": encode(le, []uint16{0xc000})}
	jit := newPickle(2).module("CLIP", func(p *pickleBuilder) {
		p.str("logit_scale").tensor("HalfStorage", "1", 1, 0, []int{}, []int{})
		p.str("visual").module("VisionTransformer", func(p *pickleBuilder) {
			p.str("proj").tensor("HalfStorage", "0", 4, 0, []int{2, 2}, []int{1, 2}) // transposed: copied
			p.str("conv1").module("Conv2d", func(p *pickleBuilder) { p.str("bias").raw('N') })
		})
	}).done()
	training := newPickle(2).raw('}', '(').str("epoch").int(32).str("state_dict").raw('}', '(').
		str("module.logit_scale").tensor("HalfStorage", "1", 1, 0, []int{}, []int{}).
		str("module.visual.proj").tensor("HalfStorage", "0", 4, 0, []int{2, 2}, []int{2, 1}).raw('u').
		str("optimizer").raw('}').str("state").raw('}').int(0).raw('}').
		str("exp_avg").tensor("HalfStorage", "0", 4, 0, []int{4}, []int{1}).raw('s', 's', 's', 'u').done()
	partial := newPickle(2).raw('}', '(').
		str("module.a").tensor("HalfStorage", "1", 1, 0, []int{}, []int{}).
		str("b").tensor("HalfStorage", "0", 4, 0, []int{4}, []int{1}).raw('u').done()
	for _, tc := range []struct {
		name  string
		pkl   []byte
		names []string
	}{
		{"TorchScript module tree", jit, []string{"logit_scale", "visual.proj"}},
		{"training checkpoint", training, []string{"logit_scale", "visual.proj"}},
		{"module. on some names only", partial, []string{"module.a", "b"}},
	} {
		c, err := parseCheckpoint(buildPTH(t, "ck", tc.pkl, st, ""))
		if err != nil {
			t.Errorf("%s: %v", tc.name, err)
			continue
		}
		if !slices.Equal(c.Names(), tc.names) {
			t.Errorf("%s: names %v, want %v", tc.name, c.Names(), tc.names)
		}
	}
	c, err := parseCheckpoint(buildPTH(t, "ck", jit, st, ""))
	if err != nil {
		t.Fatal(err)
	}
	proj, _ := c.Tensor("visual.proj")
	if v, _ := proj.Float32(); proj.DType != safetensors.F16 || !slices.Equal(v, []float32{1, 3, 2, 4}) {
		t.Errorf("transposed proj: %s %v", proj.DType, v)
	}
	if _, err := c.Tensor("visual.conv1.weight"); err == nil || !strings.Contains(err.Error(), "has: logit_scale, visual.proj") {
		t.Errorf("missing tensor: %v", err)
	}
}

func TestCheckpointErrors(t *testing.T) {
	st := map[string][]byte{"0": make([]byte, 8)}
	tensor := newPickle(2).raw('}').str("w").tensor("HalfStorage", "0", 4, 0, []int{4}, []int{1}).raw('s').done()
	good := buildPTH(t, "ck", tensor, st, "")
	// A directory entry that claims more bytes than the stored record has.
	lying := bytes.Clone(good)
	dir := bytes.Index(lying, []byte("PK\x01\x02"))
	for i := dir; i >= 0 && i < len(lying); {
		name := lying[i+46 : i+46+int(binary.LittleEndian.Uint16(lying[i+28:]))]
		if string(name) == "ck/data/0" {
			binary.LittleEndian.PutUint32(lying[i+20:], 1<<30) // compressed size
			binary.LittleEndian.PutUint32(lying[i+24:], 1<<30) // uncompressed size
		}
		next := bytes.Index(lying[i+4:], []byte("PK\x01\x02"))
		if next < 0 {
			break
		}
		i += 4 + next
	}
	damaged := bytes.Clone(good)
	damaged[bytes.Index(damaged, []byte("ck/data/0"))+len("ck/data/0")] ^= 0xff // first storage byte
	selfModule := newPickle(2).global("__torch__.m", "M").raw(')', 0x81, 'q', 0).
		raw('}').str("me").raw('h', 0).raw('s', 'b').done()
	for _, tc := range []struct {
		name, want string
		data       []byte
	}{
		{"truncated archive", "not a zip archive, or a truncated one", good[:len(good)-10]},
		{"sizes lie", "member ck/data/0 claims 1073741824 bytes from offset", lying},
		{"damaged record", "checksum mismatch", damaged},
		{"storage shorter than its tensor", "storage 0: 8 bytes, but 5 elements",
			buildPTH(t, "ck", newPickle(2).tensor("HalfStorage", "0", 5, 0, []int{5}, []int{1}).done(), st, "")},
		{"broadcast view", "more than the file's size",
			buildPTH(t, "ck", newPickle(2).tensor("HalfStorage", "0", 4, 0, []int{100, 4}, []int{0, 1}).done(), st, "")},
		{"NEWOBJ of a builtin", "NEWOBJ of a collections.OrderedDict",
			buildPTH(t, "ck", newPickle(2).global("collections", "OrderedDict").raw(')', 0x81).done(), nil, "")},
		{"NEWOBJ with arguments", "NEWOBJ of __torch__.m.M with arguments",
			buildPTH(t, "ck", newPickle(2).global("__torch__.m", "M").raw('N', 0x85, 0x81).done(), nil, "")},
		{"calling a module class", "calling a __torch__.m.M",
			buildPTH(t, "ck", newPickle(2).global("__torch__.m", "M").raw(')', 'R').done(), nil, "")},
		{"module state not a dict", "not a dict of attributes",
			buildPTH(t, "ck", newPickle(2).global("__torch__.m", "M").raw(')', 0x81, ']', 'b').done(), nil, "")},
		{"a class outside __torch__", "global __torch__x.M is not allowed",
			buildPTH(t, "ck", newPickle(2).global("__torch__x", "M").done(), nil, "")},
	} {
		_, err := parseCheckpoint(tc.data)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: got %v, want an error saying %q", tc.name, err, tc.want)
		}
	}
	// A module that holds itself: walked once, no tensors, no hang.
	c, err := parseCheckpoint(buildPTH(t, "ck", selfModule, nil, ""))
	if err != nil || len(c.Names()) != 0 {
		t.Errorf("a module holding itself: got %v, %v", c, err)
	}
}
