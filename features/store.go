// Package features reads and writes the feature store: the on-disk contract
// between feature extraction and training (see README "Feature store").
//
// A store is a directory holding
//
//	dataset.json               {"name", "backbone", "dim", "classes", "domains"}
//	<domain>.safetensors       features F16|F32 [N, dim] (rows unit-norm), labels I64 [N] (-1 = unknown)
//	<domain>.paths.txt         optional: one image path per feature row
//	text/<domain>.safetensors  text_features F32|F16 [K, dim] (rows unit-norm), K = len(classes)
//
// Readers validate everything against dataset.json and return errors naming
// the file and the problem. Writers replace files atomically.
package features

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/unimos/unimos/internal/atomicfile"
	"github.com/unimos/unimos/internal/regularfile"
	"github.com/unimos/unimos/internal/words"
	"github.com/unimos/unimos/safetensors"
	"github.com/unimos/unimos/tensor"
)

// Dataset is the content of DIR/dataset.json.
type Dataset struct {
	Name     string `json:"name"`
	Backbone string `json:"backbone"`
	// Fingerprint identifies the CLIP weights the features come from (see
	// clip.Fingerprint); absent when unknown (imported or generated stores).
	Fingerprint []float32 `json:"fingerprint,omitempty"`
	Dim         int       `json:"dim"`
	Classes     []string  `json:"classes"`
	Domains     []string  `json:"domains"`
	// Precision is the precision of the encoders' matrix products the
	// features come from, as extract records it: "bf16" (operands rounded
	// to bfloat16, f32 sums) or "f32"; absent in stores written before it
	// was recorded and in imported or generated ones, which read as "f32"
	// (see ProductPrecision).
	Precision string `json:"precision,omitempty"`
}

// ProductPrecision returns d.Precision, "f32" when absent.
func (d Dataset) ProductPrecision() string {
	if d.Precision == "" {
		return "f32"
	}
	return d.Precision
}

// DType names the storage type of features in a domain file.
type DType string

// Storage types accepted for features.
const (
	F16 DType = "F16"
	F32 DType = "F32"
)

// Tensor names and file names of the store layout.
const (
	DatasetFile        = "dataset.json"
	FeaturesTensor     = "features"
	LabelsTensor       = "labels"
	TextFeaturesTensor = "text_features"
	TextDir            = "text"
)

// NormTolerance is how far a row's L2 norm may be from 1 before readers
// renormalise it (with a warning) and writers refuse it. It is loose enough
// for unit rows rounded to F16.
const NormTolerance = 1e-3

// Domain is one domain's image features, loaded into memory.
type Domain struct {
	Name     string
	Features *tensor.Matrix    // [N, Dim], rows unit-norm
	Labels   []int             // [N], -1 = unknown
	Paths    []string          // optional, len N when present
	DType    DType             // how the features were (or are to be) stored; "" writes F16
	Metadata map[string]string // the file's safetensors __metadata__, may be nil
}

// Store is an opened feature store directory.
type Store struct {
	Dir  string
	Meta Dataset
	// Warn receives warnings about problems the reader repaired (rows that
	// were not unit-norm). Nil writes "warning: <msg>" to os.Stderr.
	Warn func(msg string)
}

// Open reads and validates DIR/dataset.json. When DIR is a file, or a
// folder without dataset.json, the error says so and names the command that
// makes a store of it (extract for a folder of images, import for a file of
// features); it still matches fs.ErrNotExist when dataset.json is absent.
func Open(dir string) (*Store, error) {
	path := filepath.Join(dir, DatasetFile)
	raw, err := regularfile.ReadFile(path, "a JSON file", maxDatasetBytes)
	if err != nil {
		return nil, notStore(dir, err)
	}
	// JSON text is UTF-8; encoding/json would read other bytes as U+FFFD,
	// and a domain name so read no longer names its files.
	if at := firstInvalidUTF8(raw); at >= 0 {
		return nil, fmt.Errorf("features: %s: byte %d is not valid UTF-8; names must be UTF-8 text", path, at)
	}
	var meta Dataset
	if err := json.Unmarshal(raw, &meta); err != nil {
		return nil, fmt.Errorf("features: %s: invalid JSON: %w", path, err)
	}
	if err := meta.Validate(); err != nil {
		return nil, fmt.Errorf("features: %s: %w", path, err)
	}
	return &Store{Dir: dir, Meta: meta}, nil
}

// firstInvalidUTF8 returns the offset of the first byte of raw that is not
// part of valid UTF-8, or -1 when raw is valid.
func firstInvalidUTF8(raw []byte) int {
	for i := 0; i < len(raw); {
		r, size := utf8.DecodeRune(raw[i:])
		if r == utf8.RuneError && size == 1 {
			return i
		}
		i += size
	}
	return -1
}

// Caps on the files of a store that are read whole, so that a wrong file
// (or a device such as /dev/zero in its place) gets an error, not all the
// memory: far above what real stores hold (DomainNet's dataset.json is a
// few kilobytes, its largest paths file about 10 MB).
const (
	maxDatasetBytes = 16 << 20
	maxPathsBytes   = 64 << 20
)

// Validate checks that dim is positive, classes are non-empty and unique, and
// domains are non-empty, unique and usable as file names; every name must
// pass CheckName.
func (d Dataset) Validate() error {
	if d.Dim <= 0 {
		return fmt.Errorf("dim must be positive, got %d", d.Dim)
	}
	if p := d.Precision; p != "" && p != "f32" && p != "bf16" {
		return fmt.Errorf("precision %q; want f32 or bf16 (or none, meaning f32)", p)
	}
	if err := checkUnique("classes", d.Classes, func(n string) error { return CheckName(ClassName, n) }); err != nil {
		return err
	}
	return checkUnique("domains", d.Domains, func(n string) error { return CheckName(DomainName, n) })
}

// checkUnique requires a non-empty list of distinct non-empty names, each
// also accepted by check.
func checkUnique(field string, names []string, check func(string) error) error {
	if len(names) == 0 {
		return fmt.Errorf("%s is empty", field)
	}
	first := make(map[string]int, len(names))
	for i, n := range names {
		if n == "" {
			return fmt.Errorf("%s[%d] is an empty name", field, i)
		}
		if j, dup := first[n]; dup {
			return fmt.Errorf("%s[%d] = %q repeats %s[%d]", field, i, n, field, j)
		}
		first[n] = i
		if err := check(n); err != nil {
			return fmt.Errorf("%s[%d]: %w", field, i, err)
		}
	}
	return nil
}

// NameKind says what a name names, for CheckName.
type NameKind string

// The kinds of names a store holds.
const (
	ClassName  NameKind = "class"
	DomainName NameKind = "domain"
)

// CheckName returns an error unless name can be a class or domain name of
// a store: non-empty, valid UTF-8 (dataset.json is JSON, which would turn
// invalid bytes into U+FFFD, and the domain's files on disk would then no
// longer match its name), and free of control characters such as line
// breaks and tabs (which break the text files and messages that list
// names). A domain name must also serve as a file name stem. Every writer
// checks names through here, and extract checks folder names and lists
// with it before any work.
func CheckName(kind NameKind, name string) error {
	if name == "" {
		return fmt.Errorf("%s name is empty", kind)
	}
	if !utf8.ValidString(name) {
		return fmt.Errorf("%s name %q is not valid UTF-8", kind, name)
	}
	for _, r := range name {
		if unicode.IsControl(r) {
			return fmt.Errorf("%s name %q contains the control character %U", kind, name, r)
		}
	}
	if kind == DomainName && (name == "." || name == ".." || strings.ContainsAny(name, "/\\")) {
		return fmt.Errorf("domain name %q cannot be used as a file name", name)
	}
	return nil
}

// domainFile, pathsFile and textFile give the locations of a domain's files.
func domainFile(dir, domain string) string { return filepath.Join(dir, domain+".safetensors") }
func pathsFile(dir, domain string) string  { return filepath.Join(dir, domain+".paths.txt") }
func textFile(dir, domain string) string   { return filepath.Join(dir, TextDir, domain+".safetensors") }

// checkKnown requires name to be one of the dataset's domains.
func (s *Store) checkKnown(name string) error {
	if !slices.Contains(s.Meta.Domains, name) {
		return fmt.Errorf("features: domain %q is not in %s (available: %s)",
			name, filepath.Join(s.Dir, DatasetFile), strings.Join(s.Meta.Domains, ", "))
	}
	return nil
}

// warn reports a repaired problem through s.Warn or to stderr.
func (s *Store) warn(msg string) {
	if s.Warn != nil {
		s.Warn(msg)
		return
	}
	fmt.Fprintln(os.Stderr, "warning: "+msg)
}

// Domain loads and validates one domain's image features and labels.
func (s *Store) Domain(name string) (*Domain, error) {
	f, feats, labels, err := s.openDomain(name)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	m, err := s.decodeMatrix(f.Path(), feats)
	if err != nil {
		return nil, err
	}
	paths, err := readPaths(pathsFile(s.Dir, name), m.Rows)
	if err != nil {
		return nil, err
	}
	return &Domain{
		Name:     name,
		Features: m,
		Labels:   labels,
		Paths:    paths,
		DType:    DType(feats.DType),
		Metadata: f.Metadata(),
	}, nil
}

// openDomain opens a domain file and validates its header and labels; the
// caller closes the file.
func (s *Store) openDomain(name string) (*safetensors.File, *safetensors.Tensor, []int, error) {
	if err := s.checkKnown(name); err != nil {
		return nil, nil, nil, err
	}
	f, err := safetensors.Open(domainFile(s.Dir, name))
	if err != nil {
		return nil, nil, nil, fmt.Errorf("features: domain %q: %w", name, err)
	}
	feats, labels, err := s.checkDomainFile(f)
	if err != nil {
		f.Close()
		return nil, nil, nil, err
	}
	return f, feats, labels, nil
}

// checkDomainFile validates the features header and the labels of a domain
// file.
func (s *Store) checkDomainFile(f *safetensors.File) (*safetensors.Tensor, []int, error) {
	path := f.Path()
	feats, err := f.Tensor(FeaturesTensor)
	if err != nil {
		return nil, nil, fmt.Errorf("features: %w", err)
	}
	if err := s.checkMatrix(path, feats, -1); err != nil {
		return nil, nil, err
	}
	n := feats.Shape[0]
	lt, err := f.Tensor(LabelsTensor)
	if err != nil {
		return nil, nil, fmt.Errorf("features: %w", err)
	}
	if lt.DType != safetensors.I64 && lt.DType != safetensors.I32 {
		return nil, nil, fmt.Errorf("features: %s: %q has dtype %s; want I64 (or I32)", path, LabelsTensor, lt.DType)
	}
	if len(lt.Shape) != 1 || lt.Shape[0] != n {
		return nil, nil, fmt.Errorf("features: %s: %q has shape %v; want [%d] to match %q", path, LabelsTensor, lt.Shape, n, FeaturesTensor)
	}
	raw, err := lt.Int64()
	if err != nil {
		return nil, nil, fmt.Errorf("features: %w", err)
	}
	k := len(s.Meta.Classes)
	labels := make([]int, n)
	for i, v := range raw {
		if v < -1 || v >= int64(k) {
			return nil, nil, fmt.Errorf("features: %s: label of row %d is %d, outside [-1, %d)", path, i, v, k)
		}
		labels[i] = int(v)
	}
	return feats, labels, nil
}

// checkMatrix validates the dtype and shape of a [rows, Dim] feature tensor;
// wantRows < 0 accepts any positive row count.
func (s *Store) checkMatrix(path string, t *safetensors.Tensor, wantRows int) error {
	if t.DType != safetensors.F16 && t.DType != safetensors.F32 {
		return fmt.Errorf("features: %s: %q has dtype %s; the store holds F16 or F32", path, t.Name, t.DType)
	}
	if len(t.Shape) != 2 {
		return fmt.Errorf("features: %s: %q has shape %v; want 2-D [rows, %d]", path, t.Name, t.Shape, s.Meta.Dim)
	}
	rows, dim := t.Shape[0], t.Shape[1]
	switch {
	case dim != s.Meta.Dim:
		return fmt.Errorf("features: %s: %q has dim %d but %s says %d", path, t.Name, dim, DatasetFile, s.Meta.Dim)
	case rows == 0:
		return fmt.Errorf("features: %s: %q has no rows", path, t.Name)
	case wantRows >= 0 && rows != wantRows:
		return fmt.Errorf("features: %s: %q has %d rows; want %d, one per class in %s", path, t.Name, rows, wantRows, DatasetFile)
	}
	return nil
}

// decodeMatrix converts a checked [rows, Dim] tensor to float32 and validates
// its rows (UnitRows), with one warning per call however many rows were off
// unit norm.
func (s *Store) decodeMatrix(path string, t *safetensors.Tensor) (*tensor.Matrix, error) {
	m := tensor.New(t.Shape[0], t.Shape[1])
	if err := t.Float32Into(m.Data); err != nil {
		return nil, fmt.Errorf("features: %w", err)
	}
	fixed, worst, err := UnitRows(m)
	if err != nil {
		return nil, fmt.Errorf("features: %s: %q %v", path, t.Name, err)
	}
	if fixed > 0 {
		s.warn(fmt.Sprintf("%s: %q has %s not unit-norm out of %d (worst norm %.4g); normalised",
			path, t.Name, words.Count(fixed, "row"), m.Rows, worst))
	}
	return m, nil
}

// UnitRows makes the rows of m unit-norm, as the store holds them: a row
// with NaN or Inf, or of zeros, is an error naming it ("row 3 is all
// zeros"); a row whose norm is off 1 by more than NormTolerance is
// L2-normalised in place. It returns how many were, and the norm farthest
// from 1 among them (1 when none was).
func UnitRows(m *tensor.Matrix) (fixed int, worst float64, err error) {
	worst = 1
	for i := range m.Rows {
		row := m.Row(i)
		norm, err := rowNorm(row)
		if err != nil {
			return 0, 0, fmt.Errorf("row %d %w", i, err)
		}
		if math.Abs(norm-1) > NormTolerance {
			fixed++
			if math.Abs(norm-1) > math.Abs(worst-1) {
				worst = norm
			}
			tensor.NormalizeRow(row, 0)
		}
	}
	return fixed, worst, nil
}

// rowNorm returns the L2 norm of row, or an error when the row holds NaN or
// Inf or is all zeros (it then has no direction to normalise to).
func rowNorm(row []float32) (float64, error) {
	var ss float64
	for _, v := range row {
		if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
			return 0, errors.New("contains NaN or Inf")
		}
		ss += float64(v) * float64(v)
	}
	if ss == 0 {
		return 0, errors.New("is all zeros")
	}
	return math.Sqrt(ss), nil
}

// readPaths reads an optional paths file; it returns nil when the file does
// not exist and an error when its line count is not rows.
func readPaths(path string, rows int) ([]string, error) {
	raw, err := regularfile.ReadFile(path, "a text file", maxPathsBytes)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("features: %w", err)
	}
	text := strings.TrimSuffix(string(raw), "\n")
	var lines []string
	if text != "" {
		lines = strings.Split(text, "\n")
	}
	for i, l := range lines {
		lines[i] = strings.TrimSuffix(l, "\r")
		if lines[i] == "" {
			return nil, fmt.Errorf("features: %s: line %d is empty", path, i+1)
		}
	}
	if len(lines) != rows {
		return nil, fmt.Errorf("features: %s: %s for %s", path, words.Count(len(lines), "path"), words.Count(rows, "feature row"))
	}
	return lines, nil
}

// Text loads and validates the [K, Dim] text features of a domain.
func (s *Store) Text(name string) (*tensor.Matrix, error) {
	if err := s.checkKnown(name); err != nil {
		return nil, err
	}
	path := textFile(s.Dir, name)
	f, err := safetensors.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("features: no text features for domain %q: expected %s: %w", name, path, fs.ErrNotExist)
	}
	if err != nil {
		return nil, fmt.Errorf("features: text features of domain %q: %w", name, err)
	}
	defer f.Close()
	t, err := f.Tensor(TextFeaturesTensor)
	if err != nil {
		return nil, fmt.Errorf("features: %w", err)
	}
	if err := s.checkMatrix(path, t, len(s.Meta.Classes)); err != nil {
		return nil, err
	}
	return s.decodeMatrix(path, t)
}

// DomainSummary describes a domain without decoding its features.
type DomainSummary struct {
	Name        string
	Rows        int
	DType       DType
	ClassCounts []int // [K] rows per class
	Unlabelled  int   // rows with label -1
	HasPaths    bool
	HasText     bool
	Metadata    map[string]string
}

// Summary validates a domain file's header and labels (not the feature
// values) and counts rows per class, for inspection.
func (s *Store) Summary(name string) (*DomainSummary, error) {
	f, feats, labels, err := s.openDomain(name)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	sum := &DomainSummary{
		Name:        name,
		Rows:        len(labels),
		DType:       DType(feats.DType),
		ClassCounts: make([]int, len(s.Meta.Classes)),
		Metadata:    f.Metadata(),
	}
	for _, l := range labels {
		if l < 0 {
			sum.Unlabelled++
		} else {
			sum.ClassCounts[l]++
		}
	}
	sum.HasPaths = fileExists(pathsFile(s.Dir, name))
	sum.HasText = fileExists(textFile(s.Dir, name))
	return sum, nil
}

func fileExists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}

// WriteDataset validates meta and writes DIR/dataset.json atomically,
// creating DIR.
func WriteDataset(dir string, meta Dataset) error {
	path := filepath.Join(dir, DatasetFile)
	if err := meta.Validate(); err != nil {
		return fmt.Errorf("features: write %s: %w", path, err)
	}
	raw, err := json.MarshalIndent(meta, "", "  ")
	if err != nil {
		return fmt.Errorf("features: write %s: %w", path, err)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("features: %w", err)
	}
	return writeAtomic(path, append(raw, '\n'))
}

// writeAtomic writes data to path through atomicfile.
func writeAtomic(path string, data []byte) error {
	err := atomicfile.Write(path, func(w io.Writer) error {
		_, err := w.Write(data)
		return err
	})
	if err != nil {
		return fmt.Errorf("features: %w", err)
	}
	return nil
}

// WriteDomain writes DIR/<Name>.safetensors atomically, with features in
// d.DType (F16 when empty) and labels as I64; it writes <Name>.paths.txt when
// Paths is set and removes a stale one when it is nil. Feature rows must be
// finite and unit-norm; labels must be >= -1. DIR is created if needed.
func WriteDomain(dir string, d *Domain) error {
	if d == nil {
		return errors.New("features: WriteDomain: nil domain")
	}
	path := domainFile(dir, d.Name)
	fail := func(format string, args ...any) error {
		return fmt.Errorf("features: write %s: %s", path, fmt.Sprintf(format, args...))
	}
	if err := CheckName(DomainName, d.Name); err != nil {
		return fmt.Errorf("features: WriteDomain: %w", err)
	}
	dtype := d.DType
	if dtype == "" {
		dtype = F16
	}
	if dtype != F16 && dtype != F32 {
		return fail("dtype %q; want F16 or F32", d.DType)
	}
	values, err := unitRows(d.Features)
	if err != nil {
		return fail("features %v", err)
	}
	n := d.Features.Rows
	if len(d.Labels) != n {
		return fail("%s for %s", words.Count(len(d.Labels), "label"), words.Count(n, "feature row"))
	}
	labels := make([]int64, n)
	for i, l := range d.Labels {
		if l < -1 {
			return fail("label of row %d is %d; want -1 (unknown) or a class index", i, l)
		}
		labels[i] = int64(l)
	}
	var pathsText []byte
	if d.Paths != nil {
		if len(d.Paths) != n {
			return fail("%s for %s", words.Count(len(d.Paths), "path"), words.Count(n, "feature row"))
		}
		for i, p := range d.Paths {
			if p == "" || strings.ContainsAny(p, "\r\n") {
				return fail("path of row %d is empty or contains a line break", i)
			}
		}
		pathsText = []byte(strings.Join(d.Paths, "\n") + "\n")
	}
	ft, err := safetensors.FromFloat32(FeaturesTensor, safetensors.DType(dtype), []int{n, d.Features.Cols}, values)
	if err != nil {
		return fail("%v", err)
	}
	lt, err := safetensors.FromInt64(LabelsTensor, safetensors.I64, []int{n}, labels)
	if err != nil {
		return fail("%v", err)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("features: %w", err)
	}
	if err := safetensors.WriteFile(path, []*safetensors.Tensor{ft, lt}, d.Metadata); err != nil {
		return fmt.Errorf("features: %w", err)
	}
	if pathsText != nil {
		return writeAtomic(pathsFile(dir, d.Name), pathsText)
	}
	if err := os.Remove(pathsFile(dir, d.Name)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("features: remove stale paths file: %w", err)
	}
	return nil
}

// WriteText writes DIR/text/<domain>.safetensors atomically as F32
// text_features [K, dim], creating DIR/text. Rows must be finite and
// unit-norm.
func WriteText(dir, domain string, text *tensor.Matrix) error {
	if err := CheckName(DomainName, domain); err != nil {
		return fmt.Errorf("features: WriteText: %w", err)
	}
	path := textFile(dir, domain)
	values, err := unitRows(text)
	if err != nil {
		return fmt.Errorf("features: write %s: text features %w", path, err)
	}
	t, err := safetensors.FromFloat32(TextFeaturesTensor, safetensors.F32, []int{text.Rows, text.Cols}, values)
	if err != nil {
		return fmt.Errorf("features: write %s: %w", path, err)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return fmt.Errorf("features: %w", err)
	}
	if err := safetensors.WriteFile(path, []*safetensors.Tensor{t}, nil); err != nil {
		return fmt.Errorf("features: %w", err)
	}
	return nil
}

// unitRows checks that m is a non-empty matrix of finite unit-norm rows and
// returns its elements row-major without stride gaps.
func unitRows(m *tensor.Matrix) ([]float32, error) {
	if m == nil || m.Rows == 0 || m.Cols == 0 {
		return nil, errors.New("matrix is missing or empty")
	}
	for i := range m.Rows {
		norm, err := rowNorm(m.Row(i))
		if err != nil {
			return nil, fmt.Errorf("row %d %w", i, err)
		}
		if math.Abs(norm-1) > NormTolerance {
			return nil, fmt.Errorf("row %d has norm %.6g; L2-normalise rows before writing", i, norm)
		}
	}
	if m.Stride != m.Cols {
		m = m.Clone()
	}
	return m.Data[:m.Rows*m.Cols], nil
}
