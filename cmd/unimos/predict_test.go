package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/unimos/unimos/clip"
	"github.com/unimos/unimos/features"
	"github.com/unimos/unimos/internal/shareddata"
	"github.com/unimos/unimos/tensor"
	"github.com/unimos/unimos/unimos"
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

	output := filepath.Join(dir, "p.json")
	model := filepath.Join(run, unimos.ModelFile) // the file itself works as well
	if err, _, _ := callCommand(runPredict, "--model", model, "--features", store, "--domain", "sketch", "--json", "--output", output); err != nil {
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
	cases := [][]string{
		{"--features", "x", "--domain", "d"},                                    // --model missing
		{"--model", "m", "--features", "x"},                                     // --domain missing
		{"--model", "m", "--images", "a.jpg"},                                   // --clip missing
		{"--model", "m", "--clip", "w", "--images"},                             // no image
		{"--model", "m", "--clip", "w", "--features", "x", "--images", "a.jpg"}, // both inputs
		{"--model", "m", "--features", "x", "--domain", "d", "extra"},
	}
	for _, args := range cases {
		err, _, _ := callCommand(runPredict, args...)
		var usage usageError
		if !errors.As(err, &usage) {
			t.Errorf("%q: error %v, want a usage error", args, err)
		}
	}
	if err, _, _ := callCommand(runPredict, "--model", t.TempDir(), "--features", "x", "--domain", "d"); err == nil {
		t.Error("a run directory without a model accepted")
	}
}

// TestPredictImages encodes the CLIP fixture images with the tiny random
// ViT, stores the features, trains on them, and checks that predict
// --images on the image folder gives the same CSV as predict --features on
// the stored features.
func TestPredictImages(t *testing.T) {
	ref := shareddata.Dir(t, "clip_reference")
	weights := filepath.Join(ref, "models", "vit_tiny.safetensors")
	images := filepath.Join(ref, "images")
	files, err := collectImages([]string{images})
	if err != nil {
		t.Fatal(err)
	}
	model, err := clip.Load(weights)
	if err != nil {
		t.Fatal(err)
	}
	var pixels [][]float32
	for _, f := range files {
		p, err := clip.PreprocessFile(f, model.InputResolution())
		if err != nil {
			t.Fatal(err)
		}
		pixels = append(pixels, p)
	}
	x, err := model.EncodeImages(pixels)
	if err != nil {
		t.Fatal(err)
	}
	clip.NormalizeRows(x)

	// A store: the images as an unlabelled target, random labelled source
	// rows and a random text classifier, all of dimension 32.
	dir := filepath.Join(t.TempDir(), "store")
	r := rand.New(rand.NewPCG(1, 2))
	randomUnit := func(n int) *tensor.Matrix {
		m := tensor.New(n, x.Cols)
		for i := range m.Data {
			m.Data[i] = float32(r.NormFloat64())
		}
		clip.NormalizeRows(m)
		return m
	}
	source := &features.Domain{Name: "source", Features: randomUnit(40), Labels: make([]int, 40), DType: features.F32}
	for i := range source.Labels {
		source.Labels[i] = i % 3
	}
	target := &features.Domain{Name: "images", Features: x, Labels: slices.Repeat([]int{-1}, x.Rows), Paths: files, DType: features.F32}
	if err := features.WriteDataset(dir, features.Dataset{Name: "fixture", Backbone: "vit_tiny", Dim: x.Cols,
		Classes: []string{"a", "b", "c"}, Domains: []string{"source", "images"}}); err != nil {
		t.Fatal(err)
	}
	for _, d := range []*features.Domain{source, target} {
		if err := features.WriteDomain(dir, d); err != nil {
			t.Fatal(err)
		}
	}
	if err := features.WriteText(dir, "images", randomUnit(3)); err != nil {
		t.Fatal(err)
	}
	run := filepath.Join(t.TempDir(), "run")
	if code, _, errOut := runCLI(t, "adapt", "--features", dir, "--source", "source", "--target", "images",
		"--epochs", "2", "--batch", "4", "--out", run, "--quiet"); code != 0 {
		t.Fatalf("adapt: %q", errOut)
	}
	err, fromStore, _ := callCommand(runPredict, "--model", run, "--features", dir, "--domain", "images")
	if err != nil {
		t.Fatal(err)
	}
	err, fromImages, _ := callCommand(runPredict, "--model", run, "--clip", weights, "--images", images)
	if err != nil {
		t.Fatal(err)
	}
	if fromImages != fromStore {
		t.Errorf("--images:\n%s\n--features:\n%s", fromImages, fromStore)
	}
	if err, _, _ := callCommand(runPredict, "--model", run, "--clip", weights, "--images", filepath.Join(ref, "LICENSE.openai-clip.txt")); err == nil {
		t.Error("a text file was classified as an image")
	}
}
