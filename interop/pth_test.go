package interop

import (
	"encoding/binary"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/unimos/unimos/internal/testkit"
)

// buildPTH lays out a PyTorch archive as torch.save does: data.pkl, the
// storages under data/, and the version and byteorder records, all in one
// folder.
func buildPTH(t testing.TB, prefix string, pkl []byte, records map[string][]byte, byteorder string) []byte {
	t.Helper()
	members := []testkit.ZipMember{{Name: prefix + "/data.pkl", Data: pkl}}
	keys := make([]string, 0, len(records))
	for k := range records {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		members = append(members, testkit.ZipMember{Name: prefix + "/data/" + k, Data: records[k]})
	}
	members = append(members, testkit.ZipMember{Name: prefix + "/version", Data: []byte("3\n")})
	if byteorder != "" {
		members = append(members, testkit.ZipMember{Name: prefix + "/byteorder", Data: []byte(byteorder)})
	}
	return testkit.Zip(t, members...)
}

// featureCache pickles {'fea': HalfTensor [2, 2], 'label': LongTensor [2]}
// as the reference UniMoS code saves its feature cache.
func featureCache() []byte {
	return newPickle(2).raw('}', '(').
		str("fea").tensor("HalfStorage", "0", 4, 0, []int{2, 2}, []int{2, 1}).
		str("label").tensor("LongStorage", "1", 2, 0, []int{2}, []int{1}).
		raw('u').done()
}

func TestPTHByteOrder(t *testing.T) {
	// 1, -2, 0.5, 65504 (the largest half) in each byte order.
	halves := []uint16{0x3c00, 0xc000, 0x3800, 0x7bff}
	for _, order := range []binary.ByteOrder{binary.LittleEndian, binary.BigEndian} {
		name := "little"
		if order == binary.BigEndian {
			name = "big"
		}
		data := buildPTH(t, "archive", featureCache(), map[string][]byte{
			"0": encode(order, halves),
			"1": encode(order, []int64{3, -1}),
		}, name)
		arrays, err := ParsePTH(data)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if f := arrays["fea"]; !slices.Equal(f.Shape, []int{2, 2}) || !slices.Equal(f.Float32, []float32{1, -2, 0.5, 65504}) {
			t.Errorf("%s: fea %v %v", name, f.Shape, f.Float32)
		}
		if l := arrays["label"]; !slices.Equal(l.Int64, []int64{3, -1}) {
			t.Errorf("%s: label %v", name, l.Int64)
		}
	}
}

func TestPTHErrors(t *testing.T) {
	st := map[string][]byte{"0": make([]byte, 8), "1": make([]byte, 16)}
	for _, tc := range []struct {
		name, want string
		data       []byte
	}{
		{"a bare pickle", "not a PyTorch file", featureCache()},
		{"neither zip nor legacy", "not a PyTorch file", []byte("PK garbage")},
		{"not a zip", "not a zip archive", []byte("PK\x03\x04 garbage")},
		{"no data.pkl", "found 0", testkit.Zip(t, testkit.ZipMember{Name: "archive/other.pkl", Data: featureCache()})},
		{"data.pkl at the top", "found 0", testkit.Zip(t, testkit.ZipMember{Name: "data.pkl", Data: featureCache()})},
		{"two data.pkl", "found 2", testkit.Zip(t, testkit.ZipMember{Name: "a/data.pkl", Data: nil}, testkit.ZipMember{Name: "b/data.pkl", Data: nil})},
		{"missing storage", "no record archive/data/1 in the archive", buildPTH(t, "archive", featureCache(), map[string][]byte{"0": st["0"]}, "")},
		{"bad byteorder", `holds "middle"`, buildPTH(t, "archive", featureCache(), st, "middle")},
	} {
		_, err := ParsePTH(tc.data)
		if err == nil {
			t.Errorf("%s: no error", tc.name)
			continue
		}
		if !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: error %q does not mention %q", tc.name, err, tc.want)
		}
	}
}

func TestReadPTHRefusesUnsafePickle(t *testing.T) {
	// The fixture's storages with a data.pkl that would run a shell command.
	_, records := fixturePickle(t)
	evil := newPickle(2).global("os", "system").str("touch /tmp/pwned").raw(0x85, 'R').done()
	path := filepath.Join(t.TempDir(), "reference_cache.pth")
	if err := os.WriteFile(path, buildPTH(t, "reference_cache", evil, records, ""), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := ReadPTH(path)
	if !errors.Is(err, ErrUnsafePickle) {
		t.Fatalf("got %v, want ErrUnsafePickle", err)
	}
	for _, want := range []string{path, "GLOBAL", "os.system", "refused for safety"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not mention %q", err, want)
		}
	}
	if _, _, err := ReadFeatures(path); !errors.Is(err, ErrUnsafePickle) {
		t.Errorf("ReadFeatures: got %v, want ErrUnsafePickle", err)
	}
}

func TestReadFeaturesAndMatrixDispatch(t *testing.T) {
	dir := t.TempDir()
	write := func(name string, data []byte) string {
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, data, 0o644); err != nil {
			t.Fatal(err)
		}
		return path
	}
	st := map[string][]byte{
		"0": encode(le, []uint16{0x3c00, 0x4000, 0x4200, 0x4400}), // 1, 2, 3, 4
		"1": encode(le, []int64{0, 1}),
	}
	cache := buildPTH(t, "cache", featureCache(), st, "little")

	// .pt is a .pth by another name.
	features, labels, err := ReadFeatures(write("cache.PT", cache))
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(features.Float32, []float32{1, 2, 3, 4}) || !slices.Equal(labels.Int64, []int64{0, 1}) {
		t.Errorf("got %v %v", features.Float32, labels.Int64)
	}

	// A dict with the features alone: an unlabelled domain.
	noLabel := newPickle(2).raw('}').str("fea").tensor("HalfStorage", "0", 4, 0, []int{2, 2}, []int{2, 1}).raw('s').done()
	path := write("nolabel.pth", buildPTH(t, "nolabel", noLabel, st, ""))
	if f, l, err := ReadFeatures(path); err != nil || l != nil || !slices.Equal(f.Shape, []int{2, 2}) {
		t.Errorf("features alone: got %v, %v, %v; want features and nil labels", f, l, err)
	}
	// A dict with the features and a misnamed labels entry is an error.
	misnamed := newPickle(2).raw('}').str("fea").tensor("HalfStorage", "0", 4, 0, []int{2, 2}, []int{2, 1}).raw('s').
		str("labels").tensor("LongStorage", "1", 2, 0, []int{2}, []int{1}).raw('s').done()
	if _, _, err := ReadFeatures(write("misnamed.pth", buildPTH(t, "misnamed", misnamed, st, ""))); err == nil ||
		!strings.Contains(err.Error(), `no array "label" (has: fea, labels)`) {
		t.Errorf("misnamed labels: got %v", err)
	}
	// ...which ReadMatrix accepts as the only tensor.
	if m, err := ReadMatrix(path); err != nil || !slices.Equal(m.Shape, []int{2, 2}) {
		t.Errorf("ReadMatrix of a one-tensor dict: got %v, %v", m, err)
	}

	// A tensor saved alone.
	alone := newPickle(2).tensor("HalfStorage", "0", 4, 0, []int{2, 2}, []int{1, 2}).done()
	m, err := ReadMatrix(write("text.pth", buildPTH(t, "text", alone, st, "")))
	if err != nil || !slices.Equal(m.Float32, []float32{1, 3, 2, 4}) {
		t.Errorf("ReadMatrix of a lone tensor: got %v, %v", m, err)
	}

	// text_features is preferred among several arrays.
	text := testkit.NPY(1, testkit.NPYHeader("<f4", false, "(1, 2)"), encode(le, []float32{9, 8}))
	other := testkit.NPY(1, testkit.NPYHeader("<f4", false, "(1, 1)"), encode(le, float32(7)))
	m, err = ReadMatrix(write("text.npz", testkit.Zip(t, testkit.ZipMember{Name: "other.npy", Data: other, Deflate: true}, testkit.ZipMember{Name: "text_features.npy", Data: text, Deflate: true})))
	if err != nil || !slices.Equal(m.Float32, []float32{9, 8}) {
		t.Errorf("ReadMatrix of text_features: got %v, %v", m, err)
	}

	// Labels that do not match the features.
	bad := testkit.Zip(t,
		testkit.ZipMember{Name: "features.npy", Data: text},
		testkit.ZipMember{Name: "labels.npy", Data: testkit.NPY(1, testkit.NPYHeader("<i8", false, "(2,)"), make([]byte, 16))})
	if _, _, err := ReadFeatures(write("bad.npz", bad)); err == nil || !strings.Contains(err.Error(), "labels: want a 1-D integer array [1]") {
		t.Errorf("mismatched labels: got %v", err)
	}
	// Integer features.
	ints := testkit.NPY(1, testkit.NPYHeader("<i4", false, "(1, 2)"), make([]byte, 8))
	if _, _, err := ReadFeatures(write("ints.npy", ints)); err == nil || !strings.Contains(err.Error(), "want a 2-D float array") {
		t.Errorf("integer features: got %v", err)
	}

	if _, _, err := ReadFeatures(write("features.csv", nil)); err == nil || !strings.Contains(err.Error(), `unknown file type ".csv"`) {
		t.Errorf("unknown extension: got %v", err)
	}
	if _, err := ReadMatrix(filepath.Join(dir, "absent.npz")); err == nil || !strings.Contains(err.Error(), "absent.npz") {
		t.Errorf("missing file: got %v", err)
	}
}
