package features

import (
	"errors"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/unimos/unimos/internal/testkit"
	"github.com/unimos/unimos/tensor"
)

func equalMatrices(a, b *tensor.Matrix) bool {
	if a.Rows != b.Rows || a.Cols != b.Cols {
		return false
	}
	for i := range a.Rows {
		if !slices.Equal(a.Row(i), b.Row(i)) {
			return false
		}
	}
	return true
}

// TestPutDomainCreatesAddsReplaces builds a store from nothing with
// PutDomain, adds a second domain, replaces the first, and reads every step
// back through Open.
func TestPutDomainCreatesAddsReplaces(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "new", "store")
	meta := Dataset{Name: "put", Backbone: "none", Dim: 4, Classes: []string{"x", "y", "z"}}
	s := &Store{Dir: dir, Meta: meta}
	a := &Domain{Name: "a", Features: testkit.UnitRows(5, 4, 1), Labels: []int{0, 1, 2, -1, 0}, DType: F32}
	textA := testkit.UnitRows(3, 4, 2)
	replaced, err := s.PutDomain(a, textA)
	if err != nil || replaced {
		t.Fatalf("create: replaced %v, err %v", replaced, err)
	}
	b := &Domain{Name: "b", Features: testkit.UnitRows(2, 4, 3), Labels: []int{-1, -1}, DType: F32}
	if replaced, err := s.PutDomain(b, nil); err != nil || replaced {
		t.Fatalf("add: replaced %v, err %v", replaced, err)
	}
	a2 := &Domain{Name: "a", Features: testkit.UnitRows(3, 4, 4), Labels: []int{2, 2, 1}, DType: F32}
	if replaced, err := s.PutDomain(a2, nil); err != nil || !replaced {
		t.Fatalf("replace: replaced %v, err %v", replaced, err)
	}

	got, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	want := meta
	want.Domains = []string{"a", "b"}
	if !slices.Equal(got.Meta.Domains, want.Domains) || got.Meta.Dim != 4 || !slices.Equal(got.Meta.Classes, meta.Classes) ||
		got.Meta.Name != "put" || !slices.Equal(s.Meta.Domains, want.Domains) {
		t.Errorf("dataset.json %+v, store meta %+v; want %+v", got.Meta, s.Meta, want)
	}
	for _, d := range []*Domain{a2, b} {
		read, err := got.Domain(d.Name)
		if err != nil {
			t.Fatal(err)
		}
		if !equalMatrices(read.Features, d.Features) || !slices.Equal(read.Labels, d.Labels) {
			t.Errorf("domain %s does not read back as written", d.Name)
		}
	}
	// Replacing a without text features keeps the ones written with it.
	text, err := got.Text("a")
	if err != nil || !equalMatrices(text, textA) {
		t.Errorf("text of a: err %v or content changed", err)
	}
	if _, err := got.Text("b"); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("text of b: %v, want not-exist", err)
	}
	assertNoTempFiles(t, dir)
}

// TestPutDomainRejectsMisfits checks that data not fitting the store is
// refused before anything is written.
func TestPutDomainRejectsMisfits(t *testing.T) {
	meta := Dataset{Name: "put", Dim: 4, Classes: []string{"x", "y"}}
	dir := t.TempDir()
	s := &Store{Dir: dir, Meta: meta}
	if _, err := s.PutDomain(&Domain{Name: "ok", Features: testkit.UnitRows(2, 4, 1), Labels: []int{0, 1}}, nil); err != nil {
		t.Fatal(err)
	}
	before := testkit.ReadTree(t, dir)
	unit := testkit.UnitRows(2, 4, 5)
	cases := []struct {
		name    string
		d       *Domain
		text    *tensor.Matrix
		message []string
	}{
		{"dim", &Domain{Name: "n", Features: testkit.UnitRows(2, 3, 1), Labels: []int{0, 1}}, nil,
			[]string{"features have dim 3", "dataset.json says 4"}},
		{"label high", &Domain{Name: "n", Features: unit, Labels: []int{0, 2}}, nil,
			[]string{"label of row 1 is 2", "[-1, 2)"}},
		{"label low", &Domain{Name: "ok", Features: unit, Labels: []int{-2, 0}}, nil,
			[]string{"label of row 0 is -2"}},
		{"text rows", &Domain{Name: "n", Features: unit, Labels: []int{0, 1}}, testkit.UnitRows(3, 4, 2),
			[]string{"text features are [3, 4]", "want [2, 4]"}},
		{"text dim", &Domain{Name: "n", Features: unit, Labels: []int{0, 1}}, testkit.UnitRows(2, 5, 2),
			[]string{"text features are [2, 5]"}},
		{"name", &Domain{Name: "../x", Features: unit, Labels: []int{0, 1}}, nil,
			[]string{"cannot be used as a file name"}},
		{"labels count", &Domain{Name: "n", Features: unit, Labels: []int{0}}, nil,
			[]string{"1 label for 2 feature rows"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := s.PutDomain(c.d, c.text)
			wantError(t, err, c.message...)
			if after := testkit.ReadTree(t, dir); !maps.Equal(after, before) {
				t.Errorf("the store changed: %v", slices.Sorted(maps.Keys(after)))
			}
			if !slices.Equal(s.Meta.Domains, []string{"ok"}) {
				t.Errorf("store meta now lists %v", s.Meta.Domains)
			}
		})
	}
}

// TestPutDomainWriteFailureKeepsDataset makes the text write fail after the
// domain file of a new domain was written: dataset.json must not list it.
func TestPutDomainWriteFailureKeepsDataset(t *testing.T) {
	dir := t.TempDir()
	s := &Store{Dir: dir, Meta: Dataset{Dim: 2, Classes: []string{"x"}}}
	if _, err := s.PutDomain(&Domain{Name: "a", Features: testkit.UnitRows(1, 2, 1), Labels: []int{0}}, nil); err != nil {
		t.Fatal(err)
	}
	// A regular file where the text folder belongs makes WriteText fail.
	if err := os.WriteFile(filepath.Join(dir, TextDir), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := s.PutDomain(&Domain{Name: "b", Features: testkit.UnitRows(1, 2, 2), Labels: []int{0}}, testkit.UnitRows(1, 2, 3))
	wantError(t, err, "text")
	got, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(got.Meta.Domains, []string{"a"}) || !slices.Equal(s.Meta.Domains, []string{"a"}) {
		t.Errorf("dataset.json lists %v, store meta %v; want only a", got.Meta.Domains, s.Meta.Domains)
	}
	assertNoTempFiles(t, dir)
}

// TestPutDomainPaths checks that a domain's paths file holds the paths of
// its current rows only: written from Domain.Paths, removed when a domain is
// replaced without paths, and removed before the features are replaced, so
// that a replacement that fails halfway leaves the old rows without paths
// rather than with paths that may be wrong.
func TestPutDomainPaths(t *testing.T) {
	dir := t.TempDir()
	s := &Store{Dir: dir, Meta: Dataset{Name: "p", Backbone: "none", Dim: 2, Classes: []string{"x"}}}
	put := func(d *Domain) {
		t.Helper()
		if _, err := s.PutDomain(d, nil); err != nil {
			t.Fatal(err)
		}
	}
	pathsOf := func() []string {
		t.Helper()
		d, err := s.Domain("a")
		if err != nil {
			t.Fatal(err)
		}
		return d.Paths
	}
	put(&Domain{Name: "a", Features: testkit.UnitRows(2, 2, 1), Labels: []int{0, 0}, Paths: []string{"1.jpg", "2.jpg"}})
	if got := pathsOf(); !slices.Equal(got, []string{"1.jpg", "2.jpg"}) {
		t.Errorf("paths %q after the first write", got)
	}
	put(&Domain{Name: "a", Features: testkit.UnitRows(2, 2, 2), Labels: []int{0, 0}})
	if got := pathsOf(); got != nil {
		t.Errorf("paths %q survived a replacement without paths", got)
	}
	put(&Domain{Name: "a", Features: testkit.UnitRows(2, 2, 3), Labels: []int{0, 0}, Paths: []string{"3.jpg", "4.jpg"}})
	old, err := s.Domain("a")
	if err != nil {
		t.Fatal(err)
	}
	// Rows off unit norm pass PutDomain's checks and fail in WriteDomain,
	// after the paths file is gone.
	bad := &Domain{Name: "a", Features: tensor.FromSlice(2, 2, []float32{2, 0, 0, 2}), Labels: []int{0, 0}, Paths: []string{"5.jpg", "6.jpg"}}
	if _, err := s.PutDomain(bad, nil); err == nil {
		t.Fatal("PutDomain accepted rows that are not unit-norm")
	}
	after, err := s.Domain("a")
	if err != nil {
		t.Fatal(err)
	}
	if !equalMatrices(after.Features, old.Features) || after.Paths != nil {
		t.Errorf("after a failed replacement: features changed %v, paths %q; want the old features without paths",
			!equalMatrices(after.Features, old.Features), after.Paths)
	}
}

func TestReadPaths(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "paths.txt")
	if err := os.WriteFile(file, []byte("a.jpg\r\nb c.jpg\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if got, err := ReadPaths(file, 2); err != nil || !slices.Equal(got, []string{"a.jpg", "b c.jpg"}) {
		t.Errorf("ReadPaths: %q, %v", got, err)
	}
	_, err := ReadPaths(file, 3)
	wantError(t, err, file, "2 paths for 3 feature rows")
	absent := filepath.Join(dir, "absent.txt")
	_, err = ReadPaths(absent, 1)
	wantError(t, err, absent)
	if !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("%v is not fs.ErrNotExist", err)
	}
}
