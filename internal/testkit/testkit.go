// Package testkit holds the helpers that the tests of several packages
// share: seeded random data, snapshots of folders, writing files and
// reading CSV files.
package testkit

import (
	"encoding/csv"
	"io/fs"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/unimos/unimos/tensor"
)

// UnitRows returns a [rows, cols] matrix of random rows of unit length,
// the same for the same seed.
func UnitRows(rows, cols int, seed uint64) *tensor.Matrix {
	r := rand.New(rand.NewPCG(seed, 1))
	m := tensor.New(rows, cols)
	for i := range rows {
		row := m.Row(i)
		var ss float64
		for j := range row {
			row[j] = float32(r.NormFloat64())
			ss += float64(row[j]) * float64(row[j])
		}
		for j := range row {
			row[j] = float32(float64(row[j]) / math.Sqrt(ss))
		}
	}
	return m
}

// ReadTree returns the content of every regular file below dir, by path
// relative to dir; two calls compare with maps.Equal.
func ReadTree(t testing.TB, dir string) map[string]string {
	t.Helper()
	files := map[string]string{}
	err := filepath.WalkDir(dir, func(path string, e fs.DirEntry, err error) error {
		if err != nil || e.IsDir() {
			return err
		}
		raw, err := os.ReadFile(path)
		rel, _ := filepath.Rel(dir, path)
		files[rel] = string(raw)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return files
}

// CopyTree copies the regular files below src to dst, creating folders as
// needed.
func CopyTree(t testing.TB, src, dst string) {
	t.Helper()
	for rel, data := range ReadTree(t, src) {
		path := filepath.Join(dst, rel)
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// WriteFile writes data to path, creating its folders.
func WriteFile(t testing.TB, path string, data []byte) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
}

// ReadCSV returns the records of a CSV file, its header first.
func ReadCSV(t testing.TB, path string) [][]string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	records, err := csv.NewReader(f).ReadAll()
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return records
}

// SameNames stops the test unless got and want hold the same names (of
// tensors, say) in any order, and returns them sorted.
func SameNames(t testing.TB, got, want []string) []string {
	t.Helper()
	got, want = slices.Sorted(slices.Values(got)), slices.Sorted(slices.Values(want))
	if !slices.Equal(got, want) {
		t.Fatalf("names differ:\n got %v\nwant %v", got, want)
	}
	return want
}
