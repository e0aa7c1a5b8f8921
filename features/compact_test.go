package features

import (
	"path/filepath"
	"slices"
	"testing"

	"github.com/unimos/unimos/internal/testkit"
	"github.com/unimos/unimos/tensor"
)

// rowsOf reads every row of r.
func rowsOf(r Rows) [][]float32 {
	n, d := r.Dims()
	out := make([][]float32, n)
	for i := range out {
		out[i] = make([]float32, d)
		r.RowInto(out[i], i)
	}
	return out
}

// TestCompactDomain checks which form CompactDomain keeps a domain in and
// that its rows read exactly as Domain's do.
func TestCompactDomain(t *testing.T) {
	meta := Dataset{Name: "c", Dim: 8, Classes: []string{"x", "y", "z"}, Domains: []string{"half", "single"}}
	dir := filepath.Join(t.TempDir(), "store")
	if err := WriteDataset(dir, meta); err != nil {
		t.Fatal(err)
	}
	for name, dtype := range map[string]DType{"half": F16, "single": F32} {
		d := &Domain{Name: name, Features: testkit.UnitRows(6, 8, 3), Labels: []int{0, 1, 2, -1, 0, 1}, DType: dtype}
		if err := WriteDomain(dir, d); err != nil {
			t.Fatal(err)
		}
	}
	s, warnings := openStore(t, dir)
	for name, wantHalf := range map[string]bool{"half": true, "single": false} {
		rows, labels, err := s.CompactDomain(name)
		if err != nil {
			t.Fatal(err)
		}
		if _, half := rows.(*HalfMatrix); half != wantHalf {
			t.Errorf("%s: held as %T", name, rows)
		}
		full, err := s.Domain(name)
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(labels, full.Labels) {
			t.Errorf("%s: labels %v, want %v", name, labels, full.Labels)
		}
		if got := rowsOf(rows); !slices.EqualFunc(got, rowsOf(full.Features), slices.Equal) {
			t.Errorf("%s: rows %v differ from Domain's", name, got)
		}
	}
	if len(*warnings) != 0 {
		t.Errorf("warnings %q", *warnings)
	}
}

// TestCompactDomainOffNorm: an F16 row off unit norm is normalised, which
// needs float32, with Domain's warning; a NaN row is an error naming it.
func TestCompactDomainOffNorm(t *testing.T) {
	// Rows (2, 0) and (0, 1) in binary16: 0x4000, 0, 0, 0x3c00.
	offNorm := []byte{0x00, 0x40, 0x00, 0x00, 0x00, 0x00, 0x00, 0x3c}
	// Rows (1, 0) and (NaN, 1): 0x3c00, 0, 0x7e00, 0x3c00.
	withNaN := []byte{0x00, 0x3c, 0x00, 0x00, 0x00, 0x7e, 0x00, 0x3c}
	dir := makeStore(t, testDataset, map[string][]byte{
		"src.safetensors": rawSafetensors(rawTensor{"features", "F16", []int{2, 2}, offNorm}, labelTensor(0, 1)),
		"tgt.safetensors": rawSafetensors(rawTensor{"features", "F16", []int{2, 2}, withNaN}, labelTensor(0, 1)),
	})
	s, warnings := openStore(t, dir)
	rows, _, err := s.CompactDomain("src")
	if err != nil {
		t.Fatal(err)
	}
	m, ok := rows.(*tensor.Matrix)
	if !ok || !slices.Equal(m.Data, []float32{1, 0, 0, 1}) {
		t.Errorf("got %T %v, want float32 rows (1, 0), (0, 1)", rows, rows)
	}
	if len(*warnings) != 1 {
		t.Errorf("warnings %q, want one", *warnings)
	}
	_, _, err = s.CompactDomain("tgt")
	wantError(t, err, filepath.Join(dir, "tgt.safetensors"), "row 1 contains NaN or Inf")
}
