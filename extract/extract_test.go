package extract

import (
	"context"
	"errors"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/unimos/unimos/clip"
	"github.com/unimos/unimos/features"
	"github.com/unimos/unimos/internal/testkit"
	"github.com/unimos/unimos/tensor"
)

// smallDataset is two domains of noise images: Web_Cam lacks class
// "mug", and "ring_binder" tests the prompt's '_' handling.
func smallDataset(t *testing.T) (root string, ds *Dataset) {
	t.Helper()
	root = filepath.Join(t.TempDir(), "Office")
	makeFolders(t, root, map[string]map[string]int{
		"amazon":  {"bike": 5, "mug": 4, "ring_binder": 3},
		"Web_Cam": {"bike": 3, "ring_binder": 6},
	})
	ds, err := ScanFolders(root, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	return root, ds
}

func run(t *testing.T, ctx context.Context, m *clip.Model, ds *Dataset, opt Options) (*Summary, error) {
	t.Helper()
	if opt.Warn == nil {
		opt.Warn = func(msg string) { t.Errorf("unexpected warning: %s", msg) }
	}
	return Run(ctx, m, ds, opt)
}

func mustRun(t *testing.T, m *clip.Model, ds *Dataset, opt Options) *Summary {
	t.Helper()
	sum, err := run(t, context.Background(), m, ds, opt)
	if err != nil {
		t.Fatal(err)
	}
	return sum
}

// TestRunWritesStore checks every file of the store against independent
// computations: each feature row against the model applied to that image
// alone, each text row against the model applied to the prompt written out
// by hand.
func TestRunWritesStore(t *testing.T) {
	m := fixtureModel(t, "vit_tiny.safetensors")
	root, ds := smallDataset(t)
	out := filepath.Join(t.TempDir(), "store")
	sum := mustRun(t, m, ds, Options{Out: out, Batch: 4, Workers: 2})
	if sum.Images != 21 || sum.Resumed != 0 || len(sum.Skipped) != 0 {
		t.Errorf("summary: %d images, %d resumed, %d skipped; want 21, 0, 0", sum.Images, sum.Resumed, len(sum.Skipped))
	}
	store, err := features.Open(out)
	if err != nil {
		t.Fatal(err)
	}
	wantMeta := features.Dataset{Name: "Office", Backbone: Backbone(m.Config), Dim: 32,
		Classes: []string{"bike", "mug", "ring_binder"}, Domains: []string{"Web_Cam", "amazon"}}
	if !slicesEqualMeta(store.Meta, wantMeta) {
		t.Errorf("dataset.json = %+v, want %+v", store.Meta, wantMeta)
	}
	if exists(filepath.Join(out, partialDir)) || exists(filepath.Join(out, SkippedFile)) {
		t.Error("the state folder or an empty skipped.txt remains")
	}
	wantPaths := map[string][]string{
		"Web_Cam": {"bike/imga.png", "bike/imgb.png", "bike/imgc.png", "ring_binder/imga.png", "ring_binder/imgb.png",
			"ring_binder/imgc.png", "ring_binder/imgd.png", "ring_binder/imge.png", "ring_binder/imgf.png"},
		"amazon": {"bike/imga.png", "bike/imgb.png", "bike/imgc.png", "bike/imgd.png", "bike/imge.png",
			"mug/imga.png", "mug/imgb.png", "mug/imgc.png", "mug/imgd.png",
			"ring_binder/imga.png", "ring_binder/imgb.png", "ring_binder/imgc.png"},
	}
	classOf := map[string]int{"bike": 0, "mug": 1, "ring_binder": 2}
	for _, name := range store.Meta.Domains {
		dom, err := store.Domain(name)
		if err != nil {
			t.Fatal(err)
		}
		if dom.DType != features.F16 {
			t.Errorf("%s: dtype %s, want F16", name, dom.DType)
		}
		if len(dom.Paths) != len(wantPaths[name]) {
			t.Fatalf("%s: %d paths, want %d", name, len(dom.Paths), len(wantPaths[name]))
		}
		for i, rel := range wantPaths[name] {
			if dom.Paths[i] != name+"/"+rel {
				t.Errorf("%s row %d: path %q, want %q", name, i, dom.Paths[i], name+"/"+rel)
			}
			if want := classOf[strings.Split(rel, "/")[0]]; dom.Labels[i] != want {
				t.Errorf("%s row %d: label %d, want %d", name, i, dom.Labels[i], want)
			}
			px, err := clip.PreprocessFile(filepath.Join(root, name, filepath.FromSlash(rel)), m.InputResolution())
			if err != nil {
				t.Fatal(err)
			}
			want := encodeOne(t, m, px)
			// F16 keeps 11 significant bits: 5e-4 relative, under 1e-3 for unit rows.
			if d := maxAbsDiff(dom.Features.Row(i), want); d > 1e-3 {
				t.Errorf("%s row %d: features differ from the image encoded alone by %g", name, i, d)
			}
		}
	}
	// The prompts, written out: domain lower case with '_' -> ' ', class
	// with '_' -> ' ' and its case kept.
	prompts := map[string][]string{
		"Web_Cam": {"a web cam photo of a bike.", "a web cam photo of a mug.", "a web cam photo of a ring binder."},
		"amazon":  {"a amazon photo of a bike.", "a amazon photo of a mug.", "a amazon photo of a ring binder."},
	}
	tok, err := clip.DefaultTokenizer()
	if err != nil {
		t.Fatal(err)
	}
	for name, texts := range prompts {
		got, err := store.Text(name)
		if err != nil {
			t.Fatal(err)
		}
		ids, err := tok.Tokenize(texts, clip.ContextLength, false)
		if err != nil {
			t.Fatal(err)
		}
		want, err := m.EncodeText(ids)
		if err != nil {
			t.Fatal(err)
		}
		tensor.NormalizeRows(want, 0)
		for k := range texts {
			if d := maxAbsDiff(got.Row(k), want.Row(k)); d > 1e-6 {
				t.Errorf("%s text row %d differs from the embedding of %q by %g", name, k, texts[k], d)
			}
		}
	}
}

func slicesEqualMeta(a, b features.Dataset) bool {
	return a.Name == b.Name && a.Backbone == b.Backbone && a.Dim == b.Dim &&
		slices.Equal(a.Classes, b.Classes) && slices.Equal(a.Domains, b.Domains)
}

// encodeOne returns the normalised embedding of one preprocessed image.
func encodeOne(t *testing.T, m *clip.Model, px []float32) []float32 {
	t.Helper()
	e, err := m.EncodeImages([][]float32{px})
	if err != nil {
		t.Fatal(err)
	}
	var ss float64
	for _, v := range e.Row(0) {
		ss += float64(v) * float64(v)
	}
	out := make([]float32, e.Cols)
	for j, v := range e.Row(0) {
		out[j] = float32(float64(v) / math.Sqrt(ss))
	}
	return out
}

func maxAbsDiff(a, b []float32) float64 {
	worst := 0.0
	for i := range a {
		worst = max(worst, math.Abs(float64(a[i]-b[i])))
	}
	return worst
}

// TestRunF32 checks the F32 option and a custom prompt.
func TestRunF32(t *testing.T) {
	m := fixtureModel(t, "vit_tiny.safetensors")
	_, ds := smallDataset(t)
	out := t.TempDir()
	mustRun(t, m, ds, Options{Out: out, Batch: 5, DType: features.F32, Prompt: "{class}, seen in {domain}"})
	store, err := features.Open(out)
	if err != nil {
		t.Fatal(err)
	}
	dom, err := store.Domain("amazon")
	if err != nil {
		t.Fatal(err)
	}
	if dom.DType != features.F32 {
		t.Errorf("dtype %s, want F32", dom.DType)
	}
	text, err := store.Text("Web_Cam")
	if err != nil {
		t.Fatal(err)
	}
	tok, err := clip.DefaultTokenizer()
	if err != nil {
		t.Fatal(err)
	}
	ids, err := tok.Tokenize([]string{"ring binder, seen in web cam"}, clip.ContextLength, false)
	if err != nil {
		t.Fatal(err)
	}
	want, err := m.EncodeText(ids)
	if err != nil {
		t.Fatal(err)
	}
	tensor.NormalizeRows(want, 0)
	if d := maxAbsDiff(text.Row(2), want.Row(0)); d > 1e-6 {
		t.Errorf("custom prompt: text row differs by %g", d)
	}
}

// interruptAfter returns a Progress hook that cancels the run once n
// batches have finished in this run.
func interruptAfter(n int, cancel context.CancelFunc) func(Progress) {
	batches := 0
	started := map[string]bool{}
	return func(p Progress) {
		if !started[p.Domain] {
			started[p.Domain] = true // a domain's first report, before any batch
			return
		}
		if batches++; batches >= n {
			cancel()
		}
	}
}

// TestResumeIsBitIdentical interrupts runs at several points, damages the
// saved state as a crash could, resumes, and compares the store with an
// uninterrupted run's, byte for byte.
func TestResumeIsBitIdentical(t *testing.T) {
	m := fixtureModel(t, "vit_tiny.safetensors")
	_, ds := smallDataset(t)
	want := filepath.Join(t.TempDir(), "want")
	mustRun(t, m, ds, Options{Out: want, Batch: 4})

	// Web_Cam's batches hold 4, 4 and 1 images, amazon's 4, 4 and 4: stop
	// inside the first domain, at its end, and inside the second.
	for _, c := range []struct{ stopAfter, resumed int }{{1, 4}, {3, 9}, {4, 13}} {
		stopAfter := c.stopAfter
		got := filepath.Join(t.TempDir(), "got")
		ctx, cancel := context.WithCancel(context.Background())
		_, err := run(t, ctx, m, ds, Options{Out: got, Batch: 4, Progress: interruptAfter(stopAfter, cancel)})
		cancel()
		if !errors.Is(err, context.Canceled) || !strings.Contains(err.Error(), "run the same command again to resume") || strings.Contains(err.Error(), "context canceled") {
			t.Fatalf("stop after %d batches: err = %v, want an interruption telling how to resume, in plain words", stopAfter, err)
		}
		if exists(filepath.Join(got, features.DatasetFile)) {
			t.Fatal("an interrupted run wrote dataset.json")
		}
		chunks, _ := filepath.Glob(filepath.Join(got, partialDir, "*", "batch-*.safetensors"))
		if len(chunks) != stopAfter {
			t.Errorf("stop after %d batches: %d chunks saved", stopAfter, len(chunks))
		}
		// What a crash mid-write leaves: a temporary file.
		stray := filepath.Join(got, partialDir, "amazon", ".batch-000002.safetensors.tmp-123")
		if err := os.WriteFile(stray, []byte("partial"), 0o644); err != nil {
			t.Fatal(err)
		}
		var resumed []Progress
		sum, err := run(t, context.Background(), m, ds, Options{Out: got, Batch: 4, Progress: func(p Progress) { resumed = append(resumed, p) }})
		if err != nil {
			t.Fatal(err)
		}
		if sum.Resumed != c.resumed {
			t.Errorf("stop after %d batches: %d images resumed, want %d", stopAfter, sum.Resumed, c.resumed)
		}
		r := min(c.resumed, 9)
		if first := (Progress{Domain: "Web_Cam", Done: r, Resumed: r, Total: 9}); !reflect.DeepEqual(resumed[0], first) {
			t.Errorf("first progress report %+v, want %+v", resumed[0], first)
		}
		sameTree(t, want, got)
	}
}

// TestResumeRedoesDamagedChunk truncates a saved batch: the rerun warns,
// extracts that batch again and still matches the uninterrupted run.
func TestResumeRedoesDamagedChunk(t *testing.T) {
	m := fixtureModel(t, "vit_tiny.safetensors")
	_, ds := smallDataset(t)
	want := filepath.Join(t.TempDir(), "want")
	mustRun(t, m, ds, Options{Out: want, Batch: 4})
	got := filepath.Join(t.TempDir(), "got")
	ctx, cancel := context.WithCancel(context.Background())
	if _, err := run(t, ctx, m, ds, Options{Out: got, Batch: 4, Progress: interruptAfter(2, cancel)}); !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want an interruption", err)
	}
	chunk := filepath.Join(got, partialDir, "Web_Cam", "batch-000001.safetensors")
	if err := os.Truncate(chunk, 100); err != nil {
		t.Fatal(err)
	}
	var warnings []string
	if _, err := Run(context.Background(), m, ds, Options{Out: got, Batch: 4, Warn: func(s string) { warnings = append(warnings, s) }}); err != nil {
		t.Fatal(err)
	}
	if len(warnings) != 1 || !strings.Contains(warnings[0], "batch-000001") {
		t.Errorf("warnings = %q, want one about batch-000001", warnings)
	}
	sameTree(t, want, got)
}

// TestResumeRefusesOtherPlan resumes with different flags or images.
func TestResumeRefusesOtherPlan(t *testing.T) {
	m := fixtureModel(t, "vit_tiny.safetensors")
	root, ds := smallDataset(t)
	out := t.TempDir()
	ctx, cancel := context.WithCancel(context.Background())
	if _, err := run(t, ctx, m, ds, Options{Out: out, Batch: 4, Progress: interruptAfter(1, cancel)}); !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want an interruption", err)
	}
	_, err := run(t, context.Background(), m, ds, Options{Out: out, Batch: 5})
	if err == nil || !strings.Contains(err.Error(), "batch size: 4 vs 5") {
		t.Errorf("other batch size: err = %v", err)
	}
	_, err = run(t, context.Background(), m, ds, Options{Out: out, Batch: 4, DType: features.F32})
	if err == nil || !strings.Contains(err.Error(), "dtype") {
		t.Errorf("other dtype: err = %v", err)
	}
	_, err = run(t, context.Background(), fixtureModel(t, "rn_tiny.safetensors"), ds, Options{Out: out, Batch: 4})
	if err == nil || !strings.Contains(err.Error(), "model") {
		t.Errorf("other model: err = %v", err)
	}
	writeNoisePNG(t, filepath.Join(root, "amazon", "mug", "new.png"), 30, 30, 99)
	ds2, err := ScanFolders(root, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	_, err = run(t, context.Background(), m, ds2, Options{Out: out, Batch: 4})
	if err == nil || !strings.Contains(err.Error(), "image list of domain amazon: 12 vs 13 images") {
		t.Errorf("changed images: err = %v", err)
	}
	_, err = run(t, context.Background(), m, ds, Options{Out: out, Batch: 4, Shard: Shard{Index: 0, Count: 2}})
	if err == nil || !strings.Contains(err.Error(), "unfinished state of a whole-dataset run") {
		t.Errorf("shard into an unsharded run's folder: err = %v", err)
	}
	if _, err := run(t, context.Background(), m, ds, Options{Out: out, Batch: 4}); err != nil {
		t.Fatalf("resuming with the same inputs: %v", err)
	}
	_, err = run(t, context.Background(), m, ds, Options{Out: out, Batch: 4})
	if err == nil || !strings.Contains(err.Error(), "already holds a finished feature store") {
		t.Errorf("rerun on a finished store: err = %v", err)
	}
}

// addBadImages writes files with image names that are not images: garbage,
// an empty file and a truncated PNG, and returns their names and the words
// their reasons must contain.
func addBadImages(t *testing.T, root string) map[string]string {
	t.Helper()
	dir := filepath.Join(root, "amazon", "mug")
	if err := os.WriteFile(filepath.Join(dir, "garbage.jpg"), []byte("this is not a JPEG"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "empty.png"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	good, err := os.ReadFile(filepath.Join(dir, "imga.png"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "truncated.png"), good[:len(good)/2], 0o644); err != nil {
		t.Fatal(err)
	}
	return map[string]string{
		"amazon/mug/empty.png":     "empty file",
		"amazon/mug/garbage.jpg":   "not a JPEG, PNG, GIF, BMP, TIFF or WebP image",
		"amazon/mug/truncated.png": "png: invalid format: not enough pixel data",
	}
}

// TestBadImagesAreSkipped checks that bad files get no row, are listed in
// skipped.txt with their reason, and leave the other rows unchanged.
func TestBadImagesAreSkipped(t *testing.T) {
	m := fixtureModel(t, "vit_tiny.safetensors")
	root, clean := smallDataset(t)
	cleanOut := t.TempDir()
	mustRun(t, m, clean, Options{Out: cleanOut, Batch: 3})

	bad := addBadImages(t, root)
	ds, err := ScanFolders(root, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	out := t.TempDir()
	var reported []Skip
	sum := mustRun(t, m, ds, Options{Out: out, Batch: 3, Progress: func(p Progress) { reported = append(reported, p.Skipped...) }})
	if len(sum.Skipped) != 3 || len(reported) != 3 {
		t.Fatalf("%d skipped, %d reported; want 3", len(sum.Skipped), len(reported))
	}
	raw, err := os.ReadFile(filepath.Join(out, SkippedFile))
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSuffix(string(raw), "\n"), "\n")
	if len(lines) != 3 {
		t.Fatalf("skipped.txt:\n%s\nwant 3 lines", raw)
	}
	for _, l := range lines {
		name, reason, _ := strings.Cut(l, "\t")
		if want, ok := bad[name]; !ok || !strings.Contains(reason, want) {
			t.Errorf("skipped.txt line %q: want one of the bad files with its reason", l)
		}
	}
	// The good images keep their features: the bad ones change batch
	// composition, and a row depends only on its own image up to rounding.
	a, b := openDomain(t, cleanOut, "amazon"), openDomain(t, out, "amazon")
	if !slices.Equal(a.Paths, b.Paths) || !slices.Equal(a.Labels, b.Labels) {
		t.Fatalf("paths or labels changed:\n%v\n%v", a.Paths, b.Paths)
	}
	for i := range a.Features.Rows {
		if d := maxAbsDiff(a.Features.Row(i), b.Features.Row(i)); d > 1e-3 {
			t.Errorf("row %d differs by %g", i, d)
		}
	}
}

func openDomain(t *testing.T, dir, name string) *features.Domain {
	t.Helper()
	store, err := features.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	d, err := store.Domain(name)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// TestDomainOfBadImagesOnly fails with the reason of the first image.
func TestDomainOfBadImagesOnly(t *testing.T) {
	m := fixtureModel(t, "vit_tiny.safetensors")
	root := t.TempDir()
	if err := os.MkdirAll(filepath.Join(root, "d", "c"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, "d", "c", "x.jpg"), []byte("junk"), 0o644); err != nil {
		t.Fatal(err)
	}
	ds, err := ScanFolders(root, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	_, err = run(t, context.Background(), m, ds, Options{Out: t.TempDir()})
	if err == nil || !strings.Contains(err.Error(), "domain d has no image that could be decoded (1 image tried; first: d/c/x.jpg: not a JPEG, PNG, GIF, BMP, TIFF or WebP image") {
		t.Errorf("err = %v", err)
	}
}

// TestShardsMergeToUnshardedRun merges 2 and 3 shards and compares the
// stores with an unsharded run's, byte for byte; a shard of 3 gets no batch
// of the small domain. Web_Cam has unlabelled images (one of them bad),
// which must keep label -1 through the chunks, images.txt and the merge.
func TestShardsMergeToUnshardedRun(t *testing.T) {
	m := fixtureModel(t, "vit_tiny.safetensors")
	root, _ := smallDataset(t)
	addBadImages(t, root)
	for i, name := range []string{"loose-a.png", "loose-b.png", "loose-c.png"} {
		writeNoisePNG(t, filepath.Join(root, "Web_Cam", name), 35, 31, uint64(100+i))
	}
	must(t, os.WriteFile(filepath.Join(root, "Web_Cam", "loose-broken.jpg"), []byte("not a JPEG"), 0o644))
	ds, err := ScanFolders(root, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	want := filepath.Join(t.TempDir(), "want")
	if sum := mustRun(t, m, ds, Options{Out: want, Batch: 4}); sum.Images != 28 || len(sum.Skipped) != 4 || sum.Unlabelled != 3 {
		t.Errorf("run summary: %d images, %d skipped, %d unlabelled; want 28, 4, 3", sum.Images, len(sum.Skipped), sum.Unlabelled)
	}
	webcam := openDomain(t, want, "Web_Cam")
	if n := len(webcam.Labels); n != 12 || !slices.Equal(webcam.Labels[9:], []int{-1, -1, -1}) ||
		!slices.Equal(webcam.Paths[9:], []string{"Web_Cam/loose-a.png", "Web_Cam/loose-b.png", "Web_Cam/loose-c.png"}) {
		t.Errorf("Web_Cam labels %v, paths %q; want 9 labelled rows, then the 3 decodable loose images with label -1", webcam.Labels, webcam.Paths)
	}
	for _, n := range []int{2, 3} {
		var shards []string
		unlabelled := 0
		for i := range n {
			dir := filepath.Join(t.TempDir(), "shard")
			sum := mustRun(t, m, ds, Options{Out: dir, Batch: 4, Shard: Shard{Index: i, Count: n}})
			if _, err := features.Open(dir); err == nil {
				t.Error("a shard folder opens as a feature store")
			}
			if sum.Images == 0 {
				t.Errorf("shard %d/%d got no images", i, n)
			}
			unlabelled += sum.Unlabelled
			shards = append(shards, dir)
		}
		slices.Reverse(shards) // any order
		got := filepath.Join(t.TempDir(), "merged")
		sum, err := Merge(got, shards)
		if err != nil {
			t.Fatal(err)
		}
		if sum.Images != 28 || len(sum.Skipped) != 4 || sum.Unlabelled != 3 || unlabelled != 3 {
			t.Errorf("%d shards: merge summary: %d images, %d skipped, %d unlabelled (shards: %d); want 28, 4, 3 (3)",
				n, sum.Images, len(sum.Skipped), sum.Unlabelled, unlabelled)
		}
		sameTree(t, want, got)
	}
}

// TestMergeErrors checks that merge refuses incomplete, repeated and
// mismatched shards with a message naming the problem.
func TestMergeErrors(t *testing.T) {
	m := fixtureModel(t, "vit_tiny.safetensors")
	_, ds := smallDataset(t)
	shard := func(i, n int, model *clip.Model, prompt string) string {
		dir := t.TempDir()
		mustRun(t, model, ds, Options{Out: dir, Batch: 4, Shard: Shard{Index: i, Count: n}, Prompt: prompt})
		return dir
	}
	s0, s1 := shard(0, 2, m, ""), shard(1, 2, m, "")
	unfinished := t.TempDir()
	ctx, cancel := context.WithCancel(context.Background())
	if _, err := run(t, ctx, m, ds, Options{Out: unfinished, Batch: 4, Shard: Shard{Index: 1, Count: 2}, Progress: interruptAfter(1, cancel)}); !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want an interruption", err)
	}
	// Same architecture, other weights: negate the fingerprint of a copy.
	tampered := t.TempDir()
	testkit.CopyTree(t, s1, tampered)
	p, err := readPlan(filepath.Join(tampered, shardFile))
	if err != nil {
		t.Fatal(err)
	}
	for i := range p.Fingerprint {
		p.Fingerprint[i] = -p.Fingerprint[i]
	}
	if err := writePlan(filepath.Join(tampered, shardFile), p); err != nil {
		t.Fatal(err)
	}
	// A shard that lost a chunk.
	lossy := t.TempDir()
	testkit.CopyTree(t, s1, lossy)
	if err := os.Remove(filepath.Join(lossy, chunksDir, "amazon", "batch-000000.safetensors")); err != nil {
		t.Fatal(err)
	}

	cases := []struct {
		name   string
		shards []string
		want   string
	}{
		{"none", nil, "no shard folders"},
		{"missing", []string{s0}, "missing 1 shard of 2: 1/2"},
		{"duplicate", []string{s0, s0, s1}, "are both shard 0/2"},
		{"unfinished", []string{s0, unfinished}, "is not a finished shard"},
		{"not a shard", []string{s0, t.TempDir()}, "is not a finished shard"},
		{"other model", []string{s0, shard(1, 2, fixtureModel(t, "rn_tiny.safetensors"), "")}, "different extractions: model"},
		{"other weights", []string{s0, tampered}, "model weights"},
		{"other prompt", []string{s0, shard(1, 2, m, "a {class}")}, "different extractions: prompt"},
		{"other count", []string{s0, shard(1, 3, m, "")}, "sharding: 2 shards vs 3 shards"},
		{"lost chunk", []string{s0, lossy}, "domain amazon, batch 0"},
	}
	for _, c := range cases {
		_, err := Merge(filepath.Join(t.TempDir(), "out"), c.shards)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: err = %v, want it to mention %q", c.name, err, c.want)
		}
	}
	if _, err := Merge(s1, []string{s0, s1}); err == nil || !strings.Contains(err.Error(), "is one of the shards") {
		t.Errorf("merge into a shard: err = %v", err)
	}
	out := t.TempDir()
	if _, err := Merge(out, []string{s0, s1}); err != nil {
		t.Fatal(err)
	}
	if _, err := Merge(out, []string{s0, s1}); err == nil || !strings.Contains(err.Error(), "already holds a feature store") {
		t.Errorf("merge into a store: err = %v", err)
	}
}

// TestInterruptStopsPromptly cancels before the run starts encoding.
func TestInterruptStopsPromptly(t *testing.T) {
	m := fixtureModel(t, "vit_tiny.safetensors")
	_, ds := smallDataset(t)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	out := t.TempDir()
	_, err := run(t, ctx, m, ds, Options{Out: out, Batch: 4})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
	if chunks, _ := filepath.Glob(filepath.Join(out, partialDir, "*", "batch-*")); len(chunks) != 0 {
		t.Errorf("%d chunks written after cancellation", len(chunks))
	}
}

func TestOptionsValidation(t *testing.T) {
	m := fixtureModel(t, "vit_tiny.safetensors")
	_, ds := smallDataset(t)
	cases := []struct {
		opt  Options
		want string
	}{
		{Options{}, "no output folder"},
		{Options{Out: "x", Batch: -1}, "batch size -1"},
		{Options{Out: "x", Workers: -2}, "decoding workers"},
		{Options{Out: "x", DType: "BF16"}, "dtype"},
		{Options{Out: "x", Precision: "fp8"}, `precision "fp8": want f32, bf16 or auto`},
		{Options{Out: "x", Prompt: "a photo"}, "no {class} placeholder"},
		{Options{Out: "x", Shard: Shard{Index: 2, Count: 2}}, "shard 2/2"},
	}
	for _, c := range cases {
		if _, err := Run(context.Background(), m, ds, c.opt); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%+v: err = %v, want %q", c.opt, err, c.want)
		}
	}
}

func TestParseShard(t *testing.T) {
	for s, want := range map[string]Shard{"0/1": {Index: 0, Count: 1}, "3/4": {Index: 3, Count: 4}} {
		if got, err := ParseShard(s); err != nil || got != want {
			t.Errorf("ParseShard(%q) = %v, %v", s, got, err)
		}
	}
	for _, s := range []string{"", "1", "4/4", "-1/2", "a/b", "0/0", "1/2/3"} {
		if _, err := ParseShard(s); err == nil {
			t.Errorf("ParseShard(%q) accepted", s)
		}
	}
}

// TestShardAssignment checks the documented dealing of batches: numbered
// across domains, shard = number mod n, each batch in exactly one shard.
func TestShardAssignment(t *testing.T) {
	p := &Plan{Batch: 10, Domains: []DomainPlan{{Images: 25}, {Images: 10}, {Images: 31}}}
	// Batches: domain 0 → 0,1,2; domain 1 → 3; domain 2 → 4,5,6,7.
	want := [][]int{{0, 1, 2}, {0}, {1, 2, 0, 1}}
	for d, bs := range want {
		for b, s := range bs {
			if got := p.shardOf(d, b, 3); got != s {
				t.Errorf("domain %d batch %d: shard %d, want %d", d, b, got, s)
			}
		}
	}
	if lo, hi := p.rows(2, 3); lo != 30 || hi != 31 {
		t.Errorf("last batch rows [%d, %d), want [30, 31)", lo, hi)
	}
}

func TestPromptText(t *testing.T) {
	cases := []struct{ template, domain, class, want string }{
		{DefaultPrompt, "Real_World", "Exit_Sign", "a real world photo of a Exit Sign."},
		{DefaultPrompt, "Art", "TV", "a art photo of a TV."},
		{"{class} ({domain}, {class})", "A_B", "c_d", "c d (a b, c d)"},
	}
	for _, c := range cases {
		if got := PromptText(c.template, c.domain, c.class); got != c.want {
			t.Errorf("PromptText(%q, %q, %q) = %q, want %q", c.template, c.domain, c.class, got, c.want)
		}
	}
}

func TestBackbone(t *testing.T) {
	vitB16 := clip.Config{EmbedDim: 512, Vision: clip.VisionConfig{Architecture: clip.ViT, ImageResolution: 224,
		Width: 768, Layers: 12, PatchSize: 16, Heads: 12, Activation: clip.QuickGELU}}
	rn50 := clip.Config{EmbedDim: 1024, Vision: clip.VisionConfig{Architecture: clip.ModifiedResNet, ImageResolution: 224,
		Width: 64, ResNetLayers: [4]int{3, 4, 6, 3}, Heads: 32, Activation: clip.QuickGELU}}
	gelu := vitB16
	gelu.Vision.Activation = clip.GELU
	other := vitB16
	other.Vision.ImageResolution = 256
	cases := map[string]clip.Config{
		"CLIP ViT-B/16":        vitB16,
		"CLIP RN50":            rn50,
		"CLIP ViT-B/16 (GELU)": gelu,
		other.String():         other,
	}
	for want, cfg := range cases {
		if got := Backbone(cfg); got != want {
			t.Errorf("Backbone = %q, want %q", got, want)
		}
	}
	if m := fixtureModel(t, "vit_tiny.safetensors"); Backbone(m.Config) != m.Config.String() {
		t.Errorf("tiny fixture: %q", Backbone(m.Config))
	}
}

// TestProgressReports checks the reports of a batch larger than an
// encoding step: one per step, the bad images in the first, the last after
// the chunk is saved.
func TestProgressReports(t *testing.T) {
	m := fixtureModel(t, "vit_tiny.safetensors")
	root := t.TempDir()
	makeFolders(t, root, map[string]map[string]int{"d": {"a": 20, "b": 15}})
	must(t, os.WriteFile(filepath.Join(root, "d", "a", "bad1.png"), []byte("x"), 0o644))
	must(t, os.WriteFile(filepath.Join(root, "d", "b", "bad2.png"), []byte("y"), 0o644))
	ds, err := ScanFolders(root, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	out := t.TempDir()
	var done, skipped []int
	chunkAtLast := false
	mustRun(t, m, ds, Options{Out: out, Batch: 40, Progress: func(p Progress) {
		done = append(done, p.Done)
		skipped = append(skipped, len(p.Skipped))
		if p.Done == p.Total {
			chunkAtLast = exists(filepath.Join(out, partialDir, "d", "batch-000000.safetensors"))
		}
	}})
	// 37 images, 35 good: steps of 16, 16 and 3.
	if want := []int{0, 18, 34, 37}; !slices.Equal(done, want) {
		t.Errorf("Done in the reports: %v, want %v", done, want)
	}
	if want := []int{0, 2, 0, 0}; !slices.Equal(skipped, want) {
		t.Errorf("skipped per report: %v, want %v", skipped, want)
	}
	if !chunkAtLast {
		t.Error("the last report came before the chunk was saved")
	}
}
