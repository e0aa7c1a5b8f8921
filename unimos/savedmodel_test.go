package unimos

import (
	"bytes"
	"encoding/json"
	"maps"
	"math"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"

	"github.com/unimos/unimos/safetensors"
	"github.com/unimos/unimos/tensor"
)

// TestSavedModelPredictsAsTheLastTest saves the model after training and
// checks that the reloaded model reproduces the last test bit for bit,
// also for a one-epoch run, whose last test mixes in the zero-shot teacher.
func TestSavedModelPredictsAsTheLastTest(t *testing.T) {
	for _, epochs := range []int{1, 3} {
		task := tinyTask(6, 128, 12, 4)
		cfg := smallConfig()
		cfg.Epochs = epochs
		tr := newTestTrainer(t, cfg, task)
		last := tr.Run(nil)[epochs]
		path := filepath.Join(t.TempDir(), ModelFile)
		classes := []string{"a", "b", "c", "d"}
		if err := tr.SaveModel(path, classes, Backbone{}); err != nil {
			t.Fatal(err)
		}
		m, err := LoadModel(path)
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(m.Classes, classes) || m.Config != cfg || m.Dim() != 12 {
			t.Errorf("loaded classes %v, config %+v, dim %d", m.Classes, m.Config, m.Dim())
		}
		got, err := m.Predict(task.TargetFeatures, task.TargetLabels)
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(got.Predictions, last.Predictions) || !slices.Equal(got.Confidences, last.Confidences) {
			t.Errorf("%d epochs: predictions differ from the last test", epochs)
		}
		// The criteria that need the model or the run (MixVal, ClassAMI,
		// EnsV) are the trainer's; a saved model's test has the others.
		want := last.LabelFree
		want.MixValInter, want.MixValIntra, want.ClassAMI, want.EnsV = 0, 0, 0, nil
		if got.LabelFree != want || *got.Accuracy != *last.Accuracy || got.TestWeight != last.TestWeight || got.Epoch != epochs || last.Epoch != epochs {
			t.Errorf("%d epochs: evaluation %+v, last test %+v", epochs, got, last)
		}
		unlabelled, err := m.Predict(task.TargetFeatures, nil)
		if err != nil || unlabelled.Accuracy != nil || !slices.Equal(unlabelled.Predictions, last.Predictions) {
			t.Errorf("%d epochs: without labels: accuracy %v, err %v", epochs, unlabelled.Accuracy, err)
		}
	}
}

func TestPredictRejectsBadInput(t *testing.T) {
	task := tinyTask(7, 64, 12, 4)
	tr := newTestTrainer(t, smallConfig(), task)
	path := filepath.Join(t.TempDir(), ModelFile)
	if err := tr.SaveModel(path, []string{"a", "b", "c", "d"}, Backbone{}); err != nil {
		t.Fatal(err)
	}
	m, err := LoadModel(path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := m.Predict(tensor.New(3, 11), nil); err == nil || !strings.Contains(err.Error(), "dimension 11") {
		t.Errorf("wrong dimension: %v", err)
	}
	if _, err := m.Predict(tensor.New(3, 12), []int{0, 1}); err == nil {
		t.Error("2 labels for 3 rows accepted")
	}
	if _, err := m.Predict(tensor.New(2, 12), []int{0, 4}); err == nil {
		t.Error("label 4 of 4 classes accepted")
	}
}

// TestLoadModelRejectsBadFiles rewrites a saved model without a tensor,
// with an extra one, with a wrong shape and with foreign metadata.
func TestLoadModelRejectsBadFiles(t *testing.T) {
	dir := t.TempDir()
	tensors, meta := savedUntrained(t, dir)
	extra, _ := safetensors.FromFloat32("extra", safetensors.F32, []int{1}, []float32{0})
	cases := []struct {
		name    string
		tensors []*safetensors.Tensor
		meta    map[string]string
		want    string
	}{
		{"missing", tensors[1:], meta, tensors[0].Name},
		{"extra", append(slices.Clone(tensors), extra), meta, "unexpected tensor extra"},
		{"shape", reshaped(tensors, "class_prior", []int{2, 2}), meta, "class_prior has shape [2 2]"},
		{"format", tensors, map[string]string{"format": "pt"}, "not a unimos model"},
		{"fingerprint", tensors, withEntry(meta, "fingerprint", `"abc"`), "the CLIP fingerprint in the metadata"},
		{"bottleneck 10^8", tensors, withEntry(meta, "config", configWith(t, meta, "bottleneck_dim", 1e8)), "bottleneck dim must be in [1, 65536], got 100000000"},
		{"bottleneck 32", tensors, withEntry(meta, "config", configWith(t, meta, "bottleneck_dim", 32)),
			"the tensors hold a model of dim 12, 4 classes, bottleneck dim 16, but the metadata names 4 classes and a bottleneck dim of 32"},
		{"lr NaN", tensors, withEntry(meta, "config", strings.Replace(meta["config"], `"lr":0.003`, `"lr":"NaN"`, 1)), "the config in the metadata"},
		{"tau 1e308", tensors, withEntry(meta, "config", configWith(t, meta, "tau", 1e308)), "tau must be in [0, 10]"},
		{"3 class names", tensors, withEntry(meta, "classes", `["a","b","c"]`), "but the metadata names 3 classes"},
		{"text reshaped", reshaped(tensors, "text_features", []int{2, 24}), meta, "tensor text_features has shape [2 24], want [4 12]"},
		{"separator not square", reshaped(tensors, "text_separator.weight", []int{6, 24}), meta, "text_separator.weight has shape [6 24], want a square matrix"},
		{"classifier of 1 class", reshaped(reshaped(tensors, "classifier.weight_v", []int{1, 64}), "bottleneck.weight", []int{64, 3}), meta, "bottleneck.weight has shape [64 3]"},
		{"weight NaN", withValue(t, tensors, "classifier.bias", 2, float32(math.NaN())), meta, "tensor classifier.bias: element 2 is NaN"},
		{"prior negative", withValue(t, tensors, "class_prior", 0, -1), meta, "tensor class_prior: element 0 is -1, not a probability"},
		{"running var negative", withValue(t, tensors, "bottleneck_norm.running_var", 5, -2), meta, "tensor bottleneck_norm.running_var: element 5 is -2"},
	}
	for _, c := range cases {
		path := filepath.Join(dir, c.name+".safetensors")
		if err := safetensors.WriteFile(path, c.tensors, c.meta); err != nil {
			t.Fatal(err)
		}
		if _, err := LoadModel(path); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: error %v, want one naming %q", c.name, err, c.want)
		}
	}
}

// TestSavedModelRecordsItsBackbone saves models with what a store may know
// of its CLIP weights and reads it back: a fingerprint survives exactly, and
// what was unknown (or a model written before the backbone was recorded)
// stays unknown.
func TestSavedModelRecordsItsBackbone(t *testing.T) {
	tr := newTestTrainer(t, smallConfig(), tinyTask(9, 64, 12, 4))
	cases := []struct {
		name     string
		backbone Backbone
	}{
		{"known", Backbone{Name: "CLIP ViT-B/16", Fingerprint: []float32{0.1, -0.25, 1e-7, 0.33333334}}},
		{"name only", Backbone{Name: "synthetic"}},
		{"unknown", Backbone{}},
	}
	for _, c := range cases {
		path := filepath.Join(t.TempDir(), ModelFile)
		if err := tr.SaveModel(path, []string{"a", "b", "c", "d"}, c.backbone); err != nil {
			t.Fatal(err)
		}
		m, err := LoadModel(path)
		if err != nil {
			t.Fatal(err)
		}
		if m.Backbone.Name != c.backbone.Name || !slices.Equal(m.Backbone.Fingerprint, c.backbone.Fingerprint) {
			t.Errorf("%s: saved %+v, loaded %+v", c.name, c.backbone, m.Backbone)
		}
		f, err := safetensors.Open(path)
		if err != nil {
			t.Fatal(err)
		}
		_, hasFingerprint := f.Metadata()["fingerprint"]
		f.Close()
		if hasFingerprint != (c.backbone.Fingerprint != nil) {
			t.Errorf("%s: fingerprint key present: %v", c.name, hasFingerprint)
		}
	}
}

// TestLoadModelChecksSizesBeforeAllocating gives a small model's metadata a
// bottleneck dimension that Validate accepts but its tensors do not have,
// and requires LoadModel to refuse it without allocating the model the
// metadata describe (65536 x 12 floats per bottleneck-sized matrix, some
// 10 MB in all): the sizes come from the file's header first.
func TestLoadModelChecksSizesBeforeAllocating(t *testing.T) {
	dir := t.TempDir()
	tensors, saved := savedUntrained(t, dir)
	meta := withEntry(saved, "config", configWith(t, saved, "bottleneck_dim", 65536))
	path := filepath.Join(dir, "wide.safetensors")
	if err := safetensors.WriteFile(path, tensors, meta); err != nil {
		t.Fatal(err)
	}
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	_, err := LoadModel(path)
	runtime.ReadMemStats(&after)
	if err == nil || !strings.Contains(err.Error(), "bottleneck dim of 65536") {
		t.Errorf("error %v, want one naming the bottleneck dim", err)
	}
	if allocated := after.TotalAlloc - before.TotalAlloc; allocated > 1<<20 {
		t.Errorf("LoadModel allocated %d bytes before refusing the file, want under 1 MiB", allocated)
	}
}

// configWith returns the metadata's config JSON with one field set.
func configWith(t *testing.T, meta map[string]string, key string, value any) string {
	t.Helper()
	var c map[string]any
	if err := json.Unmarshal([]byte(meta["config"]), &c); err != nil {
		t.Fatal(err)
	}
	c[key] = value
	raw, err := json.Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	return string(raw)
}

// withValue returns the tensors with element i of the named F32 tensor set to v.
func withValue(t *testing.T, tensors []*safetensors.Tensor, name string, i int, v float32) []*safetensors.Tensor {
	t.Helper()
	out := slices.Clone(tensors)
	for j, x := range out {
		if x.Name != name {
			continue
		}
		values, err := x.Float32()
		if err != nil {
			t.Fatal(err)
		}
		values[i] = v
		if out[j], err = safetensors.FromFloat32(name, x.DType, x.Shape, values); err != nil {
			t.Fatal(err)
		}
	}
	return out
}

// withEntry returns a copy of meta with key set to value.
func withEntry(meta map[string]string, key, value string) map[string]string {
	out := maps.Clone(meta)
	out[key] = value
	return out
}

func reshaped(tensors []*safetensors.Tensor, name string, shape []int) []*safetensors.Tensor {
	out := slices.Clone(tensors)
	for i, x := range out {
		if x.Name == name {
			y := *x
			y.Shape = shape
			out[i] = &y
		}
	}
	return out
}

// savedUntrained saves an untrained model of a tiny task (4 classes, dim 12)
// as dir/good.safetensors and returns copies of its tensors and metadata,
// for tests to write altered versions.
func savedUntrained(t *testing.T, dir string) ([]*safetensors.Tensor, map[string]string) {
	t.Helper()
	tr := newTestTrainer(t, smallConfig(), tinyTask(8, 64, 12, 4))
	good := filepath.Join(dir, "good.safetensors")
	if err := tr.SaveModel(good, []string{"a", "b", "c", "d"}, Backbone{}); err != nil {
		t.Fatal(err)
	}
	f, err := safetensors.Open(good)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var tensors []*safetensors.Tensor
	for _, name := range f.Names() {
		x, _ := f.Tensor(name)
		tensors = append(tensors, &safetensors.Tensor{Name: x.Name, DType: x.DType, Shape: x.Shape, Data: bytes.Clone(x.Data)})
	}
	return tensors, maps.Clone(f.Metadata())
}
