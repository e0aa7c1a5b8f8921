package interop

import (
	"bytes"
	"encoding/binary"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/unimos/unimos/internal/testkit"
)

// allocBudget is what a reader may allocate for an input of n bytes from
// which it returns arrays of output bytes: 64 bytes per input byte and a
// constant for the decoders' state (an inflater takes about 45 KiB, a
// small archive about 10 KiB besides), plus twice the output (a
// Fortran-order array is converted, then reordered). Work beyond it is
// amplification: memory spent on data the input only claims to hold.
func allocBudget(n, output int) uint64 { return 64*uint64(n) + 256<<10 + 2*uint64(output) }

// outputBytes is the memory that arrays take.
func outputBytes(arrays ...*Array) int {
	n := 0
	for _, a := range arrays {
		if a != nil {
			n += a.bytes()
		}
	}
	return n
}

// withBadCRC returns a copy of a zip archive whose first member's CRC-32, in
// its local header and its directory entry, is wrong.
func withBadCRC(t *testing.T, data []byte) []byte {
	t.Helper()
	bad := bytes.Clone(data)
	for _, sig := range []struct {
		magic  string
		offset int // of the CRC-32 field
	}{{"PK\x03\x04", 14}, {"PK\x01\x02", 16}} {
		i := bytes.Index(bad, []byte(sig.magic))
		if i < 0 {
			t.Fatalf("no %q record", sig.magic)
		}
		crc := binary.LittleEndian.Uint32(bad[i+sig.offset:])
		binary.LittleEndian.PutUint32(bad[i+sig.offset:], crc^0xdeadbeef)
	}
	return bad
}

// TestHostileArchives reads crafted .npz and .pth archives, small files
// that claim large arrays, and checks that each is refused (or, when what
// it holds is what the caller wants, read) without allocating much more
// than its own size and its arrays.
func TestHostileArchives(t *testing.T) {
	le := binary.LittleEndian
	twoRows := testkit.NPY(1, testkit.NPYHeader("<f4", false, "(2, 3)"), encode(le, []float32{1, 2, 3, 4, 5, 6}))
	// 64 MiB of uint8 labels deflate to 64 KiB; decoded to int64 they
	// would take 512 MiB.
	hugeLabels := testkit.NPY(1, testkit.NPYHeader("|u1", false, "(67108864,)"), make([]byte, 64<<20))
	// 16 MiB of float32 features, deflated to 16 KiB.
	tallFeatures := testkit.NPY(1, testkit.NPYHeader("<f4", false, "(4194304, 1)"), make([]byte, 16<<20))
	// A header that announces far more data than the member holds.
	liar := testkit.NPY(1, testkit.NPYHeader("<f4", false, "(1000000, 512)"), make([]byte, 64))

	// The same in .pth archives, whose pickle gives each tensor's type and
	// shape and whose storages are deflated: torch.save stores them, but
	// nothing stops a crafted file.
	const n = 64 << 20
	twoFeatures := func() *pickleBuilder {
		return newPickle(2).raw('}', '(').str("fea").tensor("HalfStorage", "0", 4, 0, []int{2, 2}, []int{2, 1})
	}
	pth := func(pkl *pickleBuilder, labels int, labelView ...[]int) []byte {
		size, stride := []int{labels}, []int{1}
		if labelView != nil {
			size, stride = labelView[0], labelView[1]
		}
		return testkit.Zip(t,
			testkit.ZipMember{Name: "c/data.pkl", Data: pkl.str("label").tensor("ByteStorage", "1", labels, 0, size, stride).raw('u').done()},
			testkit.ZipMember{Name: "c/data/0", Data: make([]byte, 8)},
			testkit.ZipMember{Name: "c/data/1", Data: make([]byte, labels), Deflate: true})
	}
	// 16 MiB of float32 features beside labels whose record, first in the
	// archive, is damaged: the features must not be decoded before it is
	// found.
	tallPTH := withBadCRC(t, testkit.Zip(t,
		testkit.ZipMember{Name: "c/data/1", Data: make([]byte, 4<<20), Deflate: true},
		testkit.ZipMember{Name: "c/data.pkl", Data: newPickle(2).raw('}', '(').
			str("fea").tensor("FloatStorage", "0", 4<<20, 0, []int{4 << 20, 1}, []int{1, 1}).
			str("label").tensor("ByteStorage", "1", 4<<20, 0, []int{4 << 20}, []int{1}).raw('u').done()},
		testkit.ZipMember{Name: "c/data/0", Data: make([]byte, 16<<20), Deflate: true}))

	cases := []struct {
		name string
		data []byte
		read func(data []byte) ([]*Array, error)
		want string
	}{
		{"labels of 64 MiB beside 2 feature rows",
			testkit.Zip(t, testkit.ZipMember{Name: "features.npy", Data: twoRows, Deflate: true}, testkit.ZipMember{Name: "labels.npy", Data: hugeLabels, Deflate: true}),
			readFeaturesNPZ, "labels: want a 1-D integer array [2] to match the features, got uint8 [67108864]"},
		{"features of 16 MiB with a wrong CRC-32",
			withBadCRC(t, testkit.Zip(t, testkit.ZipMember{Name: "features.npy", Data: tallFeatures, Deflate: true})),
			readFeaturesNPZ, "checksum error"},
		{"the same read as any .npz",
			withBadCRC(t, testkit.Zip(t, testkit.ZipMember{Name: "features.npy", Data: tallFeatures, Deflate: true})),
			readNPZ, "checksum error"},
		{"second member bad after a good large one",
			testkit.Zip(t, testkit.ZipMember{Name: "features.npy", Data: tallFeatures, Deflate: true}, testkit.ZipMember{Name: "labels.npy", Data: []byte("\x93NUMPY\x01")}),
			readNPZ, "member labels.npy: truncated .npy header"},
		{"header announcing 2 GB in a small member",
			testkit.Zip(t, testkit.ZipMember{Name: "features.npy", Data: liar, Deflate: true}),
			readFeaturesNPZ, "truncated data"},
		{"text features of the wrong rank",
			testkit.Zip(t, testkit.ZipMember{Name: "text_features.npy", Data: hugeLabels, Deflate: true}),
			readMatrixNPZ, `array "text_features": want a 2-D float array [K, d], got uint8 [67108864]`},
		{".pth labels of 64 MiB beside 2 feature rows", pth(twoFeatures(), n),
			readFeaturesPTH, "label: want a 1-D integer array [2] to match the features, got uint8 [67108864]"},
		{".pth text features of the wrong rank", pth(newPickle(2).raw('}', '('), n),
			readMatrixPTH, `array "label": want a 2-D float array [K, d], got uint8 [67108864]`},
		{".pth labels of 2 bytes at the start of a storage of 64 MiB", pth(twoFeatures(), n, []int{2}, []int{1}),
			readFeaturesPTH, ""},
		{".pth labels of 2 bytes strided across a storage of 64 MiB", pth(twoFeatures(), n, []int{2}, []int{n / 2}),
			readFeaturesPTH, "more than the file's size"},
		{".pth labels damaged beside 16 MiB of features", tallPTH,
			readFeaturesPTH, "checksum error"},
		{"the same read as any .pth", tallPTH,
			readPTH, "checksum error"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var arrays []*Array
			var err error
			used := testkit.Allocated(func() { arrays, err = c.read(c.data) })
			switch {
			case c.want == "" && err != nil:
				t.Errorf("got %v, want no error", err)
			case c.want != "" && (err == nil || !strings.Contains(err.Error(), c.want)):
				t.Errorf("got %v, want an error saying %q", err, c.want)
			}
			if budget := allocBudget(len(c.data), outputBytes(arrays...)); used > budget {
				t.Errorf("allocated %d bytes for a %d-byte file, more than the budget of %d", used, len(c.data), budget)
			}
		})
	}
}

// readFeaturesNPZ, readMatrixNPZ, readNPZ and their .pth counterparts run
// the readers of an archive's bytes for TestHostileArchives and the
// fuzzers.
func readFeaturesNPZ(data []byte) ([]*Array, error) { return readFeatures(".npz", data) }
func readFeaturesPTH(data []byte) ([]*Array, error) { return readFeatures(".pth", data) }
func readMatrixNPZ(data []byte) ([]*Array, error)   { return readMatrix(".npz", data) }
func readMatrixPTH(data []byte) ([]*Array, error)   { return readMatrix(".pth", data) }
func readNPZ(data []byte) ([]*Array, error)         { return listArrays(parseNPZ(data)) }
func readPTH(data []byte) ([]*Array, error)         { return listArrays(parsePTH(data)) }

func readFeatures(format string, data []byte) ([]*Array, error) {
	f, l, err := parseFeatures(format, data)
	return []*Array{f, l}, err
}

func readMatrix(format string, data []byte) ([]*Array, error) {
	m, err := parseMatrix(format, data)
	return []*Array{m}, err
}

func listArrays(arrays map[string]*Array, err error) ([]*Array, error) {
	var out []*Array
	for _, a := range arrays {
		out = append(out, a)
	}
	return out, err
}

// TestHostileNPY checks .npy files whose headers lie about their size.
func TestHostileNPY(t *testing.T) {
	longHeader := append([]byte("\x93NUMPY\x02\x00"), binary.LittleEndian.AppendUint32(nil, 2<<20)...)
	longHeader = append(longHeader, make([]byte, 2<<20)...)
	for _, c := range []struct {
		name string
		data []byte
		want string
	}{
		{"header length of 4 GiB", append([]byte("\x93NUMPY\x02\x00"), 0xf0, 0xff, 0xff, 0xff), "4294967280 header bytes announced, 0 present"},
		{"header of 2 MiB", longHeader, "more than the 1048576 a .npy header may have"},
		{"a billion elements announced", testkit.NPY(1, testkit.NPYHeader("<f8", false, "(1000000000,)"), make([]byte, 8)), "truncated data"},
	} {
		var err error
		used := testkit.Allocated(func() { _, err = ParseNPY(c.data) })
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: got %v, want an error saying %q", c.name, err, c.want)
		}
		if budget := allocBudget(len(c.data), 0); used > budget {
			t.Errorf("%s: allocated %d bytes, more than the budget of %d", c.name, used, budget)
		}
	}
}

// TestReadNPYStreams checks that a .npy file is converted as it is read:
// 16 MiB of uint8 labels cost their int64 array and little else.
func TestReadNPYStreams(t *testing.T) {
	path := filepath.Join(t.TempDir(), "labels.npy")
	if err := os.WriteFile(path, testkit.NPY(1, testkit.NPYHeader("|u1", false, "(16777216,)"), make([]byte, 16<<20)), 0o644); err != nil {
		t.Fatal(err)
	}
	var a *Array
	var err error
	used := testkit.Allocated(func() { a, err = ReadNPY(path) })
	if err != nil {
		t.Fatal(err)
	}
	if want := uint64(a.bytes()) + 1<<20; used > want {
		t.Errorf("allocated %d bytes for an array of %d: the file was held beside it", used, a.bytes())
	}
}

// TestSpecialFiles checks that the readers refuse what is not a regular
// file, before opening it: a named pipe would block them, /dev/zero never
// ends.
func TestSpecialFiles(t *testing.T) {
	dir := t.TempDir()
	fifo := filepath.Join(dir, "fifo.npz")
	testkit.MakeFIFO(t, fifo)
	zero := filepath.Join(dir, "zero.npy")
	testkit.LinkToDevZero(t, zero)
	readers := map[string]func(string) error{
		"ReadFeatures": func(p string) error { _, _, err := ReadFeatures(p); return err },
		"ReadMatrix":   func(p string) error { _, err := ReadMatrix(p); return err },
		"ReadNPY":      func(p string) error { _, err := ReadNPY(p); return err },
		"ReadNPZ":      func(p string) error { _, err := ReadNPZ(p); return err },
		"ReadPTH":      func(p string) error { _, err := ReadPTH(p); return err },
	}
	for name, read := range readers {
		for path, want := range map[string]string{fifo: "is a named pipe, not a", zero: "is a character device, not a"} {
			var err error
			testkit.Within(t, 5*time.Second, func() { err = read(path) })
			if err == nil || !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), path) {
				t.Errorf("%s(%s): got %v, want an error saying %q", name, path, err, want)
			}
		}
	}
}
