package main

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/unimos/unimos/features"
	"github.com/unimos/unimos/internal/shareddata"
	"github.com/unimos/unimos/internal/testkit"
)

// writeNPY writes a version 1.0 .npy file following the published format:
// magic, header length, a Python dict literal padded with spaces to a
// multiple of 64 bytes, then the raw little-endian data.
func writeNPY(t *testing.T, path, descr string, shape []int, data []byte) {
	t.Helper()
	dims := make([]string, len(shape))
	for i, d := range shape {
		dims[i] = fmt.Sprint(d)
	}
	tuple := strings.Join(dims, ", ")
	if len(shape) == 1 {
		tuple += ","
	}
	out := testkit.NPY(1, testkit.NPYHeader(descr, false, "("+tuple+")"), data)
	if err := os.WriteFile(path, out, 0o644); err != nil {
		t.Fatal(err)
	}
}

func f32LE(values []float32) []byte {
	var out []byte
	for _, v := range values {
		out = binary.LittleEndian.AppendUint32(out, math.Float32bits(v))
	}
	return out
}

func i64LE(values []int64) []byte {
	var out []byte
	for _, v := range values {
		out = binary.LittleEndian.AppendUint64(out, uint64(v))
	}
	return out
}

// writeMatrixNPY writes a float32 [rows, cols] .npy file.
func writeMatrixNPY(t *testing.T, path string, rows, cols int, values []float32) {
	t.Helper()
	writeNPY(t, path, "<f4", []int{rows, cols}, f32LE(values))
}

// writeLabelsNPY writes an int64 [N] .npy file.
func writeLabelsNPY(t *testing.T, path string, labels []int64) {
	t.Helper()
	writeNPY(t, path, "<i8", []int{len(labels)}, i64LE(labels))
}

// writeLines writes one line per entry.
func writeLines(t *testing.T, path string, lines ...string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(strings.Join(lines, "\n")+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
}

// interopExpected is ../shared/data/interop/expected.json.
type interopExpected struct {
	F32FirstRow []float32 `json:"features_f32_first_row"`
	F16FirstRow []float32 `json:"features_f16_first_row_as_f32"`
	Labels      []int     `json:"labels"`
}

func readInteropExpected(t *testing.T) (string, interopExpected) {
	t.Helper()
	dir := shareddata.Dir(t, "interop")
	raw, err := os.ReadFile(filepath.Join(dir, "expected.json"))
	if err != nil {
		t.Fatal(err)
	}
	var want interopExpected
	if err := json.Unmarshal(raw, &want); err != nil {
		t.Fatal(err)
	}
	return dir, want
}

// importCall runs import and fails the test on an error.
func importCall(t *testing.T, args ...string) (stdout, stderr string) {
	t.Helper()
	err, stdout, stderr := callCommand(runImport, args...)
	if err != nil {
		t.Fatalf("import %q: %v\nstderr: %s", args, err, stderr)
	}
	return stdout, stderr
}

// readDomain opens the store in dir and loads one domain, failing on any
// warning: imported rows must already be unit-norm.
func readDomain(t *testing.T, dir, name string) (*features.Store, *features.Domain) {
	t.Helper()
	s, err := features.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	s.Warn = func(msg string) { t.Errorf("reading %s warns: %s", name, msg) }
	d, err := s.Domain(name)
	if err != nil {
		t.Fatal(err)
	}
	return s, d
}

// TestImportFixtures imports every fixture format into a new store and
// compares what the store reads back with expected.json.
func TestImportFixtures(t *testing.T) {
	dir, want := readInteropExpected(t)
	cases := []struct {
		name, file, labels string
		dtype              features.DType
		firstRow           []float32
	}{
		{"npy f32", "features_f32.npy", "labels.npy", features.F32, want.F32FirstRow},
		{"npy f16", "features_f16.npy", "labels.npy", features.F16, want.F16FirstRow},
		{"npz stored", "bundle.npz", "", features.F32, want.F32FirstRow},
		{"npz deflated", "bundle_compressed.npz", "", features.F32, want.F32FirstRow},
		{"pth", "reference_cache.pth", "", features.F16, want.F16FirstRow},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			store := filepath.Join(t.TempDir(), "store")
			args := []string{"--out", store, "--domain", "d", "--from", filepath.Join(dir, c.file)}
			if c.labels != "" {
				args = append(args, "--labels", filepath.Join(dir, c.labels))
			}
			stdout, stderr := importCall(t, args...)
			if !strings.Contains(stdout, "37 images (37 labelled)") || !strings.Contains(stderr, "5 classes, from the largest label") ||
				!strings.Contains(stderr, "no text features") || strings.Contains(stderr, "L2-normalised") {
				t.Errorf("stdout %q\nstderr %q", stdout, stderr)
			}
			s, d := readDomain(t, store, "d")
			if s.Meta.Dim != 16 || !slices.Equal(s.Meta.Classes, []string{"class_0", "class_1", "class_2", "class_3", "class_4"}) ||
				s.Meta.Name != "store" || s.Meta.Backbone != "unknown" {
				t.Errorf("dataset.json %+v", s.Meta)
			}
			if d.DType != c.dtype || d.Features.Rows != 37 || !slices.Equal(d.Labels, want.Labels) {
				t.Errorf("dtype %s, %d rows, labels %v", d.DType, d.Features.Rows, d.Labels)
			}
			if !slices.Equal(d.Features.Row(0), c.firstRow) {
				t.Errorf("first row %v\nwant      %v", d.Features.Row(0), c.firstRow)
			}
			if got := d.Metadata[importedFromKey]; got != filepath.Join(dir, c.file) {
				t.Errorf("metadata %s = %q", importedFromKey, got)
			}
		})
	}
}

// TestImportIntoExistingStore creates a store with --classes, adds an
// unlabelled domain, then replaces the first domain from another format.
func TestImportIntoExistingStore(t *testing.T) {
	dir, want := readInteropExpected(t)
	tmp := t.TempDir()
	store := filepath.Join(tmp, "store")
	classes := filepath.Join(tmp, "classes.txt")
	// "INDEX NAME" lines, as the reference code's class lists, and a blank line.
	writeLines(t, classes, "0 apple", "1 bottle", "", "2 chair", "3 desk", "4 eraser", "5 fan")
	importCall(t, "--out", store, "--domain", "src", "--from", filepath.Join(dir, "bundle.npz"),
		"--classes", classes, "--name", "office", "--backbone", "ViT-B/16")
	_, stderr := importCall(t, "--out", store, "--domain", "tgt", "--from", filepath.Join(dir, "features_f16.npy"))
	if !strings.Contains(stderr, "no labels") || !strings.Contains(stderr, "unlabelled") {
		t.Errorf("unlabelled import: stderr %q", stderr)
	}
	_, stderr = importCall(t, "--out", store, "--domain", "src", "--from", filepath.Join(dir, "reference_cache.pth"),
		"--dtype", "f32", "--backbone", "ViT-B/16")
	if !strings.Contains(stderr, `replaced the domain "src"`) {
		t.Errorf("replacement: stderr %q", stderr)
	}
	s, src := readDomain(t, store, "src")
	_, tgt := readDomain(t, store, "tgt")
	wantMeta := features.Dataset{Name: "office", Backbone: "ViT-B/16", Dim: 16,
		Classes: []string{"apple", "bottle", "chair", "desk", "eraser", "fan"}, Domains: []string{"src", "tgt"}}
	if s.Meta.Name != wantMeta.Name || s.Meta.Backbone != wantMeta.Backbone || s.Meta.Dim != wantMeta.Dim ||
		!slices.Equal(s.Meta.Classes, wantMeta.Classes) || !slices.Equal(s.Meta.Domains, wantMeta.Domains) {
		t.Errorf("dataset.json %+v\nwant %+v", s.Meta, wantMeta)
	}
	// The .pth holds float16 values; --dtype f32 stores them widened exactly.
	if src.DType != features.F32 || !slices.Equal(src.Features.Row(0), want.F16FirstRow) || !slices.Equal(src.Labels, want.Labels) {
		t.Errorf("src: dtype %s, first row %v, labels %v", src.DType, src.Features.Row(0), src.Labels)
	}
	if tgt.DType != features.F16 || slices.ContainsFunc(tgt.Labels, func(l int) bool { return l != -1 }) {
		t.Errorf("tgt: dtype %s, labels %v; want F16 and all -1", tgt.DType, tgt.Labels)
	}
}

// smallStore writes a store with one domain "a" (dim 4, classes x, y, z) by
// import, and returns its folder.
func smallStore(t *testing.T) string {
	t.Helper()
	tmp := t.TempDir()
	feats := filepath.Join(tmp, "a.npy")
	writeMatrixNPY(t, feats, 2, 4, []float32{1, 0, 0, 0, 0, 1, 0, 0})
	labels := filepath.Join(tmp, "a_labels.npy")
	writeLabelsNPY(t, labels, []int64{0, 2})
	classes := filepath.Join(tmp, "classes.txt")
	writeLines(t, classes, "x", "y", "z")
	store := filepath.Join(tmp, "store")
	importCall(t, "--out", store, "--domain", "a", "--from", feats, "--labels", labels, "--classes", classes)
	return store
}

// TestImportErrors checks that bad inputs are refused with an error naming
// the files at fault, and leave the store as it was.
func TestImportErrors(t *testing.T) {
	store := smallStore(t)
	tmp := t.TempDir()
	path := func(name string) string { return filepath.Join(tmp, name) }
	unit4 := []float32{1, 0, 0, 0, 0, 0, 1, 0}
	writeMatrixNPY(t, path("ok.npy"), 2, 4, unit4)
	writeMatrixNPY(t, path("dim3.npy"), 2, 3, []float32{1, 0, 0, 0, 1, 0})
	writeMatrixNPY(t, path("nan.npy"), 3, 4, []float32{1, 0, 0, 0, 0, 1, 0, 0, 0, float32(math.NaN()), 0, 0})
	writeMatrixNPY(t, path("inf.npy"), 2, 4, []float32{1, 0, 0, 0, float32(math.Inf(-1)), 0, 0, 0})
	writeMatrixNPY(t, path("zero.npy"), 2, 4, []float32{1, 0, 0, 0, 0, 0, 0, 0})
	writeMatrixNPY(t, path("text2.npy"), 2, 4, unit4)
	writeMatrixNPY(t, path("text_dim5.npy"), 3, 5, make([]float32, 15))
	writeLabelsNPY(t, path("high.npy"), []int64{0, 3})
	writeLabelsNPY(t, path("low.npy"), []int64{-2, 0})
	writeLabelsNPY(t, path("three.npy"), []int64{0, 1, 2})
	writeNPY(t, path("float_labels.npy"), "<f4", []int{2}, f32LE([]float32{0, 1}))
	writeLines(t, path("two.txt"), "x", "y")
	writeLines(t, path("renamed.txt"), "x", "why", "z")
	writeLines(t, path("dup.txt"), "x", "y", "x")
	if err := os.WriteFile(path("feats.txt"), []byte("1 0 0 0\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	dataset := filepath.Join(store, "dataset.json")
	base := []string{"--out", store, "--domain", "b"}
	cases := []struct {
		args []string
		want []string
	}{
		{[]string{"--from", path("dim3.npy")}, []string{path("dim3.npy"), "dim 3", dataset, "says 4"}},
		{[]string{"--from", path("ok.npy"), "--classes", path("two.txt")}, []string{path("two.txt"), "2 classes", dataset, "has 3"}},
		{[]string{"--from", path("ok.npy"), "--classes", path("renamed.txt")}, []string{path("renamed.txt"), `class 1 is "why"`, dataset, `"y"`}},
		{[]string{"--from", path("ok.npy"), "--classes", path("dup.txt")}, []string{path("dup.txt"), "listed twice"}},
		{[]string{"--from", path("ok.npy"), "--text", path("text2.npy")}, []string{path("text2.npy"), "2 rows", dataset, "3 classes"}},
		{[]string{"--from", path("ok.npy"), "--text", path("text_dim5.npy")}, []string{path("text_dim5.npy"), "dim 5", path("ok.npy"), "dim 4"}},
		{[]string{"--from", path("ok.npy"), "--labels", path("high.npy")}, []string{path("high.npy"), "label of row 1 is 3", "[-1, 3)", dataset}},
		{[]string{"--from", path("ok.npy"), "--labels", path("low.npy")}, []string{path("low.npy"), "label of row 0 is -2"}},
		{[]string{"--from", path("ok.npy"), "--labels", path("three.npy")}, []string{path("three.npy"), "3 labels for 2 feature rows"}},
		{[]string{"--from", path("ok.npy"), "--labels", path("float_labels.npy")}, []string{path("float_labels.npy"), "integer"}},
		{[]string{"--from", path("ok.npy"), "--labels", path("two.txt")}, []string{path("two.txt"), `unknown labels file type ".txt"`}},
		{[]string{"--from", path("feats.txt")}, []string{path("feats.txt"), `unknown file type ".txt"`}},
		{[]string{"--from", path("absent.npy")}, []string{path("absent.npy"), "no such file"}},
		{[]string{"--from", path("nan.npy")}, []string{path("nan.npy"), "row 2", "NaN or Inf"}},
		{[]string{"--from", path("inf.npy")}, []string{path("inf.npy"), "row 1", "NaN or Inf"}},
		{[]string{"--from", path("zero.npy")}, []string{path("zero.npy"), "row 1", "all zeros"}},
		{[]string{"--from", path("ok.npy"), "--backbone", "RN50"}, []string{`--backbone "RN50"`, dataset}},
		{[]string{"--from", path("ok.npy"), "--name", "other"}, []string{`--name "other"`, dataset}},
		{[]string{"--from", path("ok.npy"), "--domain", "../x"}, []string{"cannot be used as a file name"}},
	}
	before := testkit.ReadTree(t, store)
	for _, c := range cases {
		err, _, stderr := callCommand(runImport, append(base, c.args...)...)
		var usage usageError
		if err == nil || errors.As(err, &usage) {
			t.Errorf("%q: err %v, want a runtime error (stderr %q)", c.args, err, stderr)
			continue
		}
		for _, w := range c.want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("%q: error %q does not mention %q", c.args, err, w)
			}
		}
	}
	if after := testkit.ReadTree(t, store); !maps.Equal(before, after) {
		t.Errorf("failed imports changed the store")
	}
}

func TestImportNewStoreErrors(t *testing.T) {
	tmp := t.TempDir()
	path := func(name string) string { return filepath.Join(tmp, name) }
	writeMatrixNPY(t, path("ok.npy"), 2, 4, []float32{1, 0, 0, 0, 0, 0, 1, 0})
	writeMatrixNPY(t, path("text2.npy"), 2, 4, []float32{1, 0, 0, 0, 0, 0, 1, 0})
	writeLines(t, path("three.txt"), "x", "y", "z")
	writeLabelsNPY(t, path("huge.npy"), []int64{0, 1 << 40})
	store := path("store")
	cases := []struct {
		args []string
		want []string
	}{
		{[]string{"--from", path("ok.npy")}, []string{"cannot tell the number of classes", "--classes"}},
		{[]string{"--from", path("ok.npy"), "--classes", path("three.txt"), "--text", path("text2.npy")},
			[]string{path("text2.npy"), "2 rows", path("three.txt"), "3 classes"}},
		{[]string{"--from", path("ok.npy"), "--labels", path("huge.npy")}, []string{path("huge.npy"), "1099511627776", "--classes"}},
		{[]string{"--from", path("ok.npy"), "--text", path("text2.npy"), "--labels", path("huge.npy")},
			[]string{path("huge.npy"), "outside [-1, 2)", path("text2.npy")}},
	}
	for _, c := range cases {
		err, _, _ := callCommand(runImport, append([]string{"--out", store, "--domain", "d"}, c.args...)...)
		if err == nil {
			t.Errorf("%q: no error", c.args)
			continue
		}
		for _, w := range c.want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("%q: error %q does not mention %q", c.args, err, w)
			}
		}
	}
	if _, err := os.Stat(store); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("failed imports created the store: %v", err)
	}

	// A corrupt dataset.json is an error, never a reason to start afresh.
	corrupt := path("corrupt")
	if err := os.MkdirAll(corrupt, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(corrupt, "dataset.json"), []byte("{"), 0o644); err != nil {
		t.Fatal(err)
	}
	err, _, _ := callCommand(runImport, "--out", corrupt, "--domain", "d", "--from", path("ok.npy"), "--classes", path("three.txt"))
	if err == nil || !strings.Contains(err.Error(), filepath.Join(corrupt, "dataset.json")) {
		t.Errorf("corrupt dataset.json: err %v", err)
	}
	if raw, _ := os.ReadFile(filepath.Join(corrupt, "dataset.json")); string(raw) != "{" {
		t.Errorf("corrupt dataset.json was rewritten to %q", raw)
	}
}

func TestImportUsageErrors(t *testing.T) {
	for _, c := range []struct {
		args []string
		want string
	}{
		{nil, "--out is required"},
		{[]string{"--out", "o", "--from", "f.npy"}, "--domain is required"},
		{[]string{"--out", "o", "--domain", "d"}, "--from is required"},
		{[]string{"--out", "o", "--domain", "d", "--from", "f.npy", "--dtype", "f64"}, `--dtype "f64"`},
		{[]string{"--out", "o", "--domain", "d", "--from", "f.npy", "extra"}, `unexpected argument "extra"`},
	} {
		err, _, _ := callCommand(runImport, c.args...)
		var usage usageError
		if !errors.As(err, &usage) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("import %q: err = %v, want a usage error mentioning %q", c.args, err, c.want)
		}
	}
}

// TestImportNormalisesThenZeroShot imports features that are not unit-norm
// with text features made in the test, then checks `unimos zeroshot` on the
// store against accuracy computed here by cosine similarity in float64.
func TestImportNormalisesThenZeroShot(t *testing.T) {
	tmp := t.TempDir()
	const n, dim, k = 12, 3, 3
	// Row i points mostly along axis i%3, scaled by 2 or 0.5 so that every
	// row needs normalising, with a perturbation that makes rows 4 and 9
	// nearer another class's prototype.
	image := make([]float32, n*dim)
	labels := make([]int64, n)
	for i := range n {
		scale := float32(2)
		if i%2 == 1 {
			scale = 0.5
		}
		row := image[i*dim : (i+1)*dim]
		row[i%3] = scale
		row[(i+1)%3] = scale * 0.3
		if i == 4 || i == 9 {
			row[(i+1)%3] = scale * 1.5
		}
		labels[i] = int64(i % 3)
	}
	labels[7] = -1 // one unlabelled row does not count
	// Text prototypes along the axes, with norm 3: normalised on import too.
	text := []float32{3, 0, 0, 0, 3, 0, 0, 0, 3}
	writeMatrixNPY(t, filepath.Join(tmp, "f.npy"), n, dim, image)
	writeLabelsNPY(t, filepath.Join(tmp, "l.npy"), labels)
	writeMatrixNPY(t, filepath.Join(tmp, "t.npy"), k, dim, text)
	store := filepath.Join(tmp, "store")
	_, stderr := importCall(t, "--out", store, "--domain", "d", "--from", filepath.Join(tmp, "f.npy"),
		"--labels", filepath.Join(tmp, "l.npy"), "--text", filepath.Join(tmp, "t.npy"))
	for _, want := range []string{"normalised 12 of the 12 rows of the image features", "normalised 3 of the 3 rows of the text features"} {
		if strings.Count(stderr, want) != 1 {
			t.Errorf("stderr %q should say %q once", stderr, want)
		}
	}
	if strings.Contains(stderr, "no text features") {
		t.Errorf("stderr warns about text features although --text was given: %q", stderr)
	}
	_, d := readDomain(t, store, "d")
	for i := range n {
		var ss float64
		for _, v := range d.Features.Row(i) {
			ss += float64(v) * float64(v)
		}
		if math.Abs(ss-1) > 1e-6 {
			t.Errorf("row %d has squared norm %v after import", i, ss)
		}
	}

	// Independent zero-shot: the prototypes are the axes, so the cosine
	// with class c is proportional to coordinate c of the raw row.
	right, total := 0, 0
	perClass := make([][2]int, k) // right, total
	for i := range n {
		if labels[i] < 0 {
			continue
		}
		row := image[i*dim : (i+1)*dim]
		pred := 0
		for c := range k {
			if row[c] > row[pred] {
				pred = c
			}
		}
		total++
		perClass[labels[i]][1]++
		if int64(pred) == labels[i] {
			right++
			perClass[labels[i]][0]++
		}
	}
	var meanClass float64
	for _, pc := range perClass {
		meanClass += 100 * float64(pc[0]) / float64(pc[1]) / k
	}
	code, out, errOut := runCLI(t, "zeroshot", "--features", store, "--domain", "d", "--json")
	if code != 0 {
		t.Fatalf("zeroshot: status %d, stderr %q", code, errOut)
	}
	var zs accuracyJSON
	if err := json.Unmarshal([]byte(out), &zs); err != nil {
		t.Fatal(err)
	}
	if right == total {
		t.Fatal("the test data should hold misclassified rows")
	}
	if math.Abs(zs.Accuracy-100*float64(right)/float64(total)) > 1e-9 || math.Abs(zs.MeanClassAccuracy-meanClass) > 1e-9 {
		t.Errorf("zeroshot %+v, want accuracy %v and mean class accuracy %v", zs, 100*float64(right)/float64(total), meanClass)
	}
}

// exportDomain writes the features and labels of one domain of store as
// .npy files in dir, as another tool would hand them over, and returns
// their names and the domain's row count.
func exportDomain(t *testing.T, store, domain, dir string) (feats, labels string, rows int) {
	t.Helper()
	s, err := features.Open(store)
	if err != nil {
		t.Fatal(err)
	}
	d, err := s.Domain(domain)
	if err != nil {
		t.Fatal(err)
	}
	feats, labels = filepath.Join(dir, domain+".npy"), filepath.Join(dir, domain+"_labels.npy")
	m := d.Features.Clone()
	writeMatrixNPY(t, feats, m.Rows, m.Cols, m.Data)
	ints := make([]int64, len(d.Labels))
	for i, l := range d.Labels {
		ints[i] = int64(l)
	}
	writeLabelsNPY(t, labels, ints)
	return feats, labels, m.Rows
}

// TestImportPaths imports a domain with --paths and checks that the paths
// reach the predictions of a run adapted to it; that bad paths files are
// refused with the counts and leave the store as it was; and that replacing
// the domain without --paths removes the old paths.
func TestImportPaths(t *testing.T) {
	tmp := t.TempDir()
	store := filepath.Join(tmp, "tiny")
	if code, _, errOut := runCLI(t, "synth", "--preset", "tiny", "--out", store); code != 0 {
		t.Fatalf("synth: %q", errOut)
	}
	feats, labels, rows := exportDomain(t, store, "sketch", tmp)
	paths := make([]string, rows)
	for i := range paths {
		paths[i] = fmt.Sprintf("sketch/img %03d.jpg", i)
	}
	pathsFile := filepath.Join(tmp, "paths.txt")
	writeLines(t, pathsFile, paths...)
	short := filepath.Join(tmp, "short.txt")
	writeLines(t, short, paths[:rows-1]...)
	blank := filepath.Join(tmp, "blank.txt")
	writeLines(t, blank, append([]string{paths[0], ""}, paths[2:]...)...)

	importArgs := []string{"import", "--out", store, "--domain", "sketch", "--from", feats, "--labels", labels}
	before := testkit.ReadTree(t, store)
	for _, c := range []struct {
		file string
		want []string
	}{
		{short, []string{short, fmt.Sprintf("%d paths for %d feature rows", rows-1, rows)}},
		{blank, []string{blank, "line 2 is empty"}},
		{filepath.Join(tmp, "absent.txt"), []string{filepath.Join(tmp, "absent.txt"), "does not exist"}},
	} {
		code, _, errOut := runCLI(t, append(importArgs, "--paths", c.file)...)
		if code != 1 {
			t.Errorf("--paths %s: status %d, want 1", c.file, code)
		}
		for _, w := range c.want {
			if !strings.Contains(errOut, w) {
				t.Errorf("--paths %s: stderr %q does not mention %q", c.file, errOut, w)
			}
		}
	}
	if after := testkit.ReadTree(t, store); !maps.Equal(before, after) {
		t.Errorf("refused imports changed the store")
	}

	code, stdout, errOut := runCLI(t, append(importArgs, "--paths", pathsFile)...)
	if code != 0 || !strings.Contains(stdout, fmt.Sprintf("%d images (%d labelled)", rows, rows)) {
		t.Fatalf("import --paths: status %d, stdout %q, stderr %q", code, stdout, errOut)
	}
	run := filepath.Join(tmp, "run")
	if code, _, errOut := runCLI(t, "adapt", "--features", store, "--source", "photo", "--target", "sketch",
		"--epochs", "1", "--out", run, "--quiet"); code != 0 {
		t.Fatalf("adapt: %q", errOut)
	}
	raw, err := os.ReadFile(filepath.Join(run, "predictions.csv"))
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSuffix(string(raw), "\n"), "\n")
	if len(lines) != rows+1 {
		t.Fatalf("predictions.csv has %d lines, want %d", len(lines), rows+1)
	}
	for i, p := range paths {
		if fields := strings.Split(lines[i+1], ","); len(fields) != 4 || fields[1] != p {
			t.Fatalf("predictions.csv line %d is %q; want the path %q", i+2, lines[i+1], p)
		}
	}

	// Replaced without --paths: the old paths would name the wrong rows.
	code, _, errOut = runCLI(t, importArgs...)
	oldPaths := filepath.Join(store, "sketch.paths.txt")
	if code != 0 || !strings.Contains(errOut, "note: removed "+oldPaths) || !strings.Contains(errOut, "give --paths") {
		t.Errorf("import without --paths: status %d, stderr %q", code, errOut)
	}
	if _, d := readDomain(t, store, "sketch"); d.Paths != nil {
		t.Errorf("paths %q survived the replacement", d.Paths[:2])
	}
	if _, err := os.Stat(oldPaths); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("%s: %v, want it removed", oldPaths, err)
	}
}

// TestImportDeprecatedFeatures checks the old spelling --features FILE: it
// still imports, with a note naming --from.
func TestImportDeprecatedFeatures(t *testing.T) {
	store := smallStore(t)
	tmp := t.TempDir()
	feats := filepath.Join(tmp, "b.npy")
	writeMatrixNPY(t, feats, 1, 4, []float32{0, 0, 1, 0})
	code, stdout, errOut := runCLI(t, "import", "--out", store, "--domain", "b", "--features", feats)
	if code != 0 || !strings.Contains(errOut, "note: --features is deprecated and will be removed; use --from") ||
		!strings.Contains(stdout, "imported from "+feats+": 1 image (0 labelled)") || !strings.Contains(stdout, "3 classes") {
		t.Errorf("import --features: status %d, stdout %q, stderr %q", code, stdout, errOut)
	}
	if !strings.Contains(errOut, `domain "b" is unlabelled (1 image)`) {
		t.Errorf("stderr %q should count 1 image", errOut)
	}
	// -h shows --from and --paths, not the old spelling.
	_, help, _ := runCLI(t, "import", "-h")
	if !strings.Contains(help, "-from FILE") || !strings.Contains(help, "-paths FILE") || strings.Contains(help, "-features") {
		t.Errorf("import -h:\n%s", help)
	}
}

// TestImportIntoAFile gives a features file as the store: the error says
// that it is a file and how to import it.
func TestImportIntoAFile(t *testing.T) {
	tmp := t.TempDir()
	feats := filepath.Join(tmp, "a.npy")
	writeMatrixNPY(t, feats, 1, 4, []float32{1, 0, 0, 0})
	code, _, errOut := runCLI(t, "import", "--out", feats, "--domain", "a", "--from", feats)
	want := "unimos import: features: " + feats + " is a file, not a feature store (a folder with dataset.json); " +
		"to add features from a .npy, .npz or .pth file to a store, run: unimos import --from " + feats + " --domain NAME --out STORE\n"
	if code != 1 || errOut != want {
		t.Errorf("status %d, stderr %q\nwant %q", code, errOut, want)
	}
}
