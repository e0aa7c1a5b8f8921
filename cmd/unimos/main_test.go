package main

import (
	"bytes"
	"encoding/binary"
	"encoding/csv"
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/unimos/unimos/safetensors"
	"github.com/unimos/unimos/unimos"
)

// runCLI runs the command line and returns its exit status and output.
func runCLI(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errOut bytes.Buffer
	code = run(args, &context{stdout: &out, stderr: &errOut})
	return code, out.String(), errOut.String()
}

func TestHelpAndUsageErrors(t *testing.T) {
	if code, out, _ := runCLI(t, "help"); code != 0 || !strings.Contains(out, "adapt") {
		t.Errorf("help: status %d, output %q", code, out)
	}
	if code, _, errOut := runCLI(t); code != 2 || !strings.Contains(errOut, "Usage") {
		t.Errorf("no command: status %d, stderr %q", code, errOut)
	}
	if code, _, errOut := runCLI(t, "frobnicate"); code != 2 || !strings.Contains(errOut, `unknown command "frobnicate"`) {
		t.Errorf("unknown command: status %d, stderr %q", code, errOut)
	}
	for _, c := range commands() {
		// -h and "help CMD" print the same usage on stdout, nothing on stderr.
		code, out, errOut := runCLI(t, c.name, "-h")
		if code != 0 || !strings.HasPrefix(out, "Usage: unimos "+c.name) || errOut != "" {
			t.Errorf("%s -h: status %d, stdout %q, stderr %q", c.name, code, out, errOut)
		}
		if code, help, _ := runCLI(t, "help", c.name); code != 0 || help != out {
			t.Errorf("help %s: status %d, stdout %q, want the -h text", c.name, code, help)
		}
	}
	if code, out, _ := runCLI(t, "--version"); code != 0 || !strings.HasPrefix(out, "unimos ") || !strings.Contains(out, "GEMM backend") {
		t.Errorf("--version: status %d, stdout %q", code, out)
	}
	// A mistyped flag: one line with a suggestion, then the pointer to -h.
	code, out, errOut := runCLI(t, "adapt", "--epoch", "3")
	want := "unimos adapt: unknown flag --epoch (did you mean --epochs?)\nRun 'unimos adapt -h' for usage.\n"
	if code != 2 || errOut != want || out != "" {
		t.Errorf("adapt --epoch: status %d, stdout %q, stderr %q, want stderr %q", code, out, errOut, want)
	}
	if code, _, errOut := runCLI(t, "adpat"); code != 2 || !strings.Contains(errOut, `unknown command "adpat" (did you mean adapt?)`) || strings.Contains(errOut, "Commands:") {
		t.Errorf("adpat: status %d, stderr %q", code, errOut)
	}
	cases := [][]string{
		{"zeroshot", "--features", "x"},             // --target missing
		{"zeroshot", "--bogus"},                     // unknown flag
		{"inspect"},                                 // DIR missing
		{"synth", "--preset", "nope", "--out", "x"}, // unknown preset
		{"adapt", "--features", "x", "--source", "a", "--target", "b", "--out", "o", "--preset", "nope"},
		{"adapt", "--features", "x", "--source", "a", "--target", "b", "--out", "o", "--ortho", "frobenius"},
		{"adapt", "--features", "x", "--source", "a", "--target", "b", "--out", "o", "--epochs", "0"},
	}
	for _, args := range cases {
		if code, _, errOut := runCLI(t, args...); code != 2 {
			t.Errorf("%q: status %d (stderr %q), want 2", args, code, errOut)
		}
	}
}

func TestRuntimeErrors(t *testing.T) {
	dir := t.TempDir()
	if code, _, errOut := runCLI(t, "inspect", filepath.Join(dir, "absent")); code != 1 || !strings.Contains(errOut, "dataset.json") {
		t.Errorf("missing store: status %d, stderr %q", code, errOut)
	}
	store := filepath.Join(dir, "store")
	if code, _, errOut := runCLI(t, "synth", "--preset", "tiny", "--out", store); code != 0 {
		t.Fatalf("synth: status %d, stderr %q", code, errOut)
	}
	code, _, errOut := runCLI(t, "zeroshot", "--features", store, "--target", "clipart")
	if code != 1 || !strings.Contains(errOut, "available: photo, sketch, painting") {
		t.Errorf("unknown domain: status %d, stderr %q", code, errOut)
	}
}

// TestSynthInspectZeroShot writes a store with `unimos synth` and reads it
// back with inspect and zeroshot, whose numbers must agree.
func TestSynthInspectZeroShot(t *testing.T) {
	store := filepath.Join(t.TempDir(), "tiny")
	if code, _, errOut := runCLI(t, "synth", "--preset", "tiny", "--out", store, "--seed", "3"); code != 0 {
		t.Fatalf("synth: status %d, stderr %q", code, errOut)
	}
	code, out, errOut := runCLI(t, "inspect", "--json", store)
	if code != 0 {
		t.Fatalf("inspect: status %d, stderr %q", code, errOut)
	}
	var report storeReport
	if err := json.Unmarshal([]byte(out), &report); err != nil {
		t.Fatal(err)
	}
	if len(report.Domains) != 3 || report.Dim != 64 || len(report.Classes) != 8 {
		t.Fatalf("report %+v", report)
	}
	sketch := report.Domains[1]
	total := 0
	for _, c := range sketch.ClassCounts {
		total += c
	}
	if sketch.Name != "sketch" || sketch.Images != 280 || total != 280 || sketch.DType != "F16" {
		t.Errorf("sketch: %+v", sketch)
	}
	code, out, _ = runCLI(t, "zeroshot", "--features", store, "--target", "sketch", "--json")
	var zs accuracyJSON
	if code != 0 || json.Unmarshal([]byte(out), &zs) != nil {
		t.Fatalf("zeroshot: status %d, output %q", code, out)
	}
	if zs != *sketch.ZeroShot {
		t.Errorf("zeroshot %+v disagrees with inspect %+v", zs, *sketch.ZeroShot)
	}
	if code, out, _ := runCLI(t, "inspect", "--classes", store); code != 0 || !strings.Contains(out, "house") {
		t.Errorf("inspect --classes: status %d, output %q", code, out)
	}
}

// writeHandMadeStore writes a feature store byte by byte, without the
// project's writers: 2 classes, dim 2, one domain "d" of 4 rows with F32
// features, labels 0, 0, 1, -1 and text prototypes e1 and e2.
func writeHandMadeStore(t *testing.T, dir string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Join(dir, "text"), 0o755); err != nil {
		t.Fatal(err)
	}
	meta := `{"name":"hand","backbone":"none","dim":2,"classes":["zero","one"],"domains":["d"]}`
	if err := os.WriteFile(filepath.Join(dir, "dataset.json"), []byte(meta), 0o644); err != nil {
		t.Fatal(err)
	}
	s := float32(math.Sqrt(0.5))
	// Row 1 lies nearer e2 although labelled 0: zero-shot gets it wrong.
	features := []float32{1, 0, 0.6, 0.8, 0, 1, s, s}
	labels := []int64{0, 0, 1, -1}
	safetensorsFile(t, filepath.Join(dir, "d.safetensors"),
		`{"features":{"dtype":"F32","shape":[4,2],"data_offsets":[0,32]},"labels":{"dtype":"I64","shape":[4],"data_offsets":[32,64]}}`,
		features, labels)
	safetensorsFile(t, filepath.Join(dir, "text", "d.safetensors"),
		`{"text_features":{"dtype":"F32","shape":[2,2],"data_offsets":[0,16]}}`,
		[]float32{1, 0, 0, 1}, nil)
}

// safetensorsFile writes header (padded with spaces to 8 bytes) and the
// little-endian values, following the published format.
func safetensorsFile(t *testing.T, path, header string, floats []float32, ints []int64) {
	t.Helper()
	for len(header)%8 != 0 {
		header += " "
	}
	var b bytes.Buffer
	binary.Write(&b, binary.LittleEndian, uint64(len(header)))
	b.WriteString(header)
	binary.Write(&b, binary.LittleEndian, floats)
	if ints != nil {
		binary.Write(&b, binary.LittleEndian, ints)
	}
	if err := os.WriteFile(path, b.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestZeroShotOnHandMadeStore(t *testing.T) {
	dir := t.TempDir()
	writeHandMadeStore(t, dir)
	code, out, errOut := runCLI(t, "zeroshot", "--features", dir, "--target", "d", "--json")
	if code != 0 {
		t.Fatalf("status %d, stderr %q", code, errOut)
	}
	var zs accuracyJSON
	if err := json.Unmarshal([]byte(out), &zs); err != nil {
		t.Fatal(err)
	}
	// Labelled rows 0, 1, 2 are predicted 0, 1, 1: 2 of 3 right; class 0
	// has 1 of 2, class 1 has 1 of 1, so mean class accuracy is 75%.
	if math.Abs(zs.Accuracy-200.0/3) > 1e-9 || zs.MeanClassAccuracy != 75 {
		t.Errorf("got %+v, want accuracy 66.67 and mean class accuracy 75", zs)
	}
	if code, out, _ := runCLI(t, "inspect", dir); code != 0 || !strings.Contains(out, "66.67%") {
		t.Errorf("inspect: status %d, output %q", code, out)
	}
}

// TestAdaptWritesRunDirectory trains briefly on a synthetic store and checks
// the three outputs against each other.
func TestAdaptWritesRunDirectory(t *testing.T) {
	dir := t.TempDir()
	store := filepath.Join(dir, "tiny")
	if code, _, errOut := runCLI(t, "synth", "--preset", "tiny", "--out", store); code != 0 {
		t.Fatalf("synth: %q", errOut)
	}
	out := filepath.Join(dir, "run")
	code, stdout, errOut := runCLI(t, "adapt", "--features", store, "--source", "photo", "--target", "sketch",
		"--epochs", "3", "--seed", "7", "--lr", "0.01", "--out", out)
	if code != 0 {
		t.Fatalf("adapt: status %d, stderr %q", code, errOut)
	}
	if !strings.Contains(stdout, "photo->sketch") || !strings.Contains(errOut, "epoch 3/3") {
		t.Errorf("stdout %q, stderr %q", stdout, errOut)
	}
	raw, err := os.ReadFile(filepath.Join(out, "result.json"))
	if err != nil {
		t.Fatal(err)
	}
	var result unimos.Result
	if err := json.Unmarshal(raw, &result); err != nil {
		t.Fatal(err)
	}
	if result.Task != "photo->sketch" || result.Seed != 7 || result.Epochs != 3 || result.Config.LR != 0.01 ||
		result.Config.Alpha != 1 || len(result.History) != 4 || result.Final == nil || len(result.Final.PerClass) != 8 {
		t.Errorf("result.json: %s", raw)
	}
	if last := result.History[3]; last.Accuracy == nil || *last.Accuracy != result.Final.Accuracy {
		t.Errorf("final accuracy %v is not the last epoch's", result.Final.Accuracy)
	}

	f, err := os.Open(filepath.Join(out, "predictions.csv"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	rows, err := csv.NewReader(f).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != 281 || rows[0][2] != "class" {
		t.Errorf("predictions.csv has %d rows, header %v", len(rows), rows[0])
	}

	model, err := safetensors.Open(filepath.Join(out, "model.safetensors"))
	if err != nil {
		t.Fatal(err)
	}
	defer model.Close()
	w, err := model.Tensor("text_separator.weight")
	if err != nil || len(w.Shape) != 2 || w.Shape[0] != 64 || w.Shape[1] != 64 {
		t.Errorf("text_separator.weight: %v %v", w, err)
	}
	if !strings.Contains(model.Metadata()["config"], `"lr":0.01`) {
		t.Errorf("config metadata %q", model.Metadata()["config"])
	}
}
