package clip

import (
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/unimos/unimos/internal/regularfile"
)

// hfTokenEmbedding is the tensor that identifies Hugging Face CLIPModel naming.
const hfTokenEmbedding = "text_model.embeddings.token_embedding.weight"

// hfRenames maps OpenAI names (exact, or prefixes when ending in ".") to
// Hugging Face CLIPModel names, after transformers'
// convert_clip_original_pytorch_to_hf.py.
var hfRenames = []struct{ openai, hf string }{
	{"token_embedding.weight", hfTokenEmbedding},
	{"positional_embedding", "text_model.embeddings.position_embedding.weight"},
	{"ln_final.", "text_model.final_layer_norm."},
	{"transformer.resblocks.", "text_model.encoder.layers."},
	{"visual.conv1.weight", "vision_model.embeddings.patch_embedding.weight"},
	{"visual.class_embedding", "vision_model.embeddings.class_embedding"},
	{"visual.positional_embedding", "vision_model.embeddings.position_embedding.weight"},
	{"visual.ln_pre.", "vision_model.pre_layrnorm."}, // sic
	{"visual.ln_post.", "vision_model.post_layernorm."},
	{"visual.transformer.resblocks.", "vision_model.encoder.layers."},
	{"logit_scale", "logit_scale"},
}

// hfBlockRenames maps the names inside one residual block.
var hfBlockRenames = []struct{ openai, hf string }{
	{"ln_1.", "layer_norm1."},
	{"ln_2.", "layer_norm2."},
	{"mlp.c_fc.", "mlp.fc1."},
	{"mlp.c_proj.", "mlp.fc2."},
	{"attn.out_proj.", "self_attn.out_proj."},
}

// hfTransposed are the projections that Hugging Face stores as Linear
// weights [embed, width], transposed relative to OpenAI's [width, embed].
var hfTransposed = map[string]string{
	"text_projection": "text_projection.weight",
	"visual.proj":     "visual_projection.weight",
}

// hfTensor says how to assemble one OpenAI tensor from Hugging Face ones:
// the named tensor as is or transposed, or three tensors (query, key, value
// projections) stacked along the first dimension.
type hfTensor struct {
	parts     []string
	transpose bool
}

// hfTensorFor returns the recipe for the OpenAI-named tensor, or false when
// Hugging Face's CLIPModel has no equivalent (the ResNet tensors).
func hfTensorFor(name string) (hfTensor, bool) {
	if hf, ok := hfTransposed[name]; ok {
		return hfTensor{parts: []string{hf}, transpose: true}, true
	}
	for _, r := range hfRenames {
		rest, ok := strings.CutPrefix(name, r.openai)
		if !ok || (rest != "" && !strings.HasSuffix(r.openai, ".")) {
			continue
		}
		if !strings.HasSuffix(r.openai, "resblocks.") {
			return hfTensor{parts: []string{r.hf + rest}}, true
		}
		idx, inner, ok := strings.Cut(rest, ".")
		if !ok {
			return hfTensor{}, false
		}
		block := r.hf + idx + "."
		if kind, ok := strings.CutPrefix(inner, "attn.in_proj_"); ok { // weight or bias
			var parts []string
			for _, p := range []string{"q", "k", "v"} {
				parts = append(parts, block+"self_attn."+p+"_proj."+kind)
			}
			return hfTensor{parts: parts}, true
		}
		for _, b := range hfBlockRenames {
			if tail, ok := strings.CutPrefix(inner, b.openai); ok {
				return hfTensor{parts: []string{block + b.hf + tail}}, true
			}
		}
		return hfTensor{}, false
	}
	return hfTensor{}, false
}

// hfSource presents a Hugging Face CLIPModel weights file (model.safetensors
// or pytorch_model.bin) under OpenAI's names: query, key and value
// projections are stacked into in_proj, the two output projections are
// transposed, position_ids are ignored.
type hfSource struct {
	f    tensorFile
	used map[string]bool
}

func newHFSource(f tensorFile) *hfSource {
	return &hfSource{f: f, used: map[string]bool{}}
}

func (s *hfSource) path() string { return s.f.Path() }

func (s *hfSource) fileNames(name string) string {
	rec, ok := hfTensorFor(name)
	if !ok {
		return strconv.Quote(name)
	}
	quoted := make([]string, len(rec.parts))
	for i, p := range rec.parts {
		quoted[i] = strconv.Quote(p)
	}
	return strings.Join(quoted, " or ")
}

func (s *hfSource) shape(name string) ([]int, bool) {
	rec, ok := hfTensorFor(name)
	if !ok {
		return nil, false
	}
	var shapes [][]int
	for _, p := range rec.parts {
		t, err := s.f.Tensor(p)
		if err != nil {
			return nil, false
		}
		shapes = append(shapes, t.Shape)
	}
	first := shapes[0]
	switch {
	case rec.transpose && len(first) == 2:
		return []int{first[1], first[0]}, true
	case len(shapes) == 3 && len(first) > 0:
		for _, sh := range shapes[1:] {
			if !slices.Equal(sh, first) {
				return nil, false
			}
		}
		return append([]int{3 * first[0]}, first[1:]...), true
	}
	return first, true
}

func (s *hfSource) blockCount(prefix string) int {
	for _, r := range hfRenames {
		if r.openai == prefix {
			return countBlocks(s.f.Names(), r.hf)
		}
	}
	return 0
}

func (s *hfSource) read(name string, want []int) ([]float32, error) {
	rec, ok := hfTensorFor(name)
	if !ok {
		return nil, fmt.Errorf("clip: %s: Hugging Face CLIPModel files have no tensor for %q", s.path(), name)
	}
	get := func(hfName string, shape []int) ([]float32, error) {
		t, err := s.f.Tensor(hfName)
		if err != nil {
			return nil, fmt.Errorf("clip: %s: missing tensor %q", s.path(), hfName)
		}
		s.used[hfName] = true
		return checkedFloat32(s.path(), t, shape)
	}
	switch {
	case rec.transpose:
		if len(want) != 2 {
			return nil, fmt.Errorf("clip: %s: internal error: transposing %q of rank %d", s.path(), name, len(want))
		}
		rows, cols := want[0], want[1]
		v, err := get(rec.parts[0], []int{cols, rows})
		if err != nil {
			return nil, err
		}
		out := make([]float32, len(v))
		for i := range cols {
			for j := range rows {
				out[j*cols+i] = v[i*rows+j]
			}
		}
		return out, nil
	case len(rec.parts) == 3:
		if len(want) == 0 || want[0]%3 != 0 {
			return nil, fmt.Errorf("clip: %s: internal error: splitting %q of shape %v in 3", s.path(), name, want)
		}
		part := append([]int{want[0] / 3}, want[1:]...)
		var out []float32
		for _, p := range rec.parts {
			v, err := get(p, part)
			if err != nil {
				return nil, err
			}
			out = append(out, v...)
		}
		return out, nil
	}
	return get(rec.parts[0], want)
}

func (s *hfSource) unused() []string {
	var names []string
	for _, n := range s.f.Names() {
		if !s.used[n] && !bookkeeping(n) {
			names = append(names, n)
		}
	}
	return names
}

// hfTowerConfig holds the fields of a CLIPTextConfig or CLIPVisionConfig
// that shape the forward pass; nil means not stated.
type hfTowerConfig struct {
	HiddenSize            *int     `json:"hidden_size"`
	IntermediateSize      *int     `json:"intermediate_size"`
	NumHiddenLayers       *int     `json:"num_hidden_layers"`
	NumAttentionHeads     *int     `json:"num_attention_heads"`
	MaxPositionEmbeddings *int     `json:"max_position_embeddings"`
	VocabSize             *int     `json:"vocab_size"`
	ImageSize             *int     `json:"image_size"`
	PatchSize             *int     `json:"patch_size"`
	NumChannels           *int     `json:"num_channels"`
	HiddenAct             *string  `json:"hidden_act"`
	LayerNormEps          *float64 `json:"layer_norm_eps"`
}

// applyHFConfig overrides cfg with the values a Hugging Face CLIPConfig
// (config.json) states. As in transformers, the legacy text_config_dict and
// vision_config_dict entries take precedence over text_config and
// vision_config.
func applyHFConfig(cfg *Config, configPath string) error {
	data, err := regularfile.ReadFile(configPath, "a JSON file", maxJSONBytes)
	if err != nil {
		return fmt.Errorf("clip: %w", err)
	}
	var raw struct {
		ModelType        string          `json:"model_type"`
		ProjectionDim    *int            `json:"projection_dim"`
		TextConfig       json.RawMessage `json:"text_config"`
		TextConfigDict   json.RawMessage `json:"text_config_dict"`
		VisionConfig     json.RawMessage `json:"vision_config"`
		VisionConfigDict json.RawMessage `json:"vision_config_dict"`
	}
	if err := json.Unmarshal(data, &raw); err != nil {
		return fmt.Errorf("clip: %s: %w", configPath, err)
	}
	if raw.ModelType != "" && raw.ModelType != "clip" {
		return fmt.Errorf("clip: %s: unknown architecture: model_type %q, want \"clip\"", configPath, raw.ModelType)
	}
	tower := func(parts ...json.RawMessage) (hfTowerConfig, error) {
		var c hfTowerConfig
		for _, p := range parts {
			// Unmarshal sets only the fields present, so later parts override.
			if len(p) > 0 {
				if err := json.Unmarshal(p, &c); err != nil {
					return c, fmt.Errorf("clip: %s: %w", configPath, err)
				}
			}
		}
		return c, nil
	}
	text, err := tower(raw.TextConfig, raw.TextConfigDict)
	if err != nil {
		return err
	}
	vision, err := tower(raw.VisionConfig, raw.VisionConfigDict)
	if err != nil {
		return err
	}
	if vision.NumChannels != nil && *vision.NumChannels != 3 {
		return fmt.Errorf("clip: %s: vision num_channels %d, want 3", configPath, *vision.NumChannels)
	}

	set := func(dst *int, v *int) {
		if v != nil {
			*dst = *v
		}
	}
	setCommon := func(c hfTowerConfig, width, heads, layers, mlp *int, act *Activation, eps *float32) error {
		set(width, c.HiddenSize)
		set(heads, c.NumAttentionHeads)
		set(layers, c.NumHiddenLayers)
		set(mlp, c.IntermediateSize)
		if c.HiddenAct != nil {
			a, err := parseActivation(*c.HiddenAct)
			if err != nil {
				return fmt.Errorf("clip: %s: %w", configPath, err)
			}
			*act = a
		}
		if c.LayerNormEps != nil {
			*eps = float32(*c.LayerNormEps)
		}
		return nil
	}
	set(&cfg.EmbedDim, raw.ProjectionDim)
	t := &cfg.Text
	if err := setCommon(text, &t.Width, &t.Heads, &t.Layers, &t.MLPWidth, &t.Activation, &t.LayerNormEps); err != nil {
		return err
	}
	set(&t.ContextLength, text.MaxPositionEmbeddings)
	set(&t.VocabSize, text.VocabSize)
	v := &cfg.Vision
	v.Architecture = ViT
	if err := setCommon(vision, &v.Width, &v.Heads, &v.Layers, &v.MLPWidth, &v.Activation, &v.LayerNormEps); err != nil {
		return err
	}
	set(&v.ImageResolution, vision.ImageSize)
	set(&v.PatchSize, vision.PatchSize)
	return nil
}
