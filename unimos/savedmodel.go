package unimos

import (
	"encoding/json"
	"fmt"
	"slices"

	"github.com/unimos/unimos/internal/words"
	"github.com/unimos/unimos/nn"
	"github.com/unimos/unimos/safetensors"
	"github.com/unimos/unimos/tensor"
)

// SavedModel is a trained model read back from a ModelFile: everything the
// test after its last epoch used, and the CLIP weights it was trained on.
type SavedModel struct {
	Config  Config
	Classes []string // class names in label order
	// Backbone is the CLIP the training features came from, as the store's
	// dataset.json recorded it; zero in models saved before it was recorded.
	Backbone Backbone
	model    *Model
	prior    classPrior
}

// Backbone identifies the CLIP weights features come from: a model is only
// meaningful on features of the weights it was trained on, and the
// embedding width cannot tell them apart (real ViT-B/16 and ViT-B/32 are
// both 512-d).
type Backbone struct {
	// Name describes the architecture, e.g. "CLIP ViT-B/16" (a store's
	// dataset.json "backbone"); "" when unknown.
	Name string
	// Fingerprint identifies the weights (clip.Fingerprint, a store's
	// dataset.json "fingerprint"); empty when unknown, as for imported and
	// generated stores.
	Fingerprint []float32
}

// Metadata keys of a ModelFile that record its Backbone; absent when unknown.
const (
	backboneKey    = "backbone"
	fingerprintKey = "fingerprint" // JSON array of numbers
)

// Dim is the image embedding dimension the model takes.
func (s *SavedModel) Dim() int { return s.model.Text.Cols }

// LoadModel reads a model that Trainer.SaveModel wrote. Every tensor the
// model needs must be present with its saved shape, and the file may hold
// no other tensor. Models saved before the backbone was recorded load with
// a zero Backbone.
func LoadModel(path string) (*SavedModel, error) {
	f, err := safetensors.Open(path)
	if err != nil {
		return nil, fmt.Errorf("loading the model: %w", err)
	}
	defer f.Close()
	meta := f.Metadata()
	if meta["format"] != "unimos" {
		return nil, fmt.Errorf("%s: not a unimos model (metadata format %q, want \"unimos\")", path, meta["format"])
	}
	var cfg Config
	if err := json.Unmarshal([]byte(meta["config"]), &cfg); err != nil {
		return nil, fmt.Errorf("%s: the config in the metadata: %w", path, err)
	}
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("%s: the config in the metadata: %w", path, err)
	}
	var classes []string
	if err := json.Unmarshal([]byte(meta["classes"]), &classes); err != nil {
		return nil, fmt.Errorf("%s: the class names in the metadata: %w", path, err)
	}

	backbone := Backbone{Name: meta[backboneKey]}
	if raw, ok := meta[fingerprintKey]; ok {
		if err := json.Unmarshal([]byte(raw), &backbone.Fingerprint); err != nil {
			return nil, fmt.Errorf("%s: the CLIP fingerprint in the metadata: %w", path, err)
		}
	}

	// Every size comes from the tensors' shapes in the header, and the
	// metadata must agree with them before anything is allocated: a
	// bottleneck_dim of 10^8 in the metadata would otherwise allocate
	// hundreds of gigabytes before a shape was compared.
	dims, err := headerDims(f, "")
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if dims.bottleneck != cfg.BottleneckDim || dims.classes != len(classes) {
		return nil, fmt.Errorf("%s: the tensors hold a model of %s, but the metadata names %s and a bottleneck dim of %d",
			path, dims, words.Count(len(classes), "class"), cfg.BottleneckDim)
	}
	used := map[string]bool{}
	read := func(name string, shape []int, dst []float32) error {
		t, err := f.Tensor(name)
		if err != nil {
			return fmt.Errorf("%s: %w", path, err)
		}
		if !slices.Equal(t.Shape, shape) {
			return fmt.Errorf("%s: tensor %s has shape %v, want %v", path, name, t.Shape, shape)
		}
		used[name] = true
		if err := t.Float32Into(dst); err != nil {
			return fmt.Errorf("%s: %w", path, err)
		}
		if err := checkFinite(name, dst); err != nil {
			return fmt.Errorf("%s: %w", path, err)
		}
		return nil
	}
	textShape := []int{dims.classes, dims.dim}
	if t, err := f.Tensor("text_features"); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	} else if !slices.Equal(t.Shape, textShape) { // checked before the text is allocated
		return nil, fmt.Errorf("%s: tensor text_features has shape %v, want %v", path, t.Shape, textShape)
	}
	text := tensor.New(dims.classes, dims.dim)
	if err := read("text_features", textShape, text.Data); err != nil {
		return nil, err
	}
	// The initial values are overwritten below; the generators only fill them.
	model := newModel(cfg, text, nn.NewRNG(cfg.Seed, streamInit), nn.NewRNG(cfg.Seed, streamDropout))
	for _, p := range model.Params() {
		v := p.Var.Value
		if err := read(p.Name, []int{v.Rows, v.Cols}, v.Data); err != nil {
			return nil, err
		}
		p.Var.Changed()
	}
	prior := make(classPrior, len(classes))
	for _, x := range []struct {
		name string
		dst  []float32
	}{
		{"bottleneck_norm.running_mean", model.BottleneckNorm.RunningMean},
		{"bottleneck_norm.running_var", model.BottleneckNorm.RunningVar},
		{"class_prior", prior},
	} {
		if err := read(x.name, []int{len(x.dst)}, x.dst); err != nil {
			return nil, err
		}
	}
	if err := checkProbabilities(prior); err != nil {
		return nil, fmt.Errorf("%s: tensor class_prior: %w", path, err)
	}
	if err := checkVariances(model.BottleneckNorm.RunningVar); err != nil {
		return nil, fmt.Errorf("%s: tensor bottleneck_norm.running_var: %w", path, err)
	}
	for _, name := range f.Names() {
		if !used[name] {
			return nil, fmt.Errorf("%s: unexpected tensor %s (not part of a unimos model)", path, name)
		}
	}
	return &SavedModel{Config: cfg, Classes: classes, Backbone: backbone, model: model, prior: prior}, nil
}

// modelDims are the sizes every tensor of a Model follows from.
type modelDims struct {
	dim        int // d, the image embedding dimension
	classes    int // K
	bottleneck int // b
}

func (m modelDims) String() string {
	return fmt.Sprintf("dim %d, %s, bottleneck dim %d", m.dim, words.Count(m.classes, "class"), m.bottleneck)
}

// headerDims reads a model's sizes from the shapes the header of f gives
// three of its tensors (named after prefix): text_separator.weight [d, d],
// bottleneck.weight [b, d] and classifier.weight_v [K, b]. It reads no data.
// Every tensor of a Model is no larger than one of those three, whose bytes
// the file holds, so a model built to these sizes takes memory in
// proportion to the file, whatever its metadata say.
func headerDims(f *safetensors.File, prefix string) (modelDims, error) {
	shape := func(name string) ([]int, error) {
		t, err := f.Tensor(prefix + name)
		if err != nil {
			return nil, err
		}
		if len(t.Shape) != 2 || t.Shape[0] < 1 || t.Shape[1] < 1 {
			return nil, fmt.Errorf("tensor %s%s has shape %v, want a matrix", prefix, name, t.Shape)
		}
		return t.Shape, nil
	}
	separator, err := shape("text_separator.weight")
	if err != nil {
		return modelDims{}, err
	}
	bottleneck, err := shape("bottleneck.weight")
	if err != nil {
		return modelDims{}, err
	}
	classifier, err := shape("classifier.weight_v")
	if err != nil {
		return modelDims{}, err
	}
	d := modelDims{dim: separator[1], classes: classifier[0], bottleneck: bottleneck[0]}
	switch {
	case separator[0] != d.dim:
		return d, fmt.Errorf("tensor %stext_separator.weight has shape %v, want a square matrix [dim, dim]", prefix, separator)
	case bottleneck[1] != d.dim:
		return d, fmt.Errorf("tensor %sbottleneck.weight has shape %v, want [%d, %d]", prefix, bottleneck, d.bottleneck, d.dim)
	case classifier[1] != d.bottleneck:
		return d, fmt.Errorf("tensor %sclassifier.weight_v has shape %v, want [%d, %d]", prefix, classifier, d.classes, d.bottleneck)
	case d.classes < 2:
		return d, fmt.Errorf("tensor %sclassifier.weight_v has shape %v: a model needs at least 2 classes", prefix, classifier)
	}
	return d, nil
}

// Predict classifies image embeddings x [N, d] (unit-norm rows) exactly as
// the training run's test after its last epoch did: the ensemble of the
// vision-associated logits and the debiased language-associated logits with
// the final mixing weight. labels [N] (nil, or −1 for unknown rows) only
// score the predictions.
func (s *SavedModel) Predict(x *tensor.Matrix, labels []int) (Evaluation, error) {
	if x.Cols != s.Dim() {
		return Evaluation{}, fmt.Errorf("features have dimension %d but the model takes %d", x.Cols, s.Dim())
	}
	if x.Rows == 0 {
		return Evaluation{}, fmt.Errorf("no rows to classify")
	}
	if labels != nil {
		if len(labels) != x.Rows {
			return Evaluation{}, fmt.Errorf("%d rows but %d labels", x.Rows, len(labels))
		}
		for i, y := range labels {
			if y < -1 || y >= len(s.Classes) {
				return Evaluation{}, fmt.Errorf("row %d has label %d, outside [-1, %d)", i, y, len(s.Classes))
			}
		}
	}
	var teacher *tensor.Matrix
	if s.Config.Epochs <= 1 { // the first epoch's test ensembles with the zero-shot teacher
		teacher = teacherLogits(x, s.model.Text, s.model.logitScale)
	}
	_, e := testAfter(s.model, s.Config, s.prior, x, teacher, labels, s.Config.Epochs)
	return e, nil
}
