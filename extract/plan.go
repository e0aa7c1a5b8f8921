package extract

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/unimos/unimos/clip"
	"github.com/unimos/unimos/features"
	"github.com/unimos/unimos/internal/atomicfile"
	"github.com/unimos/unimos/internal/regularfile"
	"github.com/unimos/unimos/internal/words"
	"github.com/unimos/unimos/tensor"
)

// Plan identifies an extraction: everything that determines its output. An
// interrupted run resumes only under the same plan, and shards merge only
// when their plans agree (but for the shard index). It is saved as
// plan.json in the state folder and as a finished shard's shard.json.
type Plan struct {
	Format   int            `json:"format"` // planFormat
	Name     string         `json:"name"`
	Backbone string         `json:"backbone"`
	Dim      int            `json:"dim"`
	Classes  []string       `json:"classes"`
	Domains  []DomainPlan   `json:"domains"`
	Prompt   string         `json:"prompt"`
	DType    features.DType `json:"dtype"`
	Batch    int            `json:"batch"`
	// Precision is the encoders' product precision, f32 or bf16 (plans
	// written before it was recorded have none: f32).
	Precision tensor.Precision `json:"precision,omitempty"`
	// Fingerprint identifies the weights however they are stored.
	Fingerprint clip.Fingerprint `json:"fingerprint"`
	Shard       *Shard           `json:"shard,omitempty"`
}

// DomainPlan identifies one domain's image list.
type DomainPlan struct {
	Name   string `json:"name"`
	Images int    `json:"images"`
	// ListSHA256 is the SHA-256 of the domain's images.txt (see imageList).
	ListSHA256 string `json:"list_sha256"`
}

// planFormat is the version of the plan and chunk formats.
const planFormat = 2

// newPlan describes the extraction of ds with model m.
func newPlan(m *clip.Model, ds *Dataset, opt Options) (*Plan, error) {
	fingerprint, err := m.Fingerprint()
	if err != nil {
		return nil, fmt.Errorf("extract: %w", err)
	}
	p := &Plan{
		Format:      planFormat,
		Name:        ds.Name,
		Backbone:    Backbone(m.Config),
		Dim:         m.EmbedDim(),
		Classes:     ds.Classes,
		Prompt:      opt.Prompt,
		DType:       opt.DType,
		Batch:       opt.Batch,
		Precision:   opt.Precision,
		Fingerprint: fingerprint,
	}
	if opt.Shard.Count > 0 {
		p.Shard = &opt.Shard
	}
	for _, d := range ds.Domains {
		for _, im := range d.Images {
			if im.Name == "" || strings.ContainsAny(im.Name, "\r\n") {
				return nil, fmt.Errorf("extract: domain %s: image %q: a name must be non-empty and on one line", d.Name, im.Path)
			}
			if im.Label < Unlabelled || im.Label >= len(ds.Classes) {
				return nil, fmt.Errorf("extract: domain %s: image %s has label %d; want -1 (unlabelled) or one of the %s", d.Name, im.Name, im.Label, words.Count(len(ds.Classes), "class"))
			}
		}
		p.Domains = append(p.Domains, DomainPlan{Name: d.Name, Images: len(d.Images), ListSHA256: sha256Hex(imageList(d.Images))})
	}
	if err := p.dataset().Validate(); err != nil {
		return nil, fmt.Errorf("extract: %w", err)
	}
	return p, nil
}

// dataset is the dataset.json of the store the plan makes.
func (p *Plan) dataset() features.Dataset {
	names := make([]string, len(p.Domains))
	for i, d := range p.Domains {
		names[i] = d.Name
	}
	return features.Dataset{Name: p.Name, Backbone: p.Backbone, Fingerprint: p.Fingerprint, Dim: p.Dim, Classes: p.Classes, Domains: names,
		Precision: string(p.Precision)}
}

// batches returns the number of batches of domain d.
func (p *Plan) batches(d int) int { return (p.Domains[d].Images + p.Batch - 1) / p.Batch }

// rows returns the image rows [lo, hi) of batch b of domain d.
func (p *Plan) rows(d, b int) (lo, hi int) {
	lo = b * p.Batch
	return lo, min(lo+p.Batch, p.Domains[d].Images)
}

// ownImages returns the number of images of domain d in this run's
// batches.
func (p *Plan) ownImages(d int) int {
	n := 0
	for b := range p.batches(d) {
		if p.mine(d, b) {
			lo, hi := p.rows(d, b)
			n += hi - lo
		}
	}
	return n
}

// shardOf returns the shard of n that extracts batch b of domain d: batches
// are numbered across domains in order and dealt out round-robin.
func (p *Plan) shardOf(d, b, n int) int {
	g := b
	for i := range d {
		g += p.batches(i)
	}
	return g % n
}

// mine reports whether this run extracts batch b of domain d.
func (p *Plan) mine(d, b int) bool {
	return p.Shard == nil || p.shardOf(d, b, p.Shard.Count) == p.Shard.Index
}

// diff describes the first difference between two plans that would make
// their outputs incompatible, or returns "" when there is none. Shard
// indices are not compared; shard counts are.
func (p *Plan) diff(q *Plan) string {
	count := func(s *Shard) string {
		if s == nil {
			return "unsharded"
		}
		return words.Count(s.Count, "shard")
	}
	fields := []struct {
		name string
		a, b any
	}{
		{"format", p.Format, q.Format},
		{"dataset name", p.Name, q.Name},
		{"model", p.Backbone, q.Backbone},
		{"embedding size", p.Dim, q.Dim},
		{"prompt", p.Prompt, q.Prompt},
		{"dtype", p.DType, q.DType},
		{"batch size", p.Batch, q.Batch},
		{"product precision", p.precision(), q.precision()},
		{"sharding", count(p.Shard), count(q.Shard)},
	}
	for _, f := range fields {
		if f.a != f.b {
			return fmt.Sprintf("%s: %v vs %v", f.name, f.a, f.b)
		}
	}
	if d := sliceDiff("classes", p.Classes, q.Classes); d != "" {
		return d
	}
	names := func(ds []DomainPlan) []string {
		out := make([]string, len(ds))
		for i, d := range ds {
			out[i] = d.Name
		}
		return out
	}
	if d := sliceDiff("domains", names(p.Domains), names(q.Domains)); d != "" {
		return d
	}
	for i, a := range p.Domains {
		if b := q.Domains[i]; a != b {
			return fmt.Sprintf("image list of domain %s: %d vs %d images, SHA-256 %.12s… vs %.12s…", a.Name, a.Images, b.Images, a.ListSHA256, b.ListSHA256)
		}
	}
	if !p.Fingerprint.Matches(q.Fingerprint) {
		return "model weights: same architecture but different fingerprints (embeddings of a probe image and sentence)"
	}
	return ""
}

// precision returns the plan's product precision, f32 for plans that
// record none.
func (p *Plan) precision() tensor.Precision {
	if p.Precision == "" {
		return tensor.PrecisionF32
	}
	return p.Precision
}

// sliceDiff describes the first difference between two string lists.
func sliceDiff(what string, a, b []string) string {
	for i := range min(len(a), len(b)) {
		if a[i] != b[i] {
			return fmt.Sprintf("%s: entry %d is %q vs %q", what, i+1, a[i], b[i])
		}
	}
	if len(a) != len(b) {
		return fmt.Sprintf("%s: %d vs %d entries", what, len(a), len(b))
	}
	return ""
}

// writePlan writes p as indented JSON to path, atomically.
func writePlan(path string, p *Plan) error {
	raw, err := json.MarshalIndent(p, "", "  ")
	if err != nil {
		return fmt.Errorf("extract: %w", err)
	}
	return writeFile(path, append(raw, '\n'))
}

// maxPlanBytes bounds a plan, which is read whole: it lists the classes
// and domains, as a store's dataset.json does, and is far smaller.
const maxPlanBytes = 16 << 20

// readPlan reads a plan written by writePlan.
func readPlan(path string) (*Plan, error) {
	raw, err := regularfile.ReadFile(path, "a JSON file", maxPlanBytes)
	if err != nil {
		return nil, fmt.Errorf("extract: %w", err)
	}
	var p Plan
	if err := json.Unmarshal(raw, &p); err != nil {
		return nil, fmt.Errorf("extract: %s: invalid JSON: %w", path, err)
	}
	switch {
	case p.Format != planFormat:
		return nil, fmt.Errorf("extract: %s: format %d; this version reads format %d", path, p.Format, planFormat)
	case p.Batch < 1:
		return nil, fmt.Errorf("extract: %s: batch size %d is not positive", path, p.Batch)
	case p.DType != features.F16 && p.DType != features.F32:
		return nil, fmt.Errorf("extract: %s: dtype %q; want F16 or F32", path, p.DType)
	case p.precision() != tensor.PrecisionF32 && p.precision() != tensor.PrecisionBF16:
		return nil, fmt.Errorf("extract: %s: product precision %q; want f32 or bf16", path, p.Precision)
	case p.Shard != nil && p.Shard.Validate() != nil:
		return nil, fmt.Errorf("extract: %s: %w", path, p.Shard.Validate())
	}
	if err := p.dataset().Validate(); err != nil {
		return nil, fmt.Errorf("extract: %s: %w", path, err)
	}
	for _, d := range p.Domains {
		if d.Images < 1 {
			return nil, fmt.Errorf("extract: %s: domain %s has %s", path, d.Name, words.Count(d.Images, "image"))
		}
	}
	return &p, nil
}

// writeFile writes data to path atomically.
func writeFile(path string, data []byte) error {
	err := atomicfile.Write(path, func(w io.Writer) error {
		_, err := w.Write(data)
		return err
	})
	if err != nil {
		return fmt.Errorf("extract: %w", err)
	}
	return nil
}

// imageList is the images.txt of a domain: "LABEL NAME" per image, in
// order, LABEL -1 for an unlabelled image. It is saved beside the domain's chunks, so that merge knows the
// labels and paths, and hashed into the plan.
func imageList(images []Image) []byte {
	var b bytes.Buffer
	for _, im := range images {
		fmt.Fprintf(&b, "%d %s\n", im.Label, im.Name)
	}
	return b.Bytes()
}

func sha256Hex(data []byte) string {
	sum := sha256.Sum256(data)
	return hex.EncodeToString(sum[:])
}

// parseImageList reads an images.txt written by imageList.
func parseImageList(path string, data []byte, classes int) ([]Image, error) {
	text := strings.TrimSuffix(string(data), "\n")
	if text == "" {
		return nil, fmt.Errorf("extract: %s: no images", path)
	}
	lines := strings.Split(text, "\n")
	images := make([]Image, len(lines))
	for i, l := range lines {
		label, name, ok := strings.Cut(l, " ")
		k, err := strconv.Atoi(label)
		if !ok || err != nil || k < Unlabelled || k >= classes || name == "" {
			return nil, fmt.Errorf("extract: %s: line %d: want \"LABEL NAME\" with a label in [-1, %d), got %q", path, i+1, classes, l)
		}
		images[i] = Image{Name: name, Label: k}
	}
	return images, nil
}

// DefaultPrompt is the reference code's prompt.
const DefaultPrompt = "a {domain} photo of a {class}."

// PromptText fills a prompt template as the reference code does: {domain}
// becomes the domain name in lower case with '_' turned into ' ', {class}
// the class name with '_' turned into ' ' and its case kept.
func PromptText(template, domain, class string) string {
	return strings.NewReplacer(
		"{domain}", strings.ReplaceAll(strings.ToLower(domain), "_", " "),
		"{class}", strings.ReplaceAll(class, "_", " "),
	).Replace(template)
}

// CheckPrompt rejects a template without a {class} placeholder, which would
// give every class the same text features.
func CheckPrompt(template string) error {
	if !strings.Contains(template, "{class}") {
		return fmt.Errorf("prompt %q has no {class} placeholder", template)
	}
	return nil
}

// textFeatures returns the normalised text embeddings [K, dim] of the
// domain's prompts.
func textFeatures(m *clip.Model, template, domain string, classes []string) (*tensor.Matrix, error) {
	tok, err := m.Tokenizer()
	if err != nil {
		return nil, fmt.Errorf("extract: %w", err)
	}
	prompts := make([]string, len(classes))
	for i, c := range classes {
		prompts[i] = PromptText(template, domain, c)
	}
	ids, err := tok.Tokenize(prompts, m.ContextLength(), false)
	if err != nil {
		return nil, fmt.Errorf("extract: prompts of domain %s: %w", domain, err)
	}
	text, err := m.EncodeText(ids)
	if err != nil {
		return nil, fmt.Errorf("extract: prompts of domain %s: %w", domain, err)
	}
	tensor.NormalizeRows(text, 0)
	return text, nil
}

// openAIModels are the image towers of OpenAI's released CLIP models.
var openAIModels = []struct {
	name   string
	vision clip.VisionConfig // the fields archKey compares
	embed  int
}{
	{"RN50", clip.VisionConfig{Architecture: clip.ModifiedResNet, ResNetLayers: [4]int{3, 4, 6, 3}, Width: 64, ImageResolution: 224}, 1024},
	{"RN101", clip.VisionConfig{Architecture: clip.ModifiedResNet, ResNetLayers: [4]int{3, 4, 23, 3}, Width: 64, ImageResolution: 224}, 512},
	{"RN50x4", clip.VisionConfig{Architecture: clip.ModifiedResNet, ResNetLayers: [4]int{4, 6, 10, 6}, Width: 80, ImageResolution: 288}, 640},
	{"RN50x16", clip.VisionConfig{Architecture: clip.ModifiedResNet, ResNetLayers: [4]int{6, 8, 18, 8}, Width: 96, ImageResolution: 384}, 768},
	{"RN50x64", clip.VisionConfig{Architecture: clip.ModifiedResNet, ResNetLayers: [4]int{3, 15, 36, 10}, Width: 128, ImageResolution: 448}, 1024},
	{"ViT-B/32", clip.VisionConfig{Architecture: clip.ViT, PatchSize: 32, Width: 768, Layers: 12, ImageResolution: 224}, 512},
	{"ViT-B/16", clip.VisionConfig{Architecture: clip.ViT, PatchSize: 16, Width: 768, Layers: 12, ImageResolution: 224}, 512},
	{"ViT-L/14", clip.VisionConfig{Architecture: clip.ViT, PatchSize: 14, Width: 1024, Layers: 24, ImageResolution: 224}, 768},
	{"ViT-L/14@336px", clip.VisionConfig{Architecture: clip.ViT, PatchSize: 14, Width: 1024, Layers: 24, ImageResolution: 336}, 768},
}

// archKey identifies an image tower by the fields that tell OpenAI's models
// apart: the ResNet depths or the ViT patch size and depth, the width, the
// input resolution and the embedding size.
func archKey(v clip.VisionConfig, embed int) string {
	if v.Architecture == clip.ModifiedResNet {
		return fmt.Sprintf("RN %v %d %d %d", v.ResNetLayers, v.Width, v.ImageResolution, embed)
	}
	return fmt.Sprintf("ViT %d %d %d %d %d", v.PatchSize, v.Width, v.Layers, v.ImageResolution, embed)
}

// Backbone describes a model for dataset.json: "CLIP ViT-B/16" when the
// image tower has the shape of one of OpenAI's released models (with
// " (GELU)" added for open_clip models that use GELU), else the
// configuration in one line.
func Backbone(cfg clip.Config) string {
	key := archKey(cfg.Vision, cfg.EmbedDim)
	for _, m := range openAIModels {
		if archKey(m.vision, m.embed) != key {
			continue
		}
		if cfg.Vision.Activation == clip.GELU {
			return "CLIP " + m.name + " (GELU)"
		}
		return "CLIP " + m.name
	}
	return cfg.String()
}
