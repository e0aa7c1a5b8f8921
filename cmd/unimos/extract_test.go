package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/unimos/unimos/clip"
	"github.com/unimos/unimos/extract"
	"github.com/unimos/unimos/features"
	"github.com/unimos/unimos/internal/shareddata"
	"github.com/unimos/unimos/tensor"
	"github.com/unimos/unimos/unimos"
)

// callCommand runs one command function and returns its error and output.
func callCommand(fn func(*context, []string) error, args ...string) (err error, stdout, stderr string) {
	var out, errOut bytes.Buffer
	err = fn(&context{stdout: &out, stderr: &errOut}, args)
	return err, out.String(), errOut.String()
}

// officeSubset builds ROOT/<Domain>/<Class>/ of symbolic links to the first
// perClass Office-Caltech-10 photographs of each class of amazon and
// webcam, renaming webcam to Web_Cam and backpack to back_pack so that the
// prompts show the '_' handling. It returns ROOT and the linked names by
// domain, sorted as extract orders them.
func officeSubset(t *testing.T, perClass int) (string, map[string][]string) {
	t.Helper()
	src := filepath.Join(shareddata.Dir(t, "office_caltech10"), "images")
	root := filepath.Join(t.TempDir(), "office10")
	names := map[string][]string{}
	for dom, from := range map[string]string{"amazon": "amazon", "Web_Cam": "webcam"} {
		classes, err := os.ReadDir(filepath.Join(src, from))
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range classes {
			class := strings.ReplaceAll(c.Name(), "backpack", "back_pack")
			files, err := os.ReadDir(filepath.Join(src, from, c.Name()))
			if err != nil {
				t.Fatal(err)
			}
			dir := filepath.Join(root, dom, class)
			if err := os.MkdirAll(dir, 0o755); err != nil {
				t.Fatal(err)
			}
			for _, f := range files[:perClass] {
				if err := os.Symlink(filepath.Join(src, from, c.Name(), f.Name()), filepath.Join(dir, f.Name())); err != nil {
					t.Fatal(err)
				}
				names[dom] = append(names[dom], dom+"/"+class+"/"+f.Name())
			}
		}
		slices.Sort(names[dom]) // "back_pack" sorts first, as "backpack" did
	}
	return root, names
}

// TestExtractOfficeThenAdapt extracts real photographs, checks the store
// against independent computations, and trains UniMoS on it.
func TestExtractOfficeThenAdapt(t *testing.T) {
	weights := filepath.Join(shareddata.Dir(t, "clip_reference"), "models", "vit_tiny.safetensors")
	perClass := 4
	if testing.Short() {
		perClass = 2
	}
	root, wantPaths := officeSubset(t, perClass)
	out := filepath.Join(t.TempDir(), "store")
	err, stdout, stderr := callCommand(runExtract, "--weights", weights, "--images", root, "--out", out, "--batch", "16", "--workers", "2")
	if err != nil {
		t.Fatalf("extract: %v\nstderr:\n%s", err, stderr)
	}
	if !strings.Contains(stdout, fmt.Sprintf("F16 features [32] of %d images in 2 domains, 10 classes", 20*perClass)) {
		t.Errorf("stdout %q", stdout)
	}
	for _, d := range []string{"amazon", "Web_Cam"} {
		if !strings.Contains(stderr, fmt.Sprintf("%-12s %6d images", d, 10*perClass)) {
			t.Errorf("stderr has no summary line for %s:\n%s", d, stderr)
		}
	}

	store, err := features.Open(out)
	if err != nil {
		t.Fatal(err)
	}
	wantClasses := []string{"back_pack", "bike", "calculator", "headphones", "keyboard", "laptop", "monitor", "mouse", "mug", "projector"}
	if m := store.Meta; m.Name != "office10" || m.Dim != 32 || !slices.Equal(m.Classes, wantClasses) || !slices.Equal(m.Domains, []string{"Web_Cam", "amazon"}) {
		t.Errorf("dataset.json: %+v", m)
	}
	model, err := clip.Load(weights)
	if err != nil {
		t.Fatal(err)
	}
	domains := map[string]*features.Domain{}
	for _, name := range store.Meta.Domains {
		d, err := store.Domain(name)
		if err != nil {
			t.Fatal(err)
		}
		domains[name] = d
		if !slices.Equal(d.Paths, wantPaths[name]) {
			t.Errorf("%s paths:\n%q\nwant\n%q", name, d.Paths, wantPaths[name])
		}
		for i, p := range d.Paths {
			if class := strings.Split(p, "/")[1]; store.Meta.Classes[d.Labels[i]] != class {
				t.Errorf("%s row %d (%s): label %d", name, i, p, d.Labels[i])
			}
			var ss float64
			for _, v := range d.Features.Row(i) {
				ss += float64(v) * float64(v)
			}
			if math.Abs(math.Sqrt(ss)-1) > 1e-3 {
				t.Errorf("%s row %d: norm %g", name, i, math.Sqrt(ss))
			}
		}
	}
	// One row recomputed from the photograph.
	checkRowIsPhoto(t, model, domains["Web_Cam"], 5, filepath.Join(root, filepath.FromSlash(wantPaths["Web_Cam"][5])))
	// The text features of the first class, from the prompt written out.
	tok, err := clip.DefaultTokenizer()
	if err != nil {
		t.Fatal(err)
	}
	ids, err := tok.Tokenize([]string{"a web cam photo of a back pack."}, clip.ContextLength, false)
	if err != nil {
		t.Fatal(err)
	}
	want, err := model.EncodeText(ids)
	if err != nil {
		t.Fatal(err)
	}
	tensor.NormalizeRows(want, 0)
	text, err := store.Text("Web_Cam")
	if err != nil {
		t.Fatal(err)
	}
	for j, v := range want.Row(0) {
		if d := math.Abs(float64(v - text.At(0, j))); d > 1e-6 {
			t.Fatalf("Web_Cam text row 0 differs from the embedding of the prompt by %g", d)
		}
	}

	// The store feeds the trainer. The weights are random, so accuracy
	// means nothing; the run must complete with valid predictions.
	cfg := unimos.DefaultConfig()
	cfg.Epochs, cfg.BatchSize = 2, 8
	tr, err := unimos.NewTrainer(cfg, unimos.Task{
		SourceFeatures: domains["amazon"].Features, SourceLabels: domains["amazon"].Labels,
		TargetFeatures: domains["Web_Cam"].Features, TargetLabels: domains["Web_Cam"].Labels, Text: text,
	})
	if err != nil {
		t.Fatal(err)
	}
	history := tr.Run(nil)
	last := history[len(history)-1]
	if len(history) != 3 || len(last.Predictions) != 10*perClass || last.Accuracy == nil {
		t.Fatalf("history of %d evaluations, %d predictions", len(history), len(last.Predictions))
	}
	for i, p := range last.Predictions {
		if p < 0 || p >= 10 {
			t.Errorf("prediction %d = %d, outside [0, 10)", i, p)
		}
	}
}

// TestExtractListMatchesFolders extracts the same photographs from an image
// list in the reference format: the features and labels must be those of
// the folder run, byte for byte; the paths are as the list writes them.
func TestExtractListMatchesFolders(t *testing.T) {
	weights := filepath.Join(shareddata.Dir(t, "clip_reference"), "models", "vit_tiny.safetensors")
	root, paths := officeSubset(t, 2)
	folders := filepath.Join(t.TempDir(), "folders")
	if err, _, stderr := callCommand(runExtract, "--weights", weights, "--images", root, "--domains", "amazon", "--out", folders, "--batch", "8"); err != nil {
		t.Fatalf("%v\n%s", err, stderr)
	}
	var list strings.Builder
	classes := map[string]int{}
	for _, p := range paths["amazon"] {
		class := strings.Split(p, "/")[1]
		if _, ok := classes[class]; !ok {
			classes[class] = len(classes)
		}
		fmt.Fprintf(&list, "./%s %d\n", p, classes[class])
	}
	listFile := filepath.Join(t.TempDir(), "amazon.txt")
	if err := os.WriteFile(listFile, []byte(list.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	fromList := filepath.Join(t.TempDir(), "list")
	if err, _, stderr := callCommand(runExtract, "--weights", weights, "--images", root, "--list", listFile, "--out", fromList, "--batch", "8", "--name", "office10"); err != nil {
		t.Fatalf("%v\n%s", err, stderr)
	}
	for _, f := range []string{"amazon.safetensors", "dataset.json", "text/amazon.safetensors"} {
		a, errA := os.ReadFile(filepath.Join(folders, f))
		b, errB := os.ReadFile(filepath.Join(fromList, f))
		if errA != nil || errB != nil || !bytes.Equal(a, b) {
			t.Errorf("%s differs between the folder and the list run (%v, %v)", f, errA, errB)
		}
	}
	raw, err := os.ReadFile(filepath.Join(fromList, "amazon.paths.txt"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(string(raw), "./amazon/back_pack/") {
		t.Errorf("paths.txt starts %q, want the list's paths", string(raw)[:40])
	}
}

// copyFile copies the file from to the path to, creating its folder.
func copyFile(t *testing.T, from, to string) {
	t.Helper()
	data, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Dir(to), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(to, data, 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestExtractUnlabelledTarget extracts the headline layout from real
// photographs: labelled amazon photos in the class folders of ROOT/source,
// unlabelled webcam photos directly in ROOT/target, ROOT a generic
// "images" folder, and an empty class folder.
func TestExtractUnlabelledTarget(t *testing.T) {
	weights := filepath.Join(shareddata.Dir(t, "clip_reference"), "models", "vit_tiny.safetensors")
	src := filepath.Join(shareddata.Dir(t, "office_caltech10"), "images")
	root := filepath.Join(t.TempDir(), "office_pair", "images")
	for _, class := range []string{"bike", "mug"} {
		for _, f := range []string{"frame_0001.jpg", "frame_0002.jpg"} {
			copyFile(t, filepath.Join(src, "amazon", class, f), filepath.Join(root, "source", class, f))
		}
	}
	if err := os.MkdirAll(filepath.Join(root, "source", "calculator"), 0o755); err != nil {
		t.Fatal(err)
	}
	// Named so that the order by path ("w1", "w10", "w2") is not the
	// order of creation.
	targets := map[string]string{"w2.jpg": "bike", "w10.jpg": "mug", "w1.jpg": "laptop"}
	for name, class := range targets {
		copyFile(t, filepath.Join(src, "webcam", class, "frame_0001.jpg"), filepath.Join(root, "target", name))
	}
	out := filepath.Join(t.TempDir(), "store")
	err, stdout, stderr := callCommand(runExtract, "--weights", weights, "--images", root, "--out", out, "--batch", "2", "--workers", "2")
	if err != nil {
		t.Fatalf("extract: %v\nstderr:\n%s", err, stderr)
	}
	wantStderr := []string{
		"warning: domain source: class folder calculator has no images\n",
		"warning: class calculator has no labelled image in any domain\n",
		"office_pair: 7 images (3 unlabelled) in 2 domains, 3 classes; ",
		fmt.Sprintf("%-12s %6d images", "target", 3),
	}
	at := 0
	for _, want := range wantStderr {
		i := strings.Index(stderr[at:], want)
		if i < 0 {
			t.Fatalf("stderr lacks %q after offset %d (the warnings come before the extraction):\n%s", want, at, stderr)
		}
		at += i + len(want)
	}
	if want := out + ": feature store of office_pair, F16 features [32] of 7 images (3 unlabelled) in 2 domains, 3 classes\n"; stdout != want {
		t.Errorf("stdout %q, want %q", stdout, want)
	}

	store, err := features.Open(out)
	if err != nil {
		t.Fatal(err)
	}
	if m := store.Meta; m.Name != "office_pair" || !slices.Equal(m.Classes, []string{"bike", "calculator", "mug"}) || !slices.Equal(m.Domains, []string{"source", "target"}) {
		t.Errorf("dataset.json: %+v", m)
	}
	target, err := store.Domain("target")
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(target.Labels, []int{-1, -1, -1}) {
		t.Errorf("target labels %v, want all -1", target.Labels)
	}
	raw, err := os.ReadFile(filepath.Join(out, "target.paths.txt"))
	if err != nil {
		t.Fatal(err)
	}
	if want := "target/w1.jpg\ntarget/w10.jpg\ntarget/w2.jpg\n"; string(raw) != want {
		t.Errorf("target.paths.txt:\n%s\nwant\n%s", raw, want)
	}
	// The row of w10.jpg is that photograph's embedding.
	model, err := clip.Load(weights)
	if err != nil {
		t.Fatal(err)
	}
	checkRowIsPhoto(t, model, target, 1, filepath.Join(root, "target", "w10.jpg"))
	// What inspect reports.
	err, stdout, _ = callCommand(runInspect, "--json", out)
	if err != nil {
		t.Fatal(err)
	}
	var report storeReport
	if err := json.Unmarshal([]byte(stdout), &report); err != nil {
		t.Fatalf("inspect --json: %v\n%s", err, stdout)
	}
	want := []domainReport{
		{Name: "source", Images: 4, Labelled: 4, DType: "F16", ClassCounts: []int{2, 0, 2}},
		{Name: "target", Images: 3, Labelled: 0, Unlabelled: 3, DType: "F16", ClassCounts: []int{0, 0, 0}},
	}
	for i, d := range report.Domains {
		d.ZeroShot = nil
		if i >= len(want) || !reflect.DeepEqual(d, want[i]) {
			t.Errorf("inspect: domain %+v, want %+v", d, want[min(i, len(want)-1)])
		}
	}
	if len(report.Domains) != len(want) || report.Domains[1].ZeroShot != nil {
		t.Errorf("inspect: %+v", report.Domains)
	}
}

// TestExtractNoClassFolders extracts domains of loose images only: the
// class names must come from --classes.
func TestExtractNoClassFolders(t *testing.T) {
	weights := filepath.Join(shareddata.Dir(t, "clip_reference"), "models", "vit_tiny.safetensors")
	src := filepath.Join(shareddata.Dir(t, "office_caltech10"), "images")
	root := filepath.Join(t.TempDir(), "webcam_dump")
	copyFile(t, filepath.Join(src, "webcam", "mug", "frame_0001.jpg"), filepath.Join(root, "target", "a.jpg"))
	copyFile(t, filepath.Join(src, "webcam", "bike", "frame_0001.jpg"), filepath.Join(root, "target", "b.jpg"))
	out := filepath.Join(t.TempDir(), "store")
	args := []string{"--weights", weights, "--images", root, "--out", out}
	err, _, _ := callCommand(runExtract, args...)
	var usage usageError
	if err == nil || errors.As(err, &usage) || !strings.Contains(err.Error(), root+": no domain has class folders") || !strings.Contains(err.Error(), "--classes FILE") {
		t.Fatalf("err = %v, want a runtime error asking for --classes FILE", err)
	}
	classes := filepath.Join(t.TempDir(), "classes.txt")
	if err := os.WriteFile(classes, []byte("mug\nbike\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	err, stdout, stderr := callCommand(runExtract, append(args, "--classes", classes)...)
	if err != nil {
		t.Fatalf("with --classes: %v\n%s", err, stderr)
	}
	if strings.Contains(stderr, "warning") || !strings.Contains(stdout, "of 2 images (2 unlabelled) in 1 domain, 2 classes") {
		t.Errorf("stdout %q\nstderr %q", stdout, stderr)
	}
	store, err := features.Open(out)
	if err != nil {
		t.Fatal(err)
	}
	d, err := store.Domain("target")
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(store.Meta.Classes, []string{"mug", "bike"}) || !slices.Equal(d.Labels, []int{-1, -1}) || !slices.Equal(d.Paths, []string{"target/a.jpg", "target/b.jpg"}) {
		t.Errorf("classes %q, labels %v, paths %q", store.Meta.Classes, d.Labels, d.Paths)
	}
}

// TestExtractPrecision runs --precision f32, bf16 and auto: dataset.json
// records what ChoosePrecision resolves each to, stderr says what auto chose
// (with its measurement) and when bf16 falls back, and the products are f32
// again after the command.
func TestExtractPrecision(t *testing.T) {
	weights := filepath.Join(shareddata.Dir(t, "clip_reference"), "models", "vit_tiny.safetensors")
	src := filepath.Join(shareddata.Dir(t, "office_caltech10"), "images")
	root := filepath.Join(t.TempDir(), "office")
	copyFile(t, filepath.Join(src, "webcam", "mug", "frame_0001.jpg"), filepath.Join(root, "webcam", "mug", "a.jpg"))
	copyFile(t, filepath.Join(src, "webcam", "bike", "frame_0001.jpg"), filepath.Join(root, "webcam", "bike", "b.jpg"))
	for _, asked := range []tensor.Precision{tensor.PrecisionF32, tensor.PrecisionBF16, tensor.PrecisionAuto} {
		want, why, err := tensor.ChoosePrecision(asked)
		if err != nil {
			t.Fatal(err)
		}
		out := filepath.Join(t.TempDir(), "store")
		err, stdout, stderr := callCommand(runExtract, "--weights", weights, "--images", root, "--out", out, "--precision", string(asked))
		if err != nil {
			t.Fatalf("--precision %s: %v\n%s", asked, err, stderr)
		}
		store, err := features.Open(out)
		if err != nil {
			t.Fatal(err)
		}
		if store.Meta.Precision != string(want) {
			t.Errorf("--precision %s: dataset.json records %q, want %q", asked, store.Meta.Precision, want)
		}
		said := strings.Contains(stderr, fmt.Sprintf("products in %s: ", want))
		if wantSaid := want != asked || asked == tensor.PrecisionAuto; said != wantSaid {
			t.Errorf("--precision %s (%s, %s): stderr says the choice: %v, want %v\n%s", asked, want, why, said, wantSaid, stderr)
		}
		if bf16Said := strings.Contains(stdout, "(bf16 products)"); bf16Said != (want == tensor.PrecisionBF16) {
			t.Errorf("--precision %s: stdout %q", asked, stdout)
		}
		if p := tensor.CurrentPrecision(); p != tensor.PrecisionF32 {
			t.Errorf("--precision %s: products in %s after the command, want f32", asked, p)
		}
		// inspect shows it: always in the JSON, in the text when not f32.
		err, stdout, stderr = callCommand(runInspect, "--json", out)
		var report storeReport
		if err != nil || json.Unmarshal([]byte(stdout), &report) != nil || report.Precision != string(want) {
			t.Errorf("inspect --json: %v, precision %q, want %q\n%s%s", err, report.Precision, want, stdout, stderr)
		}
		err, stdout, _ = callCommand(runInspect, out)
		if shown := strings.Contains(stdout, "(bf16 products)"); err != nil || shown != (want == tensor.PrecisionBF16) {
			t.Errorf("inspect: %v\n%s", err, stdout)
		}
	}
}

// TestPrintStoreSummary checks the counts of the summary line in words:
// "1 image", "1 domain", "1 class", and the unlabelled rows when any.
func TestPrintStoreSummary(t *testing.T) {
	plan := func(domains, classes int) *extract.Plan {
		p := &extract.Plan{Name: "office", DType: features.F16, Dim: 512}
		for i := range domains {
			p.Domains = append(p.Domains, extract.DomainPlan{Name: fmt.Sprint("d", i)})
		}
		for i := range classes {
			p.Classes = append(p.Classes, fmt.Sprint("c", i))
		}
		return p
	}
	skips := func(n int) []extract.Skip { return make([]extract.Skip, n) }
	bf16 := func(p *extract.Plan) *extract.Plan { p.Precision = tensor.PrecisionBF16; return p }
	cases := []struct {
		sum  extract.Summary
		want string
	}{
		{extract.Summary{Plan: plan(2, 10), Images: 1253, Unlabelled: 295},
			"DIR: feature store of office, F16 features [512] of 1253 images (295 unlabelled) in 2 domains, 10 classes\n"},
		{extract.Summary{Plan: plan(1, 1), Images: 2, Skipped: skips(1)},
			"DIR: feature store of office, F16 features [512] of 1 image in 1 domain, 1 class\n" +
				"1 image could not be decoded and has no row: see DIR/skipped.txt\n"},
		{extract.Summary{Plan: bf16(plan(1, 2)), Images: 4},
			"DIR: feature store of office, F16 (bf16 products) features [512] of 4 images in 1 domain, 2 classes\n"},
		{extract.Summary{Plan: plan(1, 3), Images: 5, Skipped: skips(2), Unlabelled: 1},
			"DIR: feature store of office, F16 features [512] of 3 images (1 unlabelled) in 1 domain, 3 classes\n" +
				"2 images could not be decoded and have no row: see DIR/skipped.txt\n"},
	}
	for _, c := range cases {
		var b bytes.Buffer
		printStoreSummary(&b, "DIR", "feature store", &c.sum)
		if b.String() != c.want {
			t.Errorf("got\n%s\nwant\n%s", b.String(), c.want)
		}
	}
}

func TestExtractUsageErrors(t *testing.T) {
	clearSchedulerEnv(t)
	w := []string{"--weights", "m.safetensors", "--out", "o"}
	cases := []struct {
		args []string
		want string
	}{
		{nil, "--weights is required"},
		{[]string{"--weights", "m"}, "--out is required"},
		{w, "--images or --list is required"},
		{append(w, "--images", "r", "--dtype", "bf16"), `--dtype "bf16"`},
		{append(w, "--images", "r", "--precision", "fp16"), `--precision: precision "fp16": want f32, bf16 or auto`},
		{append(w, "--images", "r", "--shard", "2/2"), "--shard"},
		{append(w, "--images", "r", "--shard", "x"), "--shard"},
		{append(w, "--images", "r", "--shard", "auto"), "no scheduler shard in the environment"},
		{append(w, "--images", "r", "--shard", "0/2", "--shard-count", "2"), "--shard-count goes with --shard auto"},
		{append(w, "--images", "r", "--batch", "0"), "--batch 0"},
		{append(w, "--images", "r", "--workers", "0"), "--workers 0"},
		{append(w, "--images", "r", "--threads", "-1"), "--threads -1"},
		{append(w, "--images", "r", "--prompt", "a photo of a {domain}"), "no {class} placeholder"},
		{append(w, "--list", "a.txt", "--domains", "x"), "--domains selects folders"},
		{append(w, "--list", "=a.txt"), "want DOMAIN=FILE"},
		{append(w, "--images", "r", "extra"), "unexpected argument"},
		{append(w, "--bogus"), "unknown flag --bogus"},
		{append(w, "--image", "r"), "unknown flag --image (did you mean --images?)"},
	}
	for _, c := range cases {
		err, _, _ := callCommand(runExtract, c.args...)
		var usage usageError
		if !errors.As(err, &usage) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("extract %q: err = %v, want a usage error mentioning %q", c.args, err, c.want)
		}
	}
	// Problems with the inputs themselves are runtime errors (status 1).
	dir := t.TempDir()
	for _, args := range [][]string{
		append(w, "--images", filepath.Join(dir, "absent")),
		append(w, "--images", dir, "--classes", filepath.Join(dir, "absent.txt")),
	} {
		err, _, _ := callCommand(runExtract, args...)
		var usage usageError
		if err == nil || errors.As(err, &usage) {
			t.Errorf("extract %q: err = %v, want a runtime error", args, err)
		}
	}
	if err, _, _ := callCommand(runExtract, "-h"); !errors.Is(err, flag.ErrHelp) {
		t.Errorf("-h: %v", err)
	}
}

// checkRowIsPhoto requires row i of domain d to be the photograph encoded
// alone with model, up to the store's float16 rounding.
func checkRowIsPhoto(t *testing.T, model *clip.Model, d *features.Domain, i int, photo string) {
	t.Helper()
	px, err := clip.PreprocessFile(photo, model.InputResolution())
	if err != nil {
		t.Fatal(err)
	}
	img, err := model.EncodeImages([][]float32{px})
	if err != nil {
		t.Fatal(err)
	}
	tensor.NormalizeRows(img, 0)
	for j, v := range img.Row(0) {
		if diff := math.Abs(float64(v - d.Features.At(i, j))); diff > 1e-3 {
			t.Fatalf("%s row %d differs from %s encoded alone by %g at %d", d.Name, i, photo, diff, j)
		}
	}
}
