package main

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/unimos/unimos/internal/shareddata"
	"github.com/unimos/unimos/internal/testkit"
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
	code, usage, _ := runCLI(t, "help")
	if code != 0 || !strings.Contains(usage, "\tadapt ") {
		t.Errorf("help: status %d, output %q", code, usage)
	}
	for _, args := range [][]string{{"help", "help"}, {"help", "-h"}, {"--help"}, {"-h", "help"}} {
		if code, out, errOut := runCLI(t, args...); code != 0 || out != usage || errOut != "" {
			t.Errorf("%q: status %d, stdout %q, stderr %q; want the usage of 'unimos help'", args, code, out, errOut)
		}
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
		// Every command that loads CLIP describes --weights the same way.
		synopsis, _, _ := strings.Cut(out, "\n")
		if strings.Contains(out, "--weights") && (!strings.Contains(synopsis, " --weights WEIGHTS") ||
			!strings.Contains(out, "  --weights WEIGHTS\n    \t"+strings.ReplaceAll(weightsUsage, "`", "")+"\n")) {
			t.Errorf("%s -h describes --weights otherwise than the other commands:\n%s", c.name, out)
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
		{"zeroshot", "--features", "x"},             // --domain missing
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

// TestFlagErrors gives commands flags that do not parse: each error is one
// line naming the flag with two dashes, as -h does, and saying what it
// takes, then the pointer to -h.
func TestFlagErrors(t *testing.T) {
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"adapt", "--features"}, "--features needs a value"},
		{[]string{"adapt", "--epochs", "x"}, `invalid value "x" for --epochs: want a whole number`},
		{[]string{"adapt", "--epochs", "99999999999999999999"}, `invalid value "99999999999999999999" for --epochs: out of range for a whole number`},
		{[]string{"adapt", "--seed", "-1"}, `invalid value "-1" for --seed: want a whole number, 0 or more`},
		{[]string{"adapt", "--lr", "fast"}, `invalid value "fast" for --lr: want a number`},
		{[]string{"adapt", "--quiet=maybe"}, `invalid value "maybe" for --quiet: want true or false`},
		{[]string{"adapt", "--fixed-weight=maybe"}, `invalid value "maybe" for --fixed-weight: want true or false`}, // a deprecated spelling
		{[]string{"serve", "--max-wait", "soon"}, `invalid value "soon" for --max-wait: want a duration such as 5ms, 2s or 1m30s`},
		{[]string{"inspect", "---per-class"}, `"---per-class" is not a flag: write flags as --name value or --name=value`},
		{[]string{"zeroshot", "--domian", "d"}, "unknown flag --domian (did you mean --domain?)"},
	} {
		code, stdout, stderr := runCLI(t, c.args...)
		want := "unimos " + c.args[0] + ": " + c.want + "\nRun 'unimos " + c.args[0] + " -h' for usage.\n"
		if code != 2 || stdout != "" || !strings.HasSuffix(stderr, want) || strings.Count(stderr, "\n") > 2+strings.Count(stderr, "note: ") {
			t.Errorf("%q: status %d, stdout %q, stderr %q; want status 2 and stderr %q", c.args, code, stdout, stderr, want)
		}
	}
}

// TestSynopsisRequiredFlags checks every command's usage line against its
// flags: a flag that the synopsis shows outside brackets, as required, has
// no default (which would make it optional).
func TestSynopsisRequiredFlags(t *testing.T) {
	optional := regexp.MustCompile(`\[[^]]*\]`)
	for _, c := range commands() {
		_, help, _ := runCLI(t, c.name, "-h")
		synopsis, _, _ := strings.Cut(help, "\n\n")
		for _, flag := range regexp.MustCompile(`--[a-z-]+`).FindAllString(optional.ReplaceAllString(synopsis, ""), -1) {
			entry := regexp.MustCompile(`(?m)^  ` + flag + `( .*)?\n.*$`).FindString(help)
			if entry == "" {
				t.Errorf("unimos %s: the synopsis names %s, which -h does not list:\n%s", c.name, flag, synopsis)
			} else if strings.Contains(entry, "(default ") {
				t.Errorf("unimos %s: the synopsis requires %s, which has a default:\n%s\n%s", c.name, flag, synopsis, entry)
			}
		}
	}
}

// TestCommandSummaries checks the command list against what the commands
// do: bench runs the paper's protocols and the pairs of any store.
func TestCommandSummaries(t *testing.T) {
	_, usage, _ := runCLI(t, "help")
	if !regexp.MustCompile(`(?m)^\tbench .*paper.*every pair of domains of any store`).MatchString(usage) {
		t.Errorf("the summary of bench does not say it benches any store's pairs:\n%s", usage)
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
	code, _, errOut := runCLI(t, "zeroshot", "--features", store, "--domain", "clipart")
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
	code, out, _ = runCLI(t, "zeroshot", "--features", store, "--domain", "sketch", "--json")
	var zs accuracyJSON
	if code != 0 || json.Unmarshal([]byte(out), &zs) != nil {
		t.Fatalf("zeroshot: status %d, output %q", code, out)
	}
	if zs != *sketch.ZeroShot {
		t.Errorf("zeroshot %+v disagrees with inspect %+v", zs, *sketch.ZeroShot)
	}
	if code, out, _ := runCLI(t, "inspect", "--per-class", store); code != 0 || !strings.Contains(out, "house") {
		t.Errorf("inspect --per-class: status %d, output %q", code, out)
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
	code, out, errOut := runCLI(t, "zeroshot", "--features", dir, "--domain", "d", "--json")
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

// TestUnlabelledDomains reads the hand-made store (domain d: 3 of 4 rows
// labelled) with one more domain u of a single unlabelled row, through
// inspect and zeroshot: u shows "unlabelled" where accuracies would be, and
// d says how many of its images are unlabelled.
func TestUnlabelledDomains(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "store")
	writeHandMadeStore(t, dir)
	u := filepath.Join(t.TempDir(), "u.npy")
	writeMatrixNPY(t, u, 1, 2, []float32{0, 1})
	if code, _, errOut := runCLI(t, "import", "--out", dir, "--domain", "u", "--from", u); code != 0 {
		t.Fatalf("import: status %d, stderr %q", code, errOut)
	}

	code, out, errOut := runCLI(t, "inspect", dir)
	if code != 0 {
		t.Fatalf("inspect: status %d, stderr %q", code, errOut)
	}
	rows := map[string][]string{}
	for _, line := range strings.Split(out, "\n") {
		if f := strings.Fields(line); len(f) > 0 {
			rows[f[0]] = f
		}
	}
	if want := []string{"d", "4", "3", "F32", "1", "2", "2", "66.67%", "75.00%"}; !slices.Equal(rows["d"], want) {
		t.Errorf("row of d %q, want %q\n%s", rows["d"], want, out)
	}
	if want := []string{"u", "1", "0", "F32", "-", "-", "-", "unlabelled", "unlabelled"}; !slices.Equal(rows["u"], want) {
		t.Errorf("row of u %q, want %q\n%s", rows["u"], want, out)
	}
	if !strings.Contains(out, "\nd: 1 image unlabelled, 3 labelled; the zero-shot accuracies are on the labelled ones\n") ||
		strings.Contains(out, "u: ") || !strings.HasPrefix(out, dir+": hand, backbone none, dim 2, 2 classes\n") {
		t.Errorf("inspect:\n%s", out)
	}

	code, out, _ = runCLI(t, "inspect", "--json", dir)
	var report struct {
		Domains []map[string]any `json:"domains"`
	}
	if err := json.Unmarshal([]byte(out), &report); code != 0 || err != nil || len(report.Domains) != 2 {
		t.Fatalf("inspect --json: status %d, %v, output %s", code, err, out)
	}
	d, un := report.Domains[0], report.Domains[1]
	if d["labelled"] != 3.0 || d["unlabelled"] != 1.0 || d["zero_shot"] == nil {
		t.Errorf("inspect --json, domain d: %v", d)
	}
	if _, has := un["zero_shot"]; has || un["labelled"] != 0.0 || un["unlabelled"] != 1.0 {
		t.Errorf("inspect --json, domain u: %v; want no zero_shot", un)
	}

	for _, c := range []struct {
		domain, text, json string
	}{
		{"u", "zero-shot on u (2 classes): 1 image, none labelled\naccuracy            unlabelled\nmean class accuracy unlabelled\n",
			`{"domain":"u","images":1,"labelled":0}`},
		{"d", "zero-shot on d (2 classes), on 3 labelled images of 4\naccuracy             66.67%\nmean class accuracy  75.00%\n",
			`{"domain":"d","images":4,"labelled":3,"accuracy":66.66666666666667,"mean_class_accuracy":75}`},
	} {
		code, out, errOut := runCLI(t, "zeroshot", "--features", dir, "--domain", c.domain)
		if code != 0 || out != c.text {
			t.Errorf("zeroshot --domain %s: status %d, stderr %q, stdout\n%s\nwant\n%s", c.domain, code, errOut, out, c.text)
		}
		code, out, _ = runCLI(t, "zeroshot", "--features", dir, "--domain", c.domain, "--json")
		var compact bytes.Buffer
		if err := json.Compact(&compact, []byte(out)); code != 0 || err != nil || compact.String() != c.json {
			t.Errorf("zeroshot --domain %s --json: status %d, %v, stdout %s, want %s", c.domain, code, err, out, c.json)
		}
	}
}

// TestInspectStoreArgument gives inspect its store as --features DIR or as
// the argument, and checks the refusals of both and of neither.
func TestInspectStoreArgument(t *testing.T) {
	dir := t.TempDir()
	writeHandMadeStore(t, dir)
	_, want, _ := runCLI(t, "inspect", dir)
	if code, out, errOut := runCLI(t, "inspect", "--features", dir); code != 0 || out != want {
		t.Errorf("inspect --features: status %d, stderr %q, stdout\n%s\nwant\n%s", code, errOut, out, want)
	}
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--features", dir, dir}, "--features already names the store"},
		{nil, "want 1 argument, the feature store DIR (or --features DIR), got 0"},
		{[]string{dir, dir}, "got 2"},
	} {
		code, _, errOut := runCLI(t, append([]string{"inspect"}, c.args...)...)
		if code != 2 || !strings.Contains(errOut, c.want) {
			t.Errorf("inspect %q: status %d, stderr %q, want 2 and %q", c.args, code, errOut, c.want)
		}
	}
}

// TestDeprecatedSpellings runs inspect, zeroshot and demo with the old
// spellings of their flags: the output is that of the new spelling, with a
// note.
func TestDeprecatedSpellings(t *testing.T) {
	dir := t.TempDir()
	writeHandMadeStore(t, dir)
	for _, c := range []struct {
		command, old, current string
		args                  []string // after the flag
	}{
		{"inspect", "classes", "per-class", []string{dir}},
		{"zeroshot", "target", "domain", []string{"d", "--features", dir}},
	} {
		code, want, _ := runCLI(t, append([]string{c.command, "--" + c.current}, c.args...)...)
		if code != 0 {
			t.Fatalf("%s --%s: status %d", c.command, c.current, code)
		}
		code, out, errOut := runCLI(t, append([]string{c.command, "--" + c.old}, c.args...)...)
		note := "note: --" + c.old + " is deprecated and will be removed; use --" + c.current + "\n"
		if code != 0 || out != want || errOut != note {
			t.Errorf("%s --%s: status %d, stderr %q, stdout\n%s\nwant the stdout of --%s:\n%s", c.command, c.old, code, errOut, out, c.current, want)
		}
		// -h shows the current spelling only.
		shows := func(help, flag string) bool {
			return regexp.MustCompile(`(?m)^  --` + flag + `( |$)`).MatchString(help)
		}
		if _, help, _ := runCLI(t, c.command, "-h"); shows(help, c.old) || !shows(help, c.current) {
			t.Errorf("%s -h should show --%s and not --%s:\n%s", c.command, c.current, c.old, help)
		}
	}
	// demo --keep DIR is --out DIR: a DIR that cannot be made fails the
	// same, once the benchmark is generated.
	if testing.Short() {
		t.Skip("demo generates the Office-Home-sized benchmark; skipped with -short")
	}
	notDir := filepath.Join(t.TempDir(), "not-a-folder")
	testkit.WriteFile(t, notDir, []byte("x"))
	_, help, _ := runCLI(t, "demo", "-h")
	if !strings.Contains(help, "\n  --out DIR\n") || strings.Contains(help, "--keep") {
		t.Errorf("demo -h should show --out and not --keep:\n%s", help)
	}
	code, _, want := runCLI(t, "demo", "--out", filepath.Join(notDir, "store"))
	code2, _, errOut := runCLI(t, "demo", "--keep", filepath.Join(notDir, "store"))
	note := "note: --keep is deprecated and will be removed; use --out\n"
	if code != 1 || code2 != 1 || !strings.Contains(want, notDir) || errOut != note+want {
		t.Errorf("demo --keep: status %d, stderr %q; want the note and what --out gives (status %d):\n%s", code2, errOut, code, want)
	}
}

// TestInspectPerClass checks that the per-class table lists every class of
// every domain.
func TestInspectPerClass(t *testing.T) {
	dir := t.TempDir()
	writeHandMadeStore(t, dir)
	_, out, _ := runCLI(t, "inspect", "--per-class", dir)
	if !regexp.MustCompile(`(?m)^\s*class\s+d\s*$`).MatchString(out) || !regexp.MustCompile(`(?m)^\s*zero\s+2\s*$`).MatchString(out) ||
		!regexp.MustCompile(`(?m)^\s*one\s+1\s*$`).MatchString(out) {
		t.Errorf("inspect --per-class:\n%s", out)
	}
}

// TestNotAStore gives inspect and zeroshot an image folder and a features
// file where a feature store belongs: the error says what was given and
// which command makes a store of it.
func TestNotAStore(t *testing.T) {
	images := filepath.Join(shareddata.Dir(t, "office_caltech10"), "images")
	npy := filepath.Join(t.TempDir(), "features.npy")
	writeMatrixNPY(t, npy, 1, 2, []float32{1, 0})
	extract := "features: " + images + " is not a feature store (no dataset.json); it holds folders of images: " +
		"to encode them with CLIP into a store, run: unimos extract --images " + images + " --weights WEIGHTS --out STORE\n"
	domain := filepath.Join(images, "amazon")
	extractDomain := "features: " + domain + " is not a feature store (no dataset.json); it holds folders of images, as one domain of an image folder does: " +
		"to encode them with CLIP into a store, run: unimos extract --images " + images + " --domains amazon --weights WEIGHTS --out STORE\n"
	importFile := "features: " + npy + " is a file, not a feature store (a folder with dataset.json); " +
		"to add features from a .npy, .npz or .pth file to a store, run: unimos import --from " + npy + " --domain NAME --out STORE\n"
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"inspect", images}, "unimos inspect: " + extract},
		{[]string{"inspect", "--features", domain}, "unimos inspect: " + extractDomain},
		{[]string{"zeroshot", "--features", images, "--domain", "amazon"}, "unimos zeroshot: " + extract},
		{[]string{"inspect", npy}, "unimos inspect: " + importFile},
		{[]string{"zeroshot", "--features", npy, "--domain", "d"}, "unimos zeroshot: " + importFile},
	} {
		code, out, errOut := runCLI(t, c.args...)
		if code != 1 || out != "" || errOut != c.want {
			t.Errorf("%q: status %d, stdout %q, stderr\n%q\nwant\n%q", c.args, code, out, errOut, c.want)
		}
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

	rows := testkit.ReadCSV(t, filepath.Join(out, "predictions.csv"))
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

// TestErrorsNameTheCommandOnce checks that an error from the package a
// command is named after reads "unimos extract: PROBLEM", not
// "unimos extract: extract: PROBLEM", nor "unimos merge: extract: merge:
// PROBLEM" for a command whose errors carry its package's name and its
// own, that other packages keep their prefix, and that the class file of
// import, read by package extract, is named by its flag rather than by
// "extract: ", another command's name.
func TestErrorsNameTheCommandOnce(t *testing.T) {
	dir := t.TempDir()
	missing := filepath.Join(dir, "missing")
	photos := t.TempDir()
	feats, pipe, noClasses := filepath.Join(dir, "f.npy"), filepath.Join(dir, "pipe.txt"), filepath.Join(dir, "empty.txt")
	testkit.WriteFile(t, feats, f32NPY("(2, 2)", []float32{1, 0, 0, 1}))
	testkit.WriteFile(t, noClasses, []byte("\n"))
	testkit.MakeFIFO(t, pipe)
	importClasses := func(classes string) []string {
		return []string{"import", "--out", filepath.Join(dir, "store"), "--domain", "A", "--from", feats, "--classes", classes}
	}
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"extract", "--images", missing, "--weights", missing, "--out", missing + "-out"}, "unimos extract: open " + missing},
		{[]string{"merge", "--out", missing, photos}, "unimos merge: " + photos + " is not a finished shard"},
		{[]string{"inspect", "--features", missing}, "unimos inspect: features: "},
		{importClasses(pipe), "unimos import: --classes " + pipe + ": is a named pipe, not a text file\n"},
		{importClasses(noClasses), "unimos import: --classes " + noClasses + ": no class names\n"},
	} {
		code, _, errOut := runCLI(t, c.args...)
		if code != 1 || !strings.HasPrefix(errOut, c.want) {
			t.Errorf("%v: status %d, stderr %q; want status 1 and a message starting %q", c.args, code, errOut, c.want)
		}
	}
}

// TestPanicIsAnInternalError checks that a panic in a command ends in exit
// status 3 and a message asking for a report, with the panic's value and
// where it happened, instead of Go's crash with status 2, which the README
// gives to usage errors.
func TestPanicIsAnInternalError(t *testing.T) {
	var out, errOut bytes.Buffer
	ctx := &context{stdout: &out, stderr: &errOut}
	boom := command{name: "boom", run: func(*context, []string) error {
		var rows []int
		_ = rows[3] // an index out of range, as a bug would be
		return nil
	}}
	if code := report(ctx, boom.name, call(boom, ctx, nil)); code != 3 {
		t.Errorf("exit status %d, want 3", code)
	}
	msg := errOut.String()
	for _, want := range []string{"unimos boom: internal error", "please report it", "index out of range [3] with length 0", "main_test.go"} {
		if !strings.Contains(msg, want) {
			t.Errorf("message lacks %q:\n%s", want, msg)
		}
	}
}
