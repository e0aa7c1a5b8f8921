package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"image"
	"image/color"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/unimos/unimos/features"
	"github.com/unimos/unimos/internal/shareddata"
	"github.com/unimos/unimos/internal/testkit"
	"github.com/unimos/unimos/safetensors"
	"github.com/unimos/unimos/unimos"
	"golang.org/x/image/tiff"
)

// TestPredictRoundTrips trains with adapt and predicts the same target
// with the saved model: the CSV must equal the run's predictions.csv byte
// for byte, and the JSON must carry the run's accuracy.
func TestPredictRoundTrips(t *testing.T) {
	dir := t.TempDir()
	store := filepath.Join(dir, "tiny")
	if code, _, errOut := runCLI(t, "synth", "--preset", "tiny", "--out", store); code != 0 {
		t.Fatalf("synth: %q", errOut)
	}
	run := filepath.Join(dir, "run")
	if code, _, errOut := runCLI(t, "adapt", "--features", store, "--source", "photo", "--target", "sketch",
		"--epochs", "3", "--out", run, "--quiet"); code != 0 {
		t.Fatalf("adapt: %q", errOut)
	}
	want, err := os.ReadFile(filepath.Join(run, unimos.PredictionsFile))
	if err != nil {
		t.Fatal(err)
	}
	err, stdout, stderr := callCommand(runPredict, "--model", run, "--features", store, "--domain", "sketch")
	if err != nil {
		t.Fatal(err)
	}
	if stdout != string(want) {
		t.Errorf("predict's CSV differs from the run's predictions.csv")
	}
	raw, _ := os.ReadFile(filepath.Join(run, unimos.ResultFile))
	var result unimos.Result
	if err := json.Unmarshal(raw, &result); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(stderr, fmt.Sprintf("accuracy %.2f%%", result.Final.Accuracy)) {
		t.Errorf("stderr %q", stderr)
	}
	// A generated store records no CLIP weights, nor does a model trained on it.
	if !strings.HasPrefix(stderr, "note: the model does not record the CLIP weights it was trained on") {
		t.Errorf("no note that nothing could be checked: stderr %q", stderr)
	}

	output := filepath.Join(dir, "p.json")
	model := filepath.Join(run, unimos.ModelFile) // the file itself works as well
	if err, _, _ := callCommand(runPredict, "--model", model, "--features", store, "--domain", "sketch", "--json", "--out", output); err != nil {
		t.Fatal(err)
	}
	var report predictionReport
	raw, _ = os.ReadFile(output)
	if err := json.Unmarshal(raw, &report); err != nil {
		t.Fatal(err)
	}
	if report.Accuracy == nil || *report.Accuracy != result.Final.Accuracy || len(report.Predictions) != 280 || report.Rows != 280 {
		t.Errorf("JSON: accuracy %v (run: %v), %d predictions", report.Accuracy, result.Final.Accuracy, len(report.Predictions))
	}
}

func TestPredictUsageErrors(t *testing.T) {
	cases := []struct {
		args []string
		want string
	}{
		{[]string{"--features", "x", "--domain", "d"}, "--model is required"},
		{[]string{"--model", "m", "--features", "x"}, "--domain is required"},
		{[]string{"--model", "m"}, "give --features DIR --domain D, or image files and folders with --weights"},
		{[]string{"--model", "m", "--images", "a.jpg"}, "classifying images needs --weights"},
		{[]string{"--model", "m", "a.jpg"}, "classifying images needs --weights"},
		{[]string{"--model", "m", "--weights", "w", "--images"}, "--images needs a value"},
		{[]string{"--model", "m", "--weights", "w", "--features", "x", "--images", "a.jpg"}, "not both"},
		{[]string{"--model", "m", "--features", "x", "--domain", "d", "extra.jpg"}, "not both"},
		{[]string{"--model", "m", "--features", "x", "--domain", "d", "--weights", "w"}, "leave out --weights"},
		{[]string{"--model", "m", "--weights", "w", "a.jpg", "--json"}, "flag --json after the image paths: put the flags before the paths"},
		{[]string{"--model", "m", "--weigths", "w", "a.jpg"}, "unknown flag --weigths (did you mean --weights?)"},
	}
	for _, c := range cases {
		code, _, stderr := runCLI(t, append([]string{"predict"}, c.args...)...)
		if code != 2 || !strings.Contains(stderr, c.want) {
			t.Errorf("%q: status %d, stderr %q, want status 2 and %q", c.args, code, stderr, c.want)
		}
	}
	code, _, stderr := runCLI(t, "predict", "--model", t.TempDir(), "--features", "x", "--domain", "d")
	if code != 1 || !strings.Contains(stderr, unimos.ModelFile) {
		t.Errorf("a run directory without a model: status %d, stderr %q", code, stderr)
	}
}

// imageFixture is a small image benchmark made with the real commands:
// ROOT/<src|tgt>/<a|b|c>/ holding the CLIP fixture images (and a TIFF in
// tgt), the store that "unimos extract" made of it with the tiny random ViT
// (F32, so that its rows equal what predict computes from the images), and a
// run that "unimos adapt" trained on src -> tgt.
type imageFixture struct {
	weights, root, store, run string
}

func newImageFixture(t *testing.T) imageFixture {
	t.Helper()
	ref := shareddata.Dir(t, "clip_reference")
	dir := t.TempDir()
	fx := imageFixture{
		weights: filepath.Join(ref, "models", "vit_tiny.safetensors"),
		root:    filepath.Join(dir, "images"),
		store:   filepath.Join(dir, "store"),
		run:     filepath.Join(dir, "run"),
	}
	images, err := os.ReadDir(filepath.Join(ref, "images"))
	if err != nil {
		t.Fatal(err)
	}
	for i, img := range images {
		for _, domain := range []string{"src", "tgt"} {
			folder := filepath.Join(fx.root, domain, string(rune('a'+i%3)))
			if err := os.MkdirAll(folder, 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.Symlink(filepath.Join(ref, "images", img.Name()), filepath.Join(folder, img.Name())); err != nil {
				t.Fatal(err)
			}
		}
	}
	writeTIFF(t, filepath.Join(fx.root, "tgt", "c", "stripes.tif"), 40, 30)
	if code, _, stderr := runCLI(t, "extract", "--weights", fx.weights, "--images", fx.root, "--dtype", "f32", "--out", fx.store); code != 0 {
		t.Fatalf("extract: %s", stderr)
	}
	if code, _, stderr := runCLI(t, "adapt", "--features", fx.store, "--source", "src", "--target", "tgt",
		"--epochs", "2", "--batch", "4", "--out", fx.run, "--quiet"); code != 0 {
		t.Fatalf("adapt: %s", stderr)
	}
	return fx
}

// writeTIFF writes a w x h TIFF of colour stripes.
func writeTIFF(t *testing.T, path string, w, h int) {
	t.Helper()
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	for y := range h {
		for x := range w {
			img.Set(x, y, color.RGBA{uint8(x * 255 / w), uint8(y * 255 / h), uint8(x / 5 % 2 * 200), 255})
		}
	}
	var buf bytes.Buffer
	if err := tiff.Encode(&buf, img, &tiff.Options{Compression: tiff.Deflate}); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestPredictImages classifies the fixture's target images with --images
// and checks them against the target's rows of the store, then the ways of
// naming images, skipped files and the CLIP identity checks.
func TestPredictImages(t *testing.T) {
	fx := newImageFixture(t)
	tgt := filepath.Join(fx.root, "tgt")
	code, fromStore, stderr := runCLI(t, "predict", "--model", fx.run, "--features", fx.store, "--domain", "tgt")
	if code != 0 || stderr != "12 rows of domain tgt: accuracy 33.33%, mean class accuracy 33.33% (against its labels)\n" {
		t.Fatalf("--features: status %d, stderr %q", code, stderr)
	}
	// The store records paths relative to ROOT; predict, the paths it was given.
	code, fromImages, stderr := runCLI(t, "predict", "--model", fx.run, "--weights", fx.weights, tgt)
	if code != 0 || stderr != "" {
		t.Fatalf("--weights: status %d, stderr %q", code, stderr)
	}
	if got := strings.ReplaceAll(fromImages, fx.root+string(filepath.Separator), ""); got != fromStore {
		t.Errorf("images:\n%s\nstore:\n%s", got, fromStore)
	}
	if !strings.Contains(fromImages, "stripes.tif,") || strings.Count(fromImages, "\n") != 1+12 {
		t.Errorf("want a header and 12 rows, the TIFF among them:\n%s", fromImages)
	}

	t.Run("naming images", func(t *testing.T) {
		a, b := filepath.Join(tgt, "a"), filepath.Join(tgt, "c", "stripes.tif")
		_, want, _ := runCLI(t, "predict", "--model", fx.run, "--weights", fx.weights, a, b)
		if strings.Count(want, "\n") != 1+5 {
			t.Fatalf("want a header and 5 rows:\n%s", want)
		}
		cases := []struct {
			args []string
			note string // the deprecation note expected on stderr
		}{
			{[]string{"--weights", fx.weights, "--images", a, "--images", b}, ""},
			{[]string{"--weights", fx.weights, "--images", a, b}, ""}, // the old form: a the flag's value, b positional
			{[]string{"--clip", fx.weights, "--images", a, b}, "note: --clip is deprecated and will be removed; use --weights\n"},
		}
		for _, c := range cases {
			code, got, stderr := runCLI(t, append([]string{"predict", "--model", fx.run}, c.args...)...)
			if code != 0 || got != want || stderr != c.note {
				t.Errorf("%q: status %d, stderr %q (want %q), output\n%s", c.args, code, stderr, c.note, got)
			}
		}
		out := filepath.Join(t.TempDir(), "p.csv")
		code, stdout, stderr := runCLI(t, "predict", "--model", fx.run, "--weights", fx.weights, "--output", out, a, b)
		written, _ := os.ReadFile(out)
		if code != 0 || stdout != "" || string(written) != want || stderr != "note: --output is deprecated and will be removed; use --out\n" {
			t.Errorf("--output: status %d, stderr %q, wrote\n%s", code, stderr, written)
		}
	})

	t.Run("skipped file", func(t *testing.T) {
		folder := filepath.Join(t.TempDir(), "tgt")
		testkit.CopyTree(t, tgt, folder)
		broken := filepath.Join(folder, "b", "broken.jpg")
		if err := os.WriteFile(broken, []byte("not a JPEG at all"), 0o644); err != nil {
			t.Fatal(err)
		}
		const reason = "not a JPEG, PNG, GIF, BMP, TIFF or WebP image"
		skipLine := "skipped " + broken + ": " + reason + "\n"
		out := filepath.Join(t.TempDir(), "p.json")
		code, _, stderr := runCLI(t, "predict", "--model", fx.run, "--weights", fx.weights, "--json", "--out", out, folder)
		if code != 0 || !strings.HasPrefix(stderr, skipLine) || !strings.Contains(stderr, "\nskipped 1 of 13 image files: it could not be decoded\n") {
			t.Errorf("status %d, stderr %q", code, stderr)
		}
		var report predictionReport
		raw, _ := os.ReadFile(out)
		if err := json.Unmarshal(raw, &report); err != nil {
			t.Fatal(err)
		}
		if report.Rows != 12 || report.Input != "12 images" || !slices.Equal(report.Skipped, []skippedImage{{broken, reason}}) {
			t.Errorf("JSON: %d rows, input %q, skipped %v", report.Rows, report.Input, report.Skipped)
		}
		listed, err := os.ReadFile(out + skippedSuffix)
		if err != nil || string(listed) != broken+"\t"+reason+"\n" {
			t.Errorf("%s: %q, %v", out+skippedSuffix, listed, err)
		}

		// CSV: the same rows as without the broken file.
		code, csv, _ := runCLI(t, "predict", "--model", fx.run, "--weights", fx.weights, folder)
		if want := strings.ReplaceAll(fromImages, tgt, folder); code != 0 || csv != want {
			t.Errorf("CSV with a skipped file: status %d\n%s\nwant\n%s", code, csv, want)
		}
		// A run without skipped files removes the earlier list.
		if err := os.Remove(broken); err != nil {
			t.Fatal(err)
		}
		if code, _, _ := runCLI(t, "predict", "--model", fx.run, "--weights", fx.weights, "--json", "--out", out, folder); code != 0 {
			t.Fatalf("status %d", code)
		}
		if _, err := os.Stat(out + skippedSuffix); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s left from the earlier run: %v", out+skippedSuffix, err)
		}
	})

	t.Run("nothing decodable", func(t *testing.T) {
		dir := t.TempDir()
		for _, name := range []string{"x.jpg", "y.png"} {
			if err := os.WriteFile(filepath.Join(dir, name), []byte("text"), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		code, stdout, stderr := runCLI(t, "predict", "--model", fx.run, "--weights", fx.weights, dir)
		if code != 1 || stdout != "" || !strings.Contains(stderr, "none of the 2 image files could be decoded") {
			t.Errorf("status %d, stdout %q, stderr %q", code, stdout, stderr)
		}
		text := filepath.Join(dir, "x.jpg")
		code, _, stderr = runCLI(t, "predict", "--model", fx.run, "--weights", fx.weights, text)
		if code != 1 || !strings.HasSuffix(stderr, "unimos predict: "+text+": not a JPEG, PNG, GIF, BMP, TIFF or WebP image\n") {
			t.Errorf("one file: status %d, stderr %q", code, stderr)
		}
	})

	t.Run("other CLIP weights", func(t *testing.T) {
		other := flippedWeights(t, fx.weights)
		code, stdout, stderr := runCLI(t, "predict", "--model", fx.run, "--weights", other, tgt)
		backbone := "ViT" // the tiny model has no OpenAI name: its configuration in one line
		if code != 1 || stdout != "" || !strings.Contains(stderr, "CLIP weights "+other+": "+backbone) ||
			!strings.Contains(stderr, "but the model was trained on other weights of "+backbone) ||
			!strings.Contains(stderr, "use the weights the model was trained on, or give --force") {
			t.Errorf("refusal: status %d, stderr %q", code, stderr)
		}
		code, stdout, stderr = runCLI(t, "predict", "--model", fx.run, "--weights", other, "--force", tgt)
		if code != 0 || strings.Count(stdout, "\n") != 1+12 || !strings.HasPrefix(stderr, "note: CLIP weights "+other) ||
			!strings.Contains(stderr, "classifying anyway (--force)") {
			t.Errorf("--force: status %d, stderr %q, output\n%s", code, stderr, stdout)
		}
	})

	t.Run("store of other CLIP weights", func(t *testing.T) {
		store := filepath.Join(t.TempDir(), "store")
		testkit.CopyTree(t, fx.store, store)
		meta := readDataset(t, store)
		for i := range meta.Fingerprint {
			meta.Fingerprint[i] = -meta.Fingerprint[i]
		}
		if err := features.WriteDataset(store, meta); err != nil {
			t.Fatal(err)
		}
		args := []string{"predict", "--model", fx.run, "--features", store, "--domain", "tgt"}
		code, stdout, stderr := runCLI(t, args...)
		if code != 1 || stdout != "" || !strings.Contains(stderr, "store "+store+": "+meta.Backbone+", but the model was trained on other weights of "+meta.Backbone) ||
			!strings.Contains(stderr, "use a store extracted with the weights the model was trained on, or give --force") {
			t.Errorf("refusal: status %d, stderr %q", code, stderr)
		}
		if code, stdout, stderr := runCLI(t, append(args, "--force")...); code != 0 || stdout != fromStore || !strings.Contains(stderr, "classifying anyway (--force)") {
			t.Errorf("--force: status %d, stderr %q", code, stderr)
		}

		// A store that does not record its weights cannot be checked.
		meta.Fingerprint = nil
		if err := features.WriteDataset(store, meta); err != nil {
			t.Fatal(err)
		}
		code, stdout, stderr = runCLI(t, args...)
		if code != 0 || stdout != fromStore || !strings.HasPrefix(stderr, "note: store "+store+" does not record which CLIP weights") {
			t.Errorf("no fingerprint: status %d, stderr %q", code, stderr)
		}
	})
}

// flippedWeights writes a copy of the CLIP weights with visual.proj negated:
// the same architecture and embedding width, other weights.
func flippedWeights(t *testing.T, weights string) string {
	t.Helper()
	f, err := safetensors.Open(weights)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var tensors []*safetensors.Tensor
	for _, name := range f.Names() {
		x, err := f.Tensor(name)
		if err != nil {
			t.Fatal(err)
		}
		v, err := x.Float32()
		if err != nil {
			t.Fatal(err)
		}
		if name == "visual.proj" {
			for i := range v {
				v[i] = -v[i]
			}
		}
		y, err := safetensors.FromFloat32(name, safetensors.F32, x.Shape, v)
		if err != nil {
			t.Fatal(err)
		}
		tensors = append(tensors, y)
	}
	path := filepath.Join(t.TempDir(), "flipped.safetensors")
	if err := safetensors.WriteFile(path, tensors, f.Metadata()); err != nil {
		t.Fatal(err)
	}
	return path
}

func readDataset(t *testing.T, dir string) features.Dataset {
	t.Helper()
	store, err := features.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	return store.Meta
}

// scoreCSV computes, from a predictions CSV and the labels of its rows
// (-1: unknown), the accuracy and the mean class accuracy in percent over
// the labelled rows, the latter averaged over the classes that have one.
func scoreCSV(t *testing.T, path string, classes []string, labels []int) (acc, meanClass float64) {
	t.Helper()
	rows := readPredictionsCSV(t, path)
	if len(rows) != len(labels) {
		t.Fatalf("%s: %d rows for %d labels", path, len(rows), len(labels))
	}
	correct, total := map[int]int{}, map[int]int{}
	right, labelled := 0, 0
	for i, y := range labels {
		if y < 0 {
			continue
		}
		labelled++
		total[y]++
		if rows[i]["class"] == classes[y] {
			right++
			correct[y]++
		}
	}
	for y := range total {
		meanClass += 100 * float64(correct[y]) / float64(total[y]) / float64(len(total))
	}
	return 100 * float64(right) / float64(labelled), meanClass
}

// TestAccuracyOnLabelledRows adapts onto a target of which only some
// images are labelled, then predicts its domain labelled whole, in part, in
// one row and not at all: every accuracy, recomputed here from the
// predictions and the labels, is on the labelled rows, and the lines say
// on how many, or "unlabelled" where there is none.
func TestAccuracyOnLabelledRows(t *testing.T) {
	dir := t.TempDir()
	store := filepath.Join(dir, "tiny")
	if code, _, errOut := runCLI(t, "synth", "--preset", "tiny", "--out", store); code != 0 {
		t.Fatalf("synth: %q", errOut)
	}
	s, err := features.Open(store)
	if err != nil {
		t.Fatal(err)
	}
	sketch, err := s.Domain("sketch") // 280 images
	if err != nil {
		t.Fatal(err)
	}
	all := slices.Clone(sketch.Labels)
	part := slices.Clone(all)
	for i := range 100 {
		part[i] = -1
	}
	setLabels := func(labels []int) { relabel(t, store, "sketch", func(l []int) { copy(l, labels) }) }

	setLabels(part)
	run := filepath.Join(dir, "run")
	code, stdout, errOut := runCLI(t, "adapt", "--features", store, "--source", "photo", "--target", "sketch", "--epochs", "2", "--quiet", "--out", run)
	if code != 0 {
		t.Fatalf("adapt: status %d, stderr %q", code, errOut)
	}
	acc, meanClass := scoreCSV(t, filepath.Join(run, unimos.PredictionsFile), s.Meta.Classes, part)
	for _, want := range []string{
		"\n  accuracies            on 180 of 280 target images, the labelled ones\n",
		fmt.Sprintf("\n  UniMoS, last epoch   %6.2f%%  (mean class %6.2f%%)\n", acc, meanClass),
	} {
		if !strings.Contains(stdout, want) {
			t.Errorf("adapt's summary lacks %q:\n%s", want, stdout)
		}
	}

	one := slices.Repeat([]int{-1}, len(all))
	one[7] = all[7]
	none := slices.Repeat([]int{-1}, len(all))
	for _, c := range []struct {
		labels []int
		which  string // after the accuracies
	}{
		{all, "against its labels"},
		{part, "on 180 of 280 rows, the labelled ones"},
		{one, "on 1 of 280 rows, the labelled one"},
		{none, ""},
	} {
		setLabels(c.labels)
		out := filepath.Join(t.TempDir(), "p.csv")
		code, _, errOut := runCLI(t, "predict", "--model", run, "--features", store, "--domain", "sketch", "--out", out)
		if code != 0 {
			t.Fatalf("predict: status %d, stderr %q", code, errOut)
		}
		want := "280 rows of domain sketch: accuracy unlabelled, mean class accuracy unlabelled (no row has a label)\n"
		if c.which != "" {
			acc, meanClass := scoreCSV(t, out, s.Meta.Classes, c.labels)
			want = fmt.Sprintf("280 rows of domain sketch: accuracy %.2f%%, mean class accuracy %.2f%% (%s)\n", acc, meanClass, c.which)
		}
		if !strings.HasSuffix(errOut, want) {
			t.Errorf("predict: stderr %q, want it to end with %q", errOut, want)
		}
		_, stdout, _ := runCLI(t, "predict", "--model", run, "--features", store, "--domain", "sketch", "--json")
		var report predictionReport
		if err := json.Unmarshal([]byte(stdout), &report); err != nil {
			t.Fatal(err)
		}
		labelled := 0
		for _, y := range c.labels {
			if y >= 0 {
				labelled++
			}
		}
		if report.Labelled == nil || *report.Labelled != labelled || (report.Accuracy == nil) != (labelled == 0) {
			t.Errorf("predict --json with %d labelled rows: labelled %v, accuracy %v", labelled, report.Labelled, report.Accuracy)
		}
	}
}
