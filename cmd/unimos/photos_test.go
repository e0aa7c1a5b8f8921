package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/unimos/unimos/features"
	"github.com/unimos/unimos/internal/shareddata"
	"github.com/unimos/unimos/internal/testkit"
	"github.com/unimos/unimos/unimos"
)

// TestOwnPhotosEndToEnd is the headline use, as a user with folders of
// photos runs it: labelled photos of two domains in class folders
// (Office-Caltech-10 amazon as "catalogue", dslr as "studio") and unlabelled
// webcam photos loose in a flat folder ("shop"), extracted with a fixture
// CLIP model, adapted catalogue -> shop, the shop's photos classified from
// the files, and the labelled domains benched with the pairs protocol. The
// model's weights are random, so accuracies mean nothing here; the test
// checks that every step accepts what the one before wrote and that the
// outputs agree with each other.
func TestOwnPhotosEndToEnd(t *testing.T) {
	weights := filepath.Join(shareddata.Dir(t, "clip_reference"), "models", "vit_tiny.safetensors")
	photos := filepath.Join(shareddata.Dir(t, "office_caltech10"), "images")
	dir := t.TempDir()
	root := filepath.Join(dir, "my_photos")
	var shop []string // the unlabelled photos, as extract names them
	for _, d := range []struct {
		name, from string
		perClass   int
		loose      bool
	}{
		{"catalogue", "amazon", 4, false},
		{"studio", "dslr", 4, false},
		{"shop", "webcam", 2, true},
	} {
		classes, err := os.ReadDir(filepath.Join(photos, d.from))
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range classes {
			files, err := os.ReadDir(filepath.Join(photos, d.from, c.Name()))
			if err != nil {
				t.Fatal(err)
			}
			to := filepath.Join(root, d.name, c.Name())
			if d.loose {
				to = filepath.Join(root, d.name)
			}
			if err := os.MkdirAll(to, 0o755); err != nil {
				t.Fatal(err)
			}
			for _, f := range files[:d.perClass] {
				name := f.Name()
				if d.loose { // webcam names repeat across classes
					name = c.Name() + "-" + name
					shop = append(shop, d.name+"/"+name)
				}
				if err := os.Symlink(filepath.Join(photos, d.from, c.Name(), f.Name()), filepath.Join(to, name)); err != nil {
					t.Fatal(err)
				}
			}
		}
	}

	// extract: two labelled domains and one unlabelled.
	store := filepath.Join(dir, "store")
	code, out, errOut := runCLI(t, "extract", "--weights", weights, "--images", root, "--out", store, "--workers", "2")
	if code != 0 {
		t.Fatalf("extract: status %d\n%s", code, errOut)
	}
	if !strings.Contains(out, "(20 unlabelled)") {
		t.Errorf("extract's summary does not count the unlabelled photos: %q", out)
	}
	s, err := features.Open(store)
	if err != nil {
		t.Fatal(err)
	}
	if s.Meta.Name != "my_photos" || len(s.Meta.Classes) != 10 {
		t.Errorf("dataset.json: %+v", s.Meta)
	}
	target, err := s.Domain("shop")
	if err != nil {
		t.Fatal(err)
	}
	for i, y := range target.Labels {
		if y != -1 {
			t.Errorf("shop row %d (%s) has label %d, want -1", i, target.Paths[i], y)
		}
	}
	code, out, _ = runCLI(t, "inspect", store)
	if code != 0 || !strings.Contains(lineOf(out, "shop"), "unlabelled") {
		t.Errorf("inspect: status %d, shop's line %q does not say unlabelled", code, lineOf(out, "shop"))
	}

	// adapt: catalogue -> shop.
	run := filepath.Join(dir, "run")
	code, out, errOut = runCLI(t, "adapt", "--features", store, "--source", "catalogue", "--target", "shop", "--epochs", "2", "--batch", "8", "--out", run)
	if code != 0 {
		t.Fatalf("adapt: status %d\n%s", code, errOut)
	}
	if !strings.Contains(out, "unlabelled") {
		t.Errorf("adapt's summary does not say the target is unlabelled: %q", out)
	}
	saved := readPredictionsCSV(t, filepath.Join(run, unimos.PredictionsFile))
	if len(saved) != len(shop) {
		t.Fatalf("predictions.csv has %d rows, want %d", len(saved), len(shop))
	}
	for i, row := range saved {
		if row["path"] != target.Paths[i] {
			t.Errorf("predictions.csv row %d names %q, want %q", i, row["path"], target.Paths[i])
		}
	}

	// predict: the shop's photos from the files, with one that is not an
	// image among them.
	if err := os.WriteFile(filepath.Join(root, "shop", "notes.jpg"), []byte("not a JPEG"), 0o644); err != nil {
		t.Fatal(err)
	}
	code, out, errOut = runCLI(t, "predict", "--model", run, "--weights", weights, "--json", filepath.Join(root, "shop"))
	if code != 0 {
		t.Fatalf("predict: status %d\n%s", code, errOut)
	}
	var report struct {
		Predictions []struct {
			Path  string `json:"path"`
			Class string `json:"class"`
		} `json:"predictions"`
		Skipped []struct {
			Path string `json:"path"`
		} `json:"skipped"`
	}
	if err := json.Unmarshal([]byte(out), &report); err != nil {
		t.Fatalf("predict --json: %v\n%s", err, out)
	}
	if len(report.Skipped) != 1 || !strings.HasSuffix(report.Skipped[0].Path, "notes.jpg") {
		t.Errorf("skipped %+v, want notes.jpg", report.Skipped)
	}
	if len(report.Predictions) != len(shop) {
		t.Fatalf("predict classified %d photos, want %d", len(report.Predictions), len(shop))
	}
	// The files are encoded in float32 here and were stored as float16 by
	// extract: the classes agree but for near ties.
	byPath := map[string]string{}
	for _, p := range report.Predictions {
		rel, err := filepath.Rel(root, p.Path)
		if err != nil {
			t.Fatal(err)
		}
		byPath[filepath.ToSlash(rel)] = p.Class
	}
	agree := 0
	for _, row := range saved {
		if byPath[row["path"]] == row["class"] {
			agree++
		}
	}
	if agree < len(saved)*9/10 {
		t.Errorf("predict from the files agrees with predictions.csv on %d of %d photos", agree, len(saved))
	}

	// bench: every ordered pair of the labelled domains.
	benchDir := filepath.Join(dir, "bench")
	code, _, errOut = runCLI(t, "bench", "--features", store, "--protocol", "pairs", "--epochs", "1", "--out", benchDir)
	if code != 0 {
		t.Fatalf("bench: status %d\n%s", code, errOut)
	}
	md, err := os.ReadFile(filepath.Join(benchDir, "report.md"))
	if err != nil {
		t.Fatal(err)
	}
	for _, task := range []string{"catalogue→studio", "studio→catalogue"} {
		if !strings.Contains(string(md), task) {
			t.Errorf("report.md has no task %s", task)
		}
	}
	if strings.Contains(string(md), "shop") {
		t.Error("report.md benches the unlabelled domain")
	}
}

// lineOf returns the first line of text that starts with prefix.
func lineOf(text, prefix string) string {
	for _, l := range strings.Split(text, "\n") {
		if strings.HasPrefix(strings.TrimSpace(l), prefix) {
			return l
		}
	}
	return ""
}

// readPredictionsCSV reads a predictions CSV into one map per row, keyed by
// the header.
func readPredictionsCSV(t *testing.T, path string) []map[string]string {
	t.Helper()
	records := testkit.ReadCSV(t, path)
	var rows []map[string]string
	for _, r := range records[1:] {
		row := map[string]string{}
		for j, h := range records[0] {
			row[h] = r[j]
		}
		rows = append(rows, row)
	}
	return rows
}
