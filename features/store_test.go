package features

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/unimos/unimos/internal/shareddata"
	"github.com/unimos/unimos/internal/testkit"
	"github.com/unimos/unimos/tensor"
)

// rawTensor is one tensor of a hand-assembled safetensors file.
type rawTensor struct {
	name, dtype string
	shape       []int
	data        []byte
}

// rawSafetensors assembles a safetensors file byte by byte, independently of
// the safetensors package's writer (and unpadded, which readers must accept).
func rawSafetensors(tensors ...rawTensor) []byte {
	var entries []string
	var body []byte
	for _, t := range tensors {
		shape := strings.Join(strings.Fields(fmt.Sprint(t.shape)), ",")
		entries = append(entries, fmt.Sprintf(`"%s":{"dtype":"%s","shape":%s,"data_offsets":[%d,%d]}`,
			t.name, t.dtype, shape, len(body), len(body)+len(t.data)))
		body = append(body, t.data...)
	}
	header := "{" + strings.Join(entries, ",") + "}"
	out := binary.LittleEndian.AppendUint64(nil, uint64(len(header)))
	return append(append(out, header...), body...)
}

func f32Bytes(values ...float32) []byte {
	var out []byte
	for _, v := range values {
		out = binary.LittleEndian.AppendUint32(out, math.Float32bits(v))
	}
	return out
}

func i64Bytes(values ...int64) []byte {
	var out []byte
	for _, v := range values {
		out = binary.LittleEndian.AppendUint64(out, uint64(v))
	}
	return out
}

func f32Tensor(name string, rows, cols int, values ...float32) rawTensor {
	return rawTensor{name, "F32", []int{rows, cols}, f32Bytes(values...)}
}

func labelTensor(values ...int64) rawTensor {
	return rawTensor{"labels", "I64", []int{len(values)}, i64Bytes(values...)}
}

// testDataset is the dataset.json used by the hand-made stores: dim 2, K 3.
const testDataset = `{"name":"toy","backbone":"none","dim":2,"classes":["a","b","c"],"domains":["src","tgt"]}`

// makeStore writes dataset.json and the given files (relative path ->
// content) into a fresh directory.
func makeStore(t *testing.T, dataset string, files map[string][]byte) string {
	t.Helper()
	dir := t.TempDir()
	files[DatasetFile] = []byte(dataset)
	for name, data := range files {
		path := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// openStore opens dir with warnings collected into the returned slice.
func openStore(t *testing.T, dir string) (*Store, *[]string) {
	t.Helper()
	s, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	var warnings []string
	s.Warn = func(msg string) { warnings = append(warnings, msg) }
	return s, &warnings
}

// wantError fails unless err mentions every fragment.
func wantError(t *testing.T, err error, fragments ...string) {
	t.Helper()
	if err == nil {
		t.Fatalf("no error, want one mentioning %q", fragments)
	}
	for _, f := range fragments {
		if !strings.Contains(err.Error(), f) {
			t.Fatalf("error %q does not mention %q", err, f)
		}
	}
}

// TestIndependentStore reads a store assembled byte by byte: F16 features
// with known encodings, I64 labels, F32 text features and a paths file.
func TestIndependentStore(t *testing.T) {
	// Rows (1, 0), (0, -1), (0.5, 0.5)·√2 is not exact in F16, so use
	// (-1, 0) instead; all three have exact binary16 encodings.
	f16 := []byte{0x00, 0x3c, 0x00, 0x00, 0x00, 0x00, 0x00, 0xbc, 0x00, 0xbc, 0x00, 0x00}
	dir := makeStore(t, testDataset, map[string][]byte{
		"src.safetensors": rawSafetensors(rawTensor{"features", "F16", []int{3, 2}, f16}, labelTensor(2, -1, 0)),
		"src.paths.txt":   []byte("img/a.jpg\nimg/b.jpg\r\nimg/c.jpg\n"),
		"text/src.safetensors": rawSafetensors(f32Tensor("text_features", 3, 2,
			0.6, 0.8, -0.8, 0.6, 0, 1)),
	})
	s, warnings := openStore(t, dir)
	if s.Meta.Name != "toy" || s.Meta.Backbone != "none" || s.Meta.Dim != 2 ||
		!slices.Equal(s.Meta.Classes, []string{"a", "b", "c"}) || !slices.Equal(s.Meta.Domains, []string{"src", "tgt"}) {
		t.Fatalf("Meta = %+v", s.Meta)
	}
	d, err := s.Domain("src")
	if err != nil {
		t.Fatal(err)
	}
	if d.Name != "src" || d.DType != F16 {
		t.Errorf("domain %q dtype %q", d.Name, d.DType)
	}
	if want := []float32{1, 0, 0, -1, -1, 0}; !slices.Equal(d.Features.Data, want) || d.Features.Rows != 3 || d.Features.Cols != 2 {
		t.Errorf("features %dx%d %v, want 3x2 %v", d.Features.Rows, d.Features.Cols, d.Features.Data, want)
	}
	if !slices.Equal(d.Labels, []int{2, -1, 0}) {
		t.Errorf("labels %v", d.Labels)
	}
	if !slices.Equal(d.Paths, []string{"img/a.jpg", "img/b.jpg", "img/c.jpg"}) {
		t.Errorf("paths %q", d.Paths)
	}
	text, err := s.Text("src")
	if err != nil {
		t.Fatal(err)
	}
	if want := []float32{0.6, 0.8, -0.8, 0.6, 0, 1}; !slices.Equal(text.Data, want) {
		t.Errorf("text %v, want %v", text.Data, want)
	}
	if len(*warnings) != 0 {
		t.Errorf("unexpected warnings %q", *warnings)
	}
}

func TestOpenValidation(t *testing.T) {
	cases := []struct {
		name, dataset, want string
	}{
		{"invalid JSON", `{"dim": 2,`, "invalid JSON"},
		{"wrong type", `{"dim": "two"}`, "invalid JSON"},
		{"dim missing", `{"classes":["a"],"domains":["d"]}`, "dim must be positive"},
		{"dim negative", `{"dim":-3,"classes":["a"],"domains":["d"]}`, "dim must be positive, got -3"},
		{"classes missing", `{"dim":2,"domains":["d"]}`, "classes is empty"},
		{"classes empty", `{"dim":2,"classes":[],"domains":["d"]}`, "classes is empty"},
		{"class repeated", `{"dim":2,"classes":["a","b","a"],"domains":["d"]}`, `classes[2] = "a" repeats classes[0]`},
		{"class name empty", `{"dim":2,"classes":["a",""],"domains":["d"]}`, "classes[1] is an empty name"},
		{"domains empty", `{"dim":2,"classes":["a"],"domains":[]}`, "domains is empty"},
		{"domain repeated", `{"dim":2,"classes":["a"],"domains":["d","d"]}`, `domains[1] = "d" repeats domains[0]`},
		{"domain not a file name", `{"dim":2,"classes":["a"],"domains":["x/y"]}`, "cannot be used as a file name"},
		{"domain dot-dot", `{"dim":2,"classes":["a"],"domains":[".."]}`, "cannot be used as a file name"},
		{"unknown precision", `{"dim":2,"classes":["a"],"domains":["d"],"precision":"fp16"}`, `precision "fp16"; want f32 or bf16`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir := makeStore(t, c.dataset, map[string][]byte{})
			_, err := Open(dir)
			wantError(t, err, filepath.Join(dir, DatasetFile), c.want)
		})
	}
}

// TestOpenNotAStore gives Open what is not a store: the error says what the
// path is and, for images or a file, which command makes a store of it.
func TestOpenNotAStore(t *testing.T) {
	tmp := t.TempDir()
	// root/<Domain>/<Class>/<image>, as extract reads it; the images need
	// only their names here.
	root := filepath.Join(tmp, "photos")
	for _, name := range []string{"Art/Drill/1.jpg", "Art/Drill/2.JPEG", "Clipart/Pen/3.png", "notes.txt"} {
		testkit.WriteFile(t, filepath.Join(root, name), nil)
	}
	// A link to a domain folder counts, as extract follows links.
	linked := filepath.Join(tmp, "linked")
	testkit.WriteFile(t, filepath.Join(tmp, "linked-target", "Art", "Drill", "1.jpg"), nil)
	if err := os.Mkdir(linked, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(filepath.Join(tmp, "linked-target", "Art"), filepath.Join(linked, "Art")); err != nil {
		t.Fatal(err)
	}
	spaced := filepath.Join(tmp, "my photos")
	testkit.WriteFile(t, filepath.Join(spaced, "Art", "Drill", "1.jpg"), nil)
	// Images deeper than ROOT/<Domain>/<Class>/ and hidden ones give no hint.
	deep := filepath.Join(tmp, "deep")
	testkit.WriteFile(t, filepath.Join(deep, "a", "b", "c", "1.jpg"), nil)
	testkit.WriteFile(t, filepath.Join(deep, ".cache", "1.jpg"), nil)
	others := filepath.Join(tmp, "others")
	testkit.WriteFile(t, filepath.Join(others, "sub", "readme.md"), nil)
	npy := filepath.Join(tmp, "Art.npy")
	testkit.WriteFile(t, npy, []byte("\x93NUMPY"))
	empty := filepath.Join(tmp, "empty")
	if err := os.Mkdir(empty, 0o755); err != nil {
		t.Fatal(err)
	}
	missing := filepath.Join(tmp, "absent")

	notStore := func(dir string) string { return dir + " is not a feature store (no dataset.json)" }
	cases := []struct {
		name, dir string
		want      []string
		notExist  bool // errors.Is(err, fs.ErrNotExist): a writer may create a store there
	}{
		{"image root", root, []string{notStore(root), "unimos extract --images " + root + " --weights WEIGHTS --out STORE"}, true},
		{"one domain", filepath.Join(root, "Art"),
			[]string{notStore(filepath.Join(root, "Art")), "unimos extract --images " + root + " --domains Art --weights WEIGHTS --out STORE"}, true},
		{"one class", filepath.Join(root, "Art", "Drill"),
			[]string{notStore(filepath.Join(root, "Art", "Drill")), "it holds images", "ROOT/<Domain>/<Class>/", "unimos extract --images ROOT"}, true},
		{"linked domains", linked, []string{"unimos extract --images " + linked + " "}, true},
		{"space in the name", spaced, []string{"unimos extract --images '" + spaced + "' "}, true},
		{"images too deep", deep, []string{notStore(deep)}, true},
		{"no images", others, []string{notStore(others)}, true},
		{"empty folder", empty, []string{notStore(empty)}, true},
		{"a file", npy, []string{npy + " is a file, not a feature store (a folder with dataset.json)",
			"unimos import --from " + npy + " --domain NAME --out STORE"}, false},
		{"missing", missing, []string{"features: open " + filepath.Join(missing, DatasetFile), "no such file"}, true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := Open(c.dir)
			wantError(t, err, c.want...)
			if errors.Is(err, fs.ErrNotExist) != c.notExist {
				t.Errorf("errors.Is(%q, fs.ErrNotExist) = %v, want %v", err, !c.notExist, c.notExist)
			}
			hint := strings.Contains(err.Error(), "unimos ")
			if wantHint := strings.Contains(strings.Join(c.want, " "), "unimos "); hint != wantHint {
				t.Errorf("error %q: suggests a command: %v, want %v", err, hint, wantHint)
			}
		})
	}
}

// validSrc is a well-formed src domain file: 2 rows of dim 2.
func validSrc() []byte {
	return rawSafetensors(f32Tensor("features", 2, 2, 1, 0, 0, 1), labelTensor(0, 1))
}

func TestDomainValidation(t *testing.T) {
	cases := []struct {
		name string
		file []byte
		want []string
	}{
		{"features missing", rawSafetensors(labelTensor(0)), []string{`no tensor "features"`}},
		{"features 1-D", rawSafetensors(rawTensor{"features", "F32", []int{2}, f32Bytes(1, 0)}, labelTensor(0)),
			[]string{"shape [2]", "want 2-D"}},
		{"features 3-D", rawSafetensors(rawTensor{"features", "F32", []int{1, 1, 2}, f32Bytes(1, 0)}, labelTensor(0)),
			[]string{"shape [1 1 2]"}},
		{"features BF16", rawSafetensors(rawTensor{"features", "BF16", []int{1, 2}, []byte{0x80, 0x3f, 0, 0}}, labelTensor(0)),
			[]string{"dtype BF16", "F16 or F32"}},
		{"features F64", rawSafetensors(rawTensor{"features", "F64", []int{1, 2}, make([]byte, 16)}, labelTensor(0)),
			[]string{"dtype F64", "F16 or F32"}},
		{"dim disagrees with dataset.json", rawSafetensors(f32Tensor("features", 1, 3, 1, 0, 0), labelTensor(0)),
			[]string{"dim 3", "says 2"}},
		{"zero rows", rawSafetensors(f32Tensor("features", 0, 2), labelTensor()), []string{"has no rows"}},
		{"labels missing", rawSafetensors(f32Tensor("features", 1, 2, 1, 0)), []string{`no tensor "labels"`}},
		{"labels F32", rawSafetensors(f32Tensor("features", 1, 2, 1, 0), rawTensor{"labels", "F32", []int{1}, f32Bytes(0)}),
			[]string{"dtype F32", "want I64"}},
		{"labels too short", rawSafetensors(f32Tensor("features", 2, 2, 1, 0, 0, 1), labelTensor(0)),
			[]string{"shape [1]", "want [2]"}},
		{"labels 2-D", rawSafetensors(f32Tensor("features", 2, 2, 1, 0, 0, 1), rawTensor{"labels", "I64", []int{2, 1}, i64Bytes(0, 1)}),
			[]string{"shape [2 1]"}},
		{"label equals K", rawSafetensors(f32Tensor("features", 2, 2, 1, 0, 0, 1), labelTensor(0, 3)),
			[]string{"row 1 is 3", "outside [-1, 3)"}},
		{"label below -1", rawSafetensors(f32Tensor("features", 2, 2, 1, 0, 0, 1), labelTensor(-2, 0)),
			[]string{"row 0 is -2"}},
		{"NaN in a row", rawSafetensors(f32Tensor("features", 2, 2, 1, 0, float32(math.NaN()), 1), labelTensor(0, 1)),
			[]string{"row 1 contains NaN or Inf"}},
		{"Inf in a row", rawSafetensors(f32Tensor("features", 2, 2, float32(math.Inf(-1)), 0, 0, 1), labelTensor(0, 1)),
			[]string{"row 0 contains NaN or Inf"}},
		{"all-zero row", rawSafetensors(f32Tensor("features", 2, 2, 1, 0, 0, 0), labelTensor(0, 1)),
			[]string{"row 1 is all zeros"}},
		{"not safetensors", []byte("hello"), []string{"shorter than the 8-byte"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir := makeStore(t, testDataset, map[string][]byte{"src.safetensors": c.file})
			s, _ := openStore(t, dir)
			_, err := s.Domain("src")
			wantError(t, err, append([]string{filepath.Join(dir, "src.safetensors")}, c.want...)...)
		})
	}
}

func TestDomainLabelsI32(t *testing.T) {
	labels := rawTensor{"labels", "I32", []int{2}, []byte{2, 0, 0, 0, 0xff, 0xff, 0xff, 0xff}}
	dir := makeStore(t, testDataset, map[string][]byte{
		"src.safetensors": rawSafetensors(f32Tensor("features", 2, 2, 1, 0, 0, 1), labels),
	})
	s, _ := openStore(t, dir)
	d, err := s.Domain("src")
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(d.Labels, []int{2, -1}) {
		t.Errorf("labels %v, want [2 -1]", d.Labels)
	}
}

func TestDomainUnknownName(t *testing.T) {
	s, _ := openStore(t, makeStore(t, testDataset, map[string][]byte{}))
	_, err := s.Domain("clipart")
	wantError(t, err, `"clipart"`, "available: src, tgt")
	_, err = s.Text("clipart")
	wantError(t, err, "available: src, tgt")
	_, err = s.Summary("clipart")
	wantError(t, err, "available: src, tgt")
}

func TestDomainMissingFile(t *testing.T) {
	dir := makeStore(t, testDataset, map[string][]byte{})
	s, _ := openStore(t, dir)
	_, err := s.Domain("tgt")
	wantError(t, err, filepath.Join(dir, "tgt.safetensors"))
	if !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("%v is not fs.ErrNotExist", err)
	}
}

// TestDomainNormalisesOnce checks that off-norm rows are rescaled to unit
// norm and reported in a single warning naming the file.
func TestDomainNormalisesOnce(t *testing.T) {
	dir := makeStore(t, testDataset, map[string][]byte{
		"src.safetensors": rawSafetensors(f32Tensor("features", 3, 2, 3, 4, 0, 1, 0, 0.5), labelTensor(0, 1, 2)),
	})
	s, warnings := openStore(t, dir)
	d, err := s.Domain("src")
	if err != nil {
		t.Fatal(err)
	}
	want := []float32{0.6, 0.8, 0, 1, 0, 1}
	for i, v := range d.Features.Data {
		if math.Abs(float64(v-want[i])) > 1e-6 {
			t.Fatalf("features %v, want %v", d.Features.Data, want)
		}
	}
	if len(*warnings) != 1 {
		t.Fatalf("%d warnings %q, want exactly 1", len(*warnings), *warnings)
	}
	for _, f := range []string{filepath.Join(dir, "src.safetensors"), "has 2 rows not unit-norm out of 3", "worst norm 5"} {
		if !strings.Contains((*warnings)[0], f) {
			t.Errorf("warning %q does not mention %q", (*warnings)[0], f)
		}
	}
}

// TestDomainNormWithinTolerance checks that rows within NormTolerance are
// left untouched and produce no warning.
func TestDomainNormWithinTolerance(t *testing.T) {
	dir := makeStore(t, testDataset, map[string][]byte{
		"src.safetensors": rawSafetensors(f32Tensor("features", 1, 2, 1.0005, 0), labelTensor(0)),
	})
	s, warnings := openStore(t, dir)
	d, err := s.Domain("src")
	if err != nil {
		t.Fatal(err)
	}
	if d.Features.Data[0] != 1.0005 || len(*warnings) != 0 {
		t.Errorf("features %v, warnings %q", d.Features.Data, *warnings)
	}
}

// TestDefaultWarnWritesStderr checks the default warning sink.
func TestDefaultWarnWritesStderr(t *testing.T) {
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	stderr := os.Stderr
	os.Stderr = w
	(&Store{}).warn("rows fixed")
	os.Stderr = stderr
	w.Close()
	got, _ := io.ReadAll(r)
	r.Close()
	if string(got) != "warning: rows fixed\n" {
		t.Errorf("stderr got %q", got)
	}
}

func TestPathsValidation(t *testing.T) {
	cases := map[string]string{
		"too few lines":  "a.jpg\n",
		"too many lines": "a.jpg\nb.jpg\nc.jpg\n",
		"empty file":     "",
		"empty line":     "a.jpg\n\nb.jpg\n",
	}
	wants := map[string]string{
		"too few lines":  "1 path for 2 feature rows",
		"too many lines": "3 paths for 2 feature rows",
		"empty file":     "0 paths for 2 feature rows",
		"empty line":     "line 2 is empty",
	}
	for name, content := range cases {
		t.Run(name, func(t *testing.T) {
			dir := makeStore(t, testDataset, map[string][]byte{
				"src.safetensors": validSrc(),
				"src.paths.txt":   []byte(content),
			})
			s, _ := openStore(t, dir)
			_, err := s.Domain("src")
			wantError(t, err, filepath.Join(dir, "src.paths.txt"), wants[name])
		})
	}
	t.Run("no trailing newline", func(t *testing.T) {
		dir := makeStore(t, testDataset, map[string][]byte{
			"src.safetensors": validSrc(),
			"src.paths.txt":   []byte("a.jpg\nb.jpg"),
		})
		s, _ := openStore(t, dir)
		d, err := s.Domain("src")
		if err != nil || !slices.Equal(d.Paths, []string{"a.jpg", "b.jpg"}) {
			t.Errorf("paths %q, err %v", d.Paths, err)
		}
	})
}

func TestTextValidation(t *testing.T) {
	unit := []float32{1, 0, 0, 1, 0.6, 0.8}
	cases := []struct {
		name string
		file []byte
		want []string
	}{
		{"tensor missing", rawSafetensors(f32Tensor("features", 3, 2, unit...)), []string{`no tensor "text_features"`}},
		{"K differs from classes", rawSafetensors(f32Tensor("text_features", 2, 2, unit[:4]...)),
			[]string{"has 2 rows; want 3"}},
		{"dim differs", rawSafetensors(f32Tensor("text_features", 2, 3, unit...)), []string{"dim 3", "says 2"}},
		{"I64 dtype", rawSafetensors(rawTensor{"text_features", "I64", []int{3, 2}, make([]byte, 48)}),
			[]string{"dtype I64", "F16 or F32"}},
		{"NaN", rawSafetensors(f32Tensor("text_features", 3, 2, 1, 0, 0, 1, float32(math.NaN()), 0)),
			[]string{"row 2 contains NaN or Inf"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir := makeStore(t, testDataset, map[string][]byte{"text/src.safetensors": c.file})
			s, _ := openStore(t, dir)
			_, err := s.Text("src")
			wantError(t, err, append([]string{filepath.Join(dir, "text", "src.safetensors")}, c.want...)...)
		})
	}
	t.Run("missing file", func(t *testing.T) {
		dir := makeStore(t, testDataset, map[string][]byte{})
		s, _ := openStore(t, dir)
		_, err := s.Text("tgt")
		wantError(t, err, "expected "+filepath.Join(dir, "text", "tgt.safetensors"))
		if !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("%v is not fs.ErrNotExist", err)
		}
	})
	t.Run("normalised with one warning", func(t *testing.T) {
		dir := makeStore(t, testDataset, map[string][]byte{
			"text/src.safetensors": rawSafetensors(f32Tensor("text_features", 3, 2, 2, 0, 0, 3, 0.6, 0.8)),
		})
		s, warnings := openStore(t, dir)
		text, err := s.Text("src")
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(text.Data, []float32{1, 0, 0, 1, 0.6, 0.8}) || len(*warnings) != 1 {
			t.Errorf("text %v, warnings %q", text.Data, *warnings)
		}
	})
}

func TestRoundTrip(t *testing.T) {
	meta := Dataset{Name: "rt", Backbone: "ViT-B/16", Dim: 8, Classes: []string{"x", "y", "z"}, Domains: []string{"a", "b"}}
	for _, dtype := range []DType{F16, F32, ""} {
		t.Run("dtype "+string(dtype), func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "store")
			if err := WriteDataset(dir, meta); err != nil {
				t.Fatal(err)
			}
			feats := testkit.UnitRows(5, 8, 7)
			in := &Domain{
				Name:     "a",
				Features: feats,
				Labels:   []int{0, 2, -1, 1, 1},
				Paths:    []string{"p0", "p 1", "dir/p2.png", "p3", "p4"},
				DType:    dtype,
				Metadata: map[string]string{"model": "clip"},
			}
			if err := WriteDomain(dir, in); err != nil {
				t.Fatal(err)
			}
			text := testkit.UnitRows(3, 8, 9)
			if err := WriteText(dir, "a", text); err != nil {
				t.Fatal(err)
			}
			s, warnings := openStore(t, dir)
			if !slices.Equal(s.Meta.Classes, meta.Classes) || s.Meta.Backbone != meta.Backbone || s.Meta.Dim != 8 {
				t.Errorf("meta %+v", s.Meta)
			}
			out, err := s.Domain("a")
			if err != nil {
				t.Fatal(err)
			}
			wantType := dtype
			if wantType == "" {
				wantType = F16
			}
			// F32 must be exact; F16 keeps 11 significant bits.
			tol := 0.0
			if wantType == F16 {
				tol = 0x1p-11
			}
			if out.DType != wantType {
				t.Errorf("dtype %q, want %q", out.DType, wantType)
			}
			for i, v := range out.Features.Data {
				if d := math.Abs(float64(v - feats.Data[i])); d > tol*math.Abs(float64(feats.Data[i])) {
					t.Fatalf("feature %d = %g, want %g", i, v, feats.Data[i])
				}
			}
			if !slices.Equal(out.Labels, in.Labels) || !slices.Equal(out.Paths, in.Paths) || out.Metadata["model"] != "clip" {
				t.Errorf("labels %v paths %q metadata %v", out.Labels, out.Paths, out.Metadata)
			}
			gotText, err := s.Text("a")
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(gotText.Data, text.Data) {
				t.Errorf("text features differ")
			}
			if len(*warnings) != 0 {
				t.Errorf("warnings %q", *warnings)
			}
			assertNoTempFiles(t, dir)
		})
	}
}

func TestWriteDomainStridedAndStalePaths(t *testing.T) {
	dir := t.TempDir()
	if err := WriteDataset(dir, Dataset{Dim: 2, Classes: []string{"c"}, Domains: []string{"d"}}); err != nil {
		t.Fatal(err)
	}
	wide := tensor.FromSlice(2, 3, []float32{1, 0, 99, 0, -1, 99})
	d := &Domain{Name: "d", Features: wide.Slice(0, 2, 0, 2), Labels: []int{0, 0}, Paths: []string{"a", "b"}, DType: F32}
	if err := WriteDomain(dir, d); err != nil {
		t.Fatal(err)
	}
	d.Paths = nil
	if err := WriteDomain(dir, d); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, "d.paths.txt")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("stale paths file kept: %v", err)
	}
	s, _ := openStore(t, dir)
	got, err := s.Domain("d")
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(got.Features.Data, []float32{1, 0, 0, -1}) || got.Paths != nil {
		t.Errorf("features %v paths %q", got.Features.Data, got.Paths)
	}
}

func TestWriterValidation(t *testing.T) {
	unit := tensor.FromSlice(2, 2, []float32{1, 0, 0, 1})
	cases := []struct {
		name string
		d    *Domain
		want string
	}{
		{"nil domain", nil, "nil domain"},
		{"bad name", &Domain{Name: "a/b", Features: unit, Labels: []int{0, 0}}, "cannot be used as a file name"},
		{"bad dtype", &Domain{Name: "d", Features: unit, Labels: []int{0, 0}, DType: "BF16"}, `dtype "BF16"`},
		{"no features", &Domain{Name: "d", Labels: []int{}}, "missing or empty"},
		{"label count", &Domain{Name: "d", Features: unit, Labels: []int{0}}, "1 label for 2 feature rows"},
		{"label below -1", &Domain{Name: "d", Features: unit, Labels: []int{0, -5}}, "row 1 is -5"},
		{"path count", &Domain{Name: "d", Features: unit, Labels: []int{0, 0}, Paths: []string{"a"}}, "1 path for 2"},
		{"path with newline", &Domain{Name: "d", Features: unit, Labels: []int{0, 0}, Paths: []string{"a", "b\nc"}}, "line break"},
		{"not unit norm", &Domain{Name: "d", Features: tensor.FromSlice(1, 2, []float32{3, 4}), Labels: []int{0}}, "row 0 has norm 5"},
		{"NaN", &Domain{Name: "d", Features: tensor.FromSlice(1, 2, []float32{float32(math.NaN()), 1}), Labels: []int{0}}, "row 0 contains NaN"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			wantError(t, WriteDomain(dir, c.d), c.want)
			if entries, _ := os.ReadDir(dir); len(entries) != 0 {
				t.Errorf("rejected write left %d entries", len(entries))
			}
		})
	}
	dir := t.TempDir()
	wantError(t, WriteText(dir, "d", tensor.FromSlice(1, 2, []float32{0, 0})), "row 0 is all zeros")
	wantError(t, WriteText(dir, "..", unit), "cannot be used as a file name")
	wantError(t, WriteDataset(dir, Dataset{Dim: 0, Classes: []string{"c"}, Domains: []string{"d"}}), "dim must be positive")
	if entries, _ := os.ReadDir(dir); len(entries) != 0 {
		t.Errorf("rejected writes left %d entries", len(entries))
	}
}

// TestWriteFailureLeavesNoTrace makes the final rename fail (the target name
// is a non-empty directory) and checks that nothing else was left behind.
func TestWriteFailureLeavesNoTrace(t *testing.T) {
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, "d.safetensors", "block"), 0o755); err != nil {
		t.Fatal(err)
	}
	d := &Domain{Name: "d", Features: tensor.FromSlice(1, 2, []float32{1, 0}), Labels: []int{0}}
	if err := WriteDomain(dir, d); err == nil {
		t.Fatal("write over a directory succeeded")
	}
	assertNoTempFiles(t, dir)
}

// TestRewriteKeepsOldFileOnError checks that a failed write leaves the
// previous file intact.
func TestRewriteKeepsOldFileOnError(t *testing.T) {
	dir := t.TempDir()
	d := &Domain{Name: "d", Features: tensor.FromSlice(1, 2, []float32{1, 0}), Labels: []int{0}}
	if err := WriteDomain(dir, d); err != nil {
		t.Fatal(err)
	}
	before, _ := os.ReadFile(filepath.Join(dir, "d.safetensors"))
	d.Labels = []int{-7}
	if err := WriteDomain(dir, d); err == nil {
		t.Fatal("accepted label -7")
	}
	after, _ := os.ReadFile(filepath.Join(dir, "d.safetensors"))
	if string(before) != string(after) {
		t.Error("failed write changed the existing file")
	}
	assertNoTempFiles(t, dir)
}

// assertNoTempFiles fails if dir (recursively) holds anything other than
// store files.
func assertNoTempFiles(t *testing.T, dir string) {
	t.Helper()
	filepath.WalkDir(dir, func(path string, e fs.DirEntry, err error) error {
		if err == nil && strings.Contains(e.Name(), ".tmp-") {
			t.Errorf("temporary file left behind: %s", path)
		}
		return err
	})
}

func TestSummary(t *testing.T) {
	dir := makeStore(t, testDataset, map[string][]byte{
		"src.safetensors": rawSafetensors(f32Tensor("features", 4, 2, 1, 0, 0, 1, 1, 0, 0, 1), labelTensor(2, -1, 2, 0)),
		"src.paths.txt":   []byte("a\nb\nc\nd\n"),
	})
	s, _ := openStore(t, dir)
	sum, err := s.Summary("src")
	if err != nil {
		t.Fatal(err)
	}
	if sum.Rows != 4 || sum.DType != F32 || !slices.Equal(sum.ClassCounts, []int{1, 0, 2}) ||
		sum.Unlabelled != 1 || !sum.HasPaths || sum.HasText {
		t.Errorf("summary %+v", sum)
	}
}

func TestParityKit(t *testing.T) {
	s, warnings := openStore(t, shareddata.Dir(t, "parity_kit"))
	if s.Meta.Dim != 512 || len(s.Meta.Classes) != 30 || !slices.Equal(s.Meta.Domains, []string{"photo", "sketch"}) {
		t.Fatalf("meta %+v", s.Meta)
	}
	for domain, rows := range map[string]int{"photo": 1800, "sketch": 2200} {
		d, err := s.Domain(domain)
		if err != nil {
			t.Fatal(err)
		}
		if d.Features.Rows != rows || d.Features.Cols != 512 || d.DType != F16 || len(d.Labels) != rows {
			t.Errorf("%s: %dx%d %s, %d labels", domain, d.Features.Rows, d.Features.Cols, d.DType, len(d.Labels))
		}
		sum, err := s.Summary(domain)
		if err != nil {
			t.Fatal(err)
		}
		total := sum.Unlabelled
		for _, c := range sum.ClassCounts {
			total += c
		}
		if sum.Rows != rows || total != rows || !sum.HasText {
			t.Errorf("%s summary %+v", domain, sum)
		}
		text, err := s.Text(domain)
		if err != nil {
			t.Fatal(err)
		}
		if text.Rows != 30 || text.Cols != 512 {
			t.Errorf("%s text %dx%d", domain, text.Rows, text.Cols)
		}
	}
	if len(*warnings) != 0 {
		t.Errorf("parity kit rows are unit-norm, got warnings %q", *warnings)
	}
}

func BenchmarkDomainParityKit(b *testing.B) {
	s, err := Open(shareddata.Dir(b, "parity_kit"))
	if err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		if _, err := s.Domain("sketch"); err != nil {
			b.Fatal(err)
		}
	}
}

// TestProductPrecision reads the precision a store records, and "f32" from
// stores that record none (written before it was recorded, or imported).
func TestProductPrecision(t *testing.T) {
	for _, tc := range []struct{ dataset, want string }{
		{`{"dim":2,"classes":["a"],"domains":["d"]}`, "f32"},
		{`{"dim":2,"classes":["a"],"domains":["d"],"precision":"f32"}`, "f32"},
		{`{"dim":2,"classes":["a"],"domains":["d"],"precision":"bf16"}`, "bf16"},
	} {
		s, err := Open(makeStore(t, tc.dataset, map[string][]byte{}))
		if err != nil {
			t.Fatal(err)
		}
		if got := s.Meta.ProductPrecision(); got != tc.want {
			t.Errorf("%s: ProductPrecision() = %q, want %q", tc.dataset, got, tc.want)
		}
	}
}
