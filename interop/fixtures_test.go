package interop

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"testing"
)

// fixtureDir returns shared/data/interop, found beside the repository root,
// or skips the test when it is absent.
func fixtureDir(t testing.TB) string {
	t.Helper()
	dir, err := findFixtures()
	if err != nil {
		t.Skipf("interop fixtures not available: %v", err)
	}
	return dir
}

// findFixtures locates shared/data/interop beside the repository root.
func findFixtures() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			break
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("go.mod not found above the test directory")
		}
		dir = parent
	}
	fixtures := filepath.Join(dir, "..", "shared", "data", "interop")
	if _, err := os.Stat(filepath.Join(fixtures, "expected.json")); err != nil {
		return "", err
	}
	return fixtures, nil
}

// expectedValues is expected.json, written by the tool that made the fixtures.
type expectedValues struct {
	F32Row []float64 `json:"features_f32_first_row"`
	F16Row []float64 `json:"features_f16_first_row_as_f32"`
	Labels []int64   `json:"labels"`
}

func loadExpected(t *testing.T, dir string) (f32Row, f16Row []float32, labels []int64) {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(dir, "expected.json"))
	if err != nil {
		t.Fatal(err)
	}
	var e expectedValues
	if err := json.Unmarshal(data, &e); err != nil {
		t.Fatal(err)
	}
	narrow := func(v []float64) []float32 {
		out := make([]float32, len(v))
		for i, x := range v {
			out[i] = float32(x)
			if float64(out[i]) != x {
				t.Fatalf("expected value %v is not a float32", x)
			}
		}
		return out
	}
	return narrow(e.F32Row), narrow(e.F16Row), e.Labels
}

// checkFeatures compares a [37, 16] feature array's first row and dtype.
func checkFeatures(t *testing.T, what string, a *Array, dtype string, firstRow []float32) {
	t.Helper()
	if a == nil {
		t.Fatalf("%s: no array", what)
	}
	if a.DType != dtype || !slices.Equal(a.Shape, []int{37, 16}) || a.Int64 != nil || len(a.Float32) != 37*16 {
		t.Fatalf("%s: got %s %v (%d floats, ints %v), want %s [37 16]", what, a.DType, a.Shape, len(a.Float32), a.Int64 != nil, dtype)
	}
	if !slices.Equal(a.Float32[:16], firstRow) {
		t.Errorf("%s: first row\n got %v\nwant %v", what, a.Float32[:16], firstRow)
	}
}

func checkLabels(t *testing.T, what string, a *Array, labels []int64) {
	t.Helper()
	if a == nil {
		t.Fatalf("%s: no array", what)
	}
	if a.DType != "int64" || !slices.Equal(a.Shape, []int{37}) || a.Float32 != nil {
		t.Fatalf("%s: got %s %v, want int64 [37]", what, a.DType, a.Shape)
	}
	if !slices.Equal(a.Int64, labels) {
		t.Errorf("%s: got %v, want %v", what, a.Int64, labels)
	}
}

func TestFixtures(t *testing.T) {
	dir := fixtureDir(t)
	f32Row, f16Row, labels := loadExpected(t, dir)
	path := func(name string) string { return filepath.Join(dir, name) }

	f32, err := ReadNPY(path("features_f32.npy"))
	if err != nil {
		t.Fatal(err)
	}
	checkFeatures(t, "features_f32.npy", f32, "float32", f32Row)

	f16, err := ReadNPY(path("features_f16.npy"))
	if err != nil {
		t.Fatal(err)
	}
	checkFeatures(t, "features_f16.npy", f16, "float16", f16Row)

	lab, err := ReadNPY(path("labels.npy"))
	if err != nil {
		t.Fatal(err)
	}
	checkLabels(t, "labels.npy", lab, labels)

	for _, name := range []string{"bundle.npz", "bundle_compressed.npz"} {
		arrays, err := ReadNPZ(path(name))
		if err != nil {
			t.Fatal(err)
		}
		if len(arrays) != 2 {
			t.Errorf("%s: %d arrays, want 2", name, len(arrays))
		}
		checkFeatures(t, name, arrays["features"], "float32", f32Row)
		checkLabels(t, name, arrays["labels"], labels)
		// NumPy wrote the same matrix to both files.
		if !slices.Equal(arrays["features"].Float32, f32.Float32) {
			t.Errorf("%s: features differ from features_f32.npy", name)
		}
	}

	tensors, err := ReadPTH(path("reference_cache.pth"))
	if err != nil {
		t.Fatal(err)
	}
	if len(tensors) != 2 {
		t.Errorf("reference_cache.pth: %d tensors, want 2", len(tensors))
	}
	checkFeatures(t, "reference_cache.pth fea", tensors["fea"], "float16", f16Row)
	checkLabels(t, "reference_cache.pth label", tensors["label"], labels)
	// PyTorch and NumPy wrote the same float16 matrix independently.
	if !slices.Equal(tensors["fea"].Float32, f16.Float32) {
		t.Error("reference_cache.pth: fea differs from features_f16.npy")
	}
}

func TestReadFeaturesFixtures(t *testing.T) {
	dir := fixtureDir(t)
	f32Row, f16Row, labels := loadExpected(t, dir)
	for _, tc := range []struct {
		file, dtype string
		row         []float32
		hasLabels   bool
	}{
		{"features_f32.npy", "float32", f32Row, false},
		{"features_f16.npy", "float16", f16Row, false},
		{"bundle.npz", "float32", f32Row, true},
		{"bundle_compressed.npz", "float32", f32Row, true},
		{"reference_cache.pth", "float16", f16Row, true},
	} {
		features, lab, err := ReadFeatures(filepath.Join(dir, tc.file))
		if err != nil {
			t.Errorf("%s: %v", tc.file, err)
			continue
		}
		checkFeatures(t, tc.file, features, tc.dtype, tc.row)
		if tc.hasLabels {
			checkLabels(t, tc.file, lab, labels)
		} else if lab != nil {
			t.Errorf("%s: labels %v, want none", tc.file, lab.Shape)
		}
	}

	m, err := ReadMatrix(filepath.Join(dir, "features_f16.npy"))
	if err != nil {
		t.Fatal(err)
	}
	checkFeatures(t, "ReadMatrix features_f16.npy", m, "float16", f16Row)
	if _, err := ReadMatrix(filepath.Join(dir, "labels.npy")); err == nil {
		t.Error("ReadMatrix accepted 1-D integer labels")
	}
	// Two arrays, neither named text_features.
	if _, err := ReadMatrix(filepath.Join(dir, "bundle.npz")); err == nil {
		t.Error("ReadMatrix picked an array from a two-array .npz")
	}
}
