package interop

import (
	"archive/zip"
	"bytes"
	"encoding/binary"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/unimos/unimos/internal/testkit"
)

// smallBundle is a .npz with features [2, 3] and labels [2]; the features
// member is deflated when deflate is set.
func smallBundle(t testing.TB, deflate bool, names ...string) []byte {
	le := binary.LittleEndian
	features := testkit.NPY(1, testkit.NPYHeader("<f4", false, "(2, 3)"), encode(le, []float32{1, 2, 3, 4, 5, 6}))
	labels := testkit.NPY(1, testkit.NPYHeader("<i8", false, "(2,)"), encode(le, []int64{7, 8}))
	if names == nil {
		names = []string{"features.npy", "labels.npy"}
	}
	return testkit.Zip(t, testkit.ZipMember{Name: names[0], Data: features, Deflate: deflate}, testkit.ZipMember{Name: names[1], Data: labels})
}

func TestNPZ(t *testing.T) {
	for _, deflate := range []bool{false, true} {
		arrays, err := ParseNPZ(smallBundle(t, deflate))
		if err != nil {
			t.Fatalf("deflate=%v: %v", deflate, err)
		}
		f, l := arrays["features"], arrays["labels"]
		if len(arrays) != 2 || f == nil || l == nil {
			t.Fatalf("deflate=%v: got arrays %v", deflate, arrays)
		}
		if !slices.Equal(f.Shape, []int{2, 3}) || !slices.Equal(f.Float32, []float32{1, 2, 3, 4, 5, 6}) {
			t.Errorf("deflate=%v: features %v %v", deflate, f.Shape, f.Float32)
		}
		if !slices.Equal(l.Int64, []int64{7, 8}) {
			t.Errorf("deflate=%v: labels %v", deflate, l.Int64)
		}
	}
}

func TestNPZErrors(t *testing.T) {
	good := smallBundle(t, true)

	// Flip one byte inside the deflated features member's data: the CRC
	// check or the inflater must notice.
	zr, err := zip.NewReader(bytes.NewReader(good), int64(len(good)))
	if err != nil {
		t.Fatal(err)
	}
	off, err := zr.File[0].DataOffset()
	if err != nil {
		t.Fatal(err)
	}
	corrupt := slices.Clone(good)
	corrupt[off+int64(zr.File[0].CompressedSize64)/2] ^= 0xff

	for _, tc := range []struct {
		name string
		data []byte
		want string
	}{
		{"not a zip", []byte("hello, world"), "not a zip archive"},
		{"truncated zip", good[:len(good)-10], "truncated"},
		{"corrupt member", corrupt, "member features.npy"},
		{"bad npy member", testkit.Zip(t, testkit.ZipMember{Name: "x.npy", Data: []byte("\x93NUMPY\x01")}), "member x.npy: truncated .npy header"},
		{"duplicate array", testkit.Zip(t, testkit.ZipMember{Name: "x.npy", Data: nil}, testkit.ZipMember{Name: "x", Data: nil}), `array "x" appears twice`},
	} {
		_, err := ParseNPZ(tc.data)
		if err == nil {
			t.Errorf("%s: no error", tc.name)
			continue
		}
		if !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: error %q does not mention %q", tc.name, err, tc.want)
		}
	}
}

func TestNPZImplausibleSize(t *testing.T) {
	// Stored members whose central directory entries claim 2 GB: refused
	// before any buffer is made.
	data := smallBundle(t, false)
	for off := 0; ; off += 4 {
		i := bytes.Index(data[off:], []byte("PK\x01\x02"))
		if i < 0 {
			break
		}
		off += i
		binary.LittleEndian.PutUint32(data[off+24:], 0x7fffffff) // uncompressed size
	}
	_, err := ParseNPZ(data)
	if err == nil || !strings.Contains(err.Error(), "more than the archive can inflate to") {
		t.Errorf("got %v, want a size error", err)
	}
}

func TestNPZMissingMember(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "wrong.npz")
	if err := os.WriteFile(path, smallBundle(t, false, "feats.npy", "y.npy"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, _, err := ReadFeatures(path)
	if err == nil {
		t.Fatal("no error for an archive without features")
	}
	for _, want := range []string{path, `no array "features"`, "has: feats, y"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not mention %q", err, want)
		}
	}

	// Features present, labels under another name.
	if err := os.WriteFile(path, smallBundle(t, false, "features.npy", "y.npy"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, _, err := ReadFeatures(path); err == nil || !strings.Contains(err.Error(), `no array "labels" (has: features, y)`) {
		t.Errorf("got %v, want an error naming the missing labels", err)
	}
}

func TestNPZOverlappingMembers(t *testing.T) {
	// A zip bomb: 200 directory entries share one deflated member of 1 MB,
	// which compresses to about 1 KB. Each entry alone looks reasonable;
	// together they would inflate to 200 MB from a 13 KB file.
	npy := testkit.NPY(1, testkit.NPYHeader("<f4", false, "(262144,)"), make([]byte, 1<<20))
	data := testkit.Zip(t, testkit.ZipMember{Name: "a000.npy", Data: npy, Deflate: true})
	dirStart := bytes.Index(data, []byte("PK\x01\x02"))
	end := bytes.Index(data, []byte("PK\x05\x06"))
	entry := data[dirStart:end]
	var dir []byte
	const copies = 200
	for i := range copies {
		e := slices.Clone(entry)
		copy(e[46:], fmt.Sprintf("a%03d", i)) // the name follows the 46-byte fixed part
		dir = append(dir, e...)
	}
	eocd := slices.Clone(data[end:])
	binary.LittleEndian.PutUint16(eocd[8:], copies)
	binary.LittleEndian.PutUint16(eocd[10:], copies)
	binary.LittleEndian.PutUint32(eocd[12:], uint32(len(dir)))
	bomb := append(append(slices.Clone(data[:dirStart]), dir...), eocd...)

	z, err := openNPZ(bomb)
	if err != nil {
		t.Fatal(err)
	}
	if len(z.names) != copies {
		t.Fatalf("%d members, want %d", len(z.names), copies)
	}
	if m, err := z.open("a000", nil); err != nil {
		t.Fatalf("one member alone is fine: %v", err)
	} else if _, err := m.read(); err != nil {
		t.Fatalf("one member alone is fine: %v", err)
	}
	if _, err := ParseNPZ(bomb); err == nil || !strings.Contains(err.Error(), "more than the archive can inflate to") {
		t.Errorf("got %v, want the inflation budget to stop the bomb", err)
	}
}
