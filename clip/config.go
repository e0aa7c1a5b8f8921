package clip

import (
	"encoding/json"
	"fmt"
	"math"
	"strings"
)

// Architecture names the image encoder of a CLIP model.
type Architecture string

// The image encoders of OpenAI's CLIP.
const (
	// ViT is the VisionTransformer (ViT-B/32, ViT-B/16, ViT-L/14, ...).
	ViT Architecture = "ViT"
	// ModifiedResNet is the ResNet with a three-convolution stem,
	// anti-aliased strided blocks and attention pooling (RN50, RN101, ...).
	ModifiedResNet Architecture = "ModifiedResNet"
)

// Activation names the nonlinearity of the transformer MLPs.
type Activation string

// Supported MLP activations.
const (
	// QuickGELU is x·σ(1.702·x), used by every OpenAI CLIP checkpoint and
	// open_clip's "-quickgelu" models.
	QuickGELU Activation = "quick_gelu"
	// GELU is the exact (erf) GELU of torch.nn.GELU, used by open_clip's
	// other models.
	GELU Activation = "gelu"
)

// defaultLayerNormEps is the LayerNorm epsilon of OpenAI's CLIP.
const defaultLayerNormEps = 1e-5

// headWidth is the attention head width that OpenAI's build_model assumes
// when a checkpoint does not state the number of heads.
const headWidth = 64

// Config is the architecture of a CLIP model. Load infers it from the weight
// shapes as OpenAI's build_model does and lets the values a file states
// (safetensors metadata, Hugging Face config.json, open_clip_config.json)
// override the inferred ones.
type Config struct {
	EmbedDim int // size of the joint image-text embedding
	Vision   VisionConfig
	Text     TextConfig
}

// VisionConfig is the architecture of the image encoder.
type VisionConfig struct {
	Architecture    Architecture
	ImageResolution int // input images are [3, n, n] with n = ImageResolution
	// Width is the token width of a ViT, or the stem width of a
	// ModifiedResNet (64 for RN50), whose attention pool then works on
	// 32·Width channels.
	Width int
	// Heads is the number of attention heads of the ViT blocks or of the
	// ResNet attention pool.
	Heads        int
	Layers       int    // ViT only: number of transformer blocks
	PatchSize    int    // ViT only: side of the square patches
	MLPWidth     int    // ViT only: hidden width of the block MLPs
	ResNetLayers [4]int // ModifiedResNet only: bottleneck blocks per stage
	Activation   Activation
	LayerNormEps float32
}

// TextConfig is the architecture of the text encoder.
type TextConfig struct {
	ContextLength int // token positions
	VocabSize     int
	Width         int
	Heads         int
	Layers        int
	MLPWidth      int
	Activation    Activation
	LayerNormEps  float32
}

// String describes the configuration in one line, for logs.
func (c Config) String() string {
	v := c.Vision
	var vision string
	if v.Architecture == ModifiedResNet {
		vision = fmt.Sprintf("ModifiedResNet layers %v width %d heads %d", v.ResNetLayers, v.Width, v.Heads)
	} else {
		vision = fmt.Sprintf("ViT patch %d width %d layers %d heads %d", v.PatchSize, v.Width, v.Layers, v.Heads)
	}
	t := c.Text
	return fmt.Sprintf("%s, %d px; text width %d layers %d heads %d, context %d; embed %d",
		vision, v.ImageResolution, t.Width, t.Layers, t.Heads, t.ContextLength, c.EmbedDim)
}

// shapeSource answers shape questions about a checkpoint in OpenAI's
// parameter naming, whatever naming the file itself uses.
type shapeSource interface {
	// shape returns the shape of the named tensor and whether it exists.
	shape(name string) ([]int, bool)
	// blockCount returns the number of distinct block indices i among the
	// tensors named prefix + "i." + ...
	blockCount(prefix string) int
	// path names the file, for error messages.
	path() string
	// fileNames returns the name or names that the file itself uses for the
	// tensor OpenAI calls name, for error messages.
	fileNames(name string) string
}

// inferConfig derives the architecture from tensor shapes, following OpenAI's
// build_model: ViT when visual.proj exists, ModifiedResNet when the attention
// pool does; heads are width/64 where nothing states them.
func inferConfig(src shapeSource) (Config, error) {
	var cfg Config
	need := func(name string, rank int) ([]int, error) {
		s, ok := src.shape(name)
		if !ok {
			return nil, fmt.Errorf("clip: %s: missing tensor %s", src.path(), src.fileNames(name))
		}
		if len(s) != rank {
			return nil, fmt.Errorf("clip: %s: tensor %s has shape %v, want %d dimensions", src.path(), src.fileNames(name), s, rank)
		}
		return s, nil
	}

	tok, err := need("token_embedding.weight", 2)
	if err != nil {
		return cfg, err
	}
	pos, err := need("positional_embedding", 2)
	if err != nil {
		return cfg, err
	}
	proj, err := need("text_projection", 2)
	if err != nil {
		return cfg, err
	}
	cfg.EmbedDim = proj[1]
	cfg.Text = TextConfig{
		ContextLength: pos[0],
		VocabSize:     tok[0],
		Width:         tok[1],
		Heads:         tok[1] / headWidth,
		Layers:        src.blockCount("transformer.resblocks."),
		MLPWidth:      4 * tok[1],
		Activation:    QuickGELU,
		LayerNormEps:  defaultLayerNormEps,
	}
	if fc, ok := src.shape("transformer.resblocks.0.mlp.c_fc.weight"); ok && len(fc) == 2 {
		cfg.Text.MLPWidth = fc[0]
	}

	v := &cfg.Vision
	v.Activation = QuickGELU
	v.LayerNormEps = defaultLayerNormEps
	_, isViT := src.shape("visual.proj")
	_, isResNet := src.shape("visual.attnpool.positional_embedding")
	switch {
	case isViT:
		v.Architecture = ViT
		conv, err := need("visual.conv1.weight", 4)
		if err != nil {
			return cfg, err
		}
		vpos, err := need("visual.positional_embedding", 2)
		if err != nil {
			return cfg, err
		}
		v.Width, v.PatchSize = conv[0], conv[3]
		v.ImageResolution = v.PatchSize * int(math.Round(math.Sqrt(float64(vpos[0]-1))))
		v.Layers = src.blockCount("visual.transformer.resblocks.")
		v.Heads = v.Width / headWidth
		v.MLPWidth = 4 * v.Width
		if fc, ok := src.shape("visual.transformer.resblocks.0.mlp.c_fc.weight"); ok && len(fc) == 2 {
			v.MLPWidth = fc[0]
		}
	case isResNet:
		v.Architecture = ModifiedResNet
		for i := range v.ResNetLayers {
			v.ResNetLayers[i] = src.blockCount(fmt.Sprintf("visual.layer%d.", i+1))
		}
		conv, err := need("visual.layer1.0.conv1.weight", 4)
		if err != nil {
			return cfg, err
		}
		apos, err := need("visual.attnpool.positional_embedding", 2)
		if err != nil {
			return cfg, err
		}
		v.Width = conv[0]
		v.Heads = v.Width * 32 / headWidth
		v.ImageResolution = 32 * int(math.Round(math.Sqrt(float64(apos[0]-1))))
	default:
		return cfg, fmt.Errorf("clip: %s: unknown image encoder: neither visual.proj (ViT) nor visual.attnpool.positional_embedding (ModifiedResNet) is present", src.path())
	}
	return cfg, nil
}

// applyMetadata overrides cfg with the values stated in a safetensors
// header's __metadata__ (the keys listed at Load); other keys are ignored.
func applyMetadata(cfg *Config, md map[string]string, path string) error {
	intKeys := []struct {
		key string
		dst *int
	}{
		{"embed_dim", &cfg.EmbedDim},
		{"image_resolution", &cfg.Vision.ImageResolution},
		{"vision_width", &cfg.Vision.Width},
		{"vision_heads", &cfg.Vision.Heads},
		{"context_length", &cfg.Text.ContextLength},
		{"vocab_size", &cfg.Text.VocabSize},
		{"transformer_width", &cfg.Text.Width},
		{"transformer_heads", &cfg.Text.Heads},
		{"transformer_layers", &cfg.Text.Layers},
	}
	bad := func(key string, err error) error {
		return fmt.Errorf("clip: %s: metadata %s = %q: %w", path, key, md[key], err)
	}
	for _, k := range intKeys {
		if s, ok := md[k.key]; ok {
			if err := json.Unmarshal([]byte(s), k.dst); err != nil {
				return bad(k.key, err)
			}
		}
	}
	if s, ok := md["architecture"]; ok {
		arch := Architecture(metadataString(s))
		if arch != ViT && arch != ModifiedResNet {
			return fmt.Errorf("clip: %s: unknown architecture %q in metadata (want %q or %q)", path, arch, ViT, ModifiedResNet)
		}
		cfg.Vision.Architecture = arch
	}
	if s, ok := md["vision_patch_size"]; ok {
		var p *int
		if err := json.Unmarshal([]byte(s), &p); err != nil {
			return bad("vision_patch_size", err)
		}
		if p != nil {
			cfg.Vision.PatchSize = *p
		}
	}
	if s, ok := md["vision_layers"]; ok {
		var layers any
		if err := json.Unmarshal([]byte(s), &layers); err != nil {
			return bad("vision_layers", err)
		}
		switch l := layers.(type) {
		case float64:
			cfg.Vision.Layers = int(l)
		case []any:
			if len(l) != 4 {
				return bad("vision_layers", fmt.Errorf("want 4 stage depths, got %d", len(l)))
			}
			for i, n := range l {
				f, ok := n.(float64)
				if !ok {
					return bad("vision_layers", fmt.Errorf("stage %d is not a number", i+1))
				}
				cfg.Vision.ResNetLayers[i] = int(f)
			}
		default:
			return bad("vision_layers", fmt.Errorf("want an int or a list of 4 ints"))
		}
	}
	if s, ok := md["hidden_act"]; ok {
		act, err := parseActivation(metadataString(s))
		if err != nil {
			return bad("hidden_act", err)
		}
		cfg.Vision.Activation, cfg.Text.Activation = act, act
	}
	return nil
}

// metadataString decodes a JSON-encoded metadata string, accepting a bare
// string as well (safetensors metadata values are free-form strings).
func metadataString(s string) string {
	var v string
	if json.Unmarshal([]byte(s), &v) == nil {
		return v
	}
	return s
}

// parseActivation maps a Hugging Face hidden_act name to an Activation.
func parseActivation(s string) (Activation, error) {
	switch a := Activation(s); a {
	case QuickGELU, GELU:
		return a, nil
	}
	return "", fmt.Errorf("unsupported activation %q (want %q or %q)", s, QuickGELU, GELU)
}

// validate checks that the configuration describes a model this package can
// run, so that loading fails with a message instead of a panic later.
func (c Config) validate(path string) error {
	var problems []string
	positive := func(name string, v int) {
		if v <= 0 {
			problems = append(problems, fmt.Sprintf("%s = %d, want > 0", name, v))
		}
	}
	heads := func(tower string, width, heads int) {
		if heads <= 0 || width%heads != 0 {
			problems = append(problems, fmt.Sprintf("%s width %d is not divisible into %d heads (state the head count in the file's config)", tower, width, heads))
		}
	}
	activation := func(tower string, a Activation) {
		if _, err := parseActivation(string(a)); err != nil {
			problems = append(problems, tower+": "+err.Error())
		}
	}
	positive("embed dim", c.EmbedDim)
	t := c.Text
	positive("text context length", t.ContextLength)
	positive("text vocabulary size", t.VocabSize)
	positive("text width", t.Width)
	positive("text MLP width", t.MLPWidth)
	heads("text", t.Width, t.Heads)
	activation("text", t.Activation)
	if t.Layers < 0 {
		problems = append(problems, fmt.Sprintf("text layers = %d", t.Layers))
	}
	v := c.Vision
	positive("image resolution", v.ImageResolution)
	positive("vision width", v.Width)
	switch v.Architecture {
	case ViT:
		positive("patch size", v.PatchSize)
		positive("vision MLP width", v.MLPWidth)
		heads("vision", v.Width, v.Heads)
		activation("vision", v.Activation)
		if v.Layers < 0 {
			problems = append(problems, fmt.Sprintf("vision layers = %d", v.Layers))
		}
		if v.PatchSize > 0 && v.ImageResolution%v.PatchSize != 0 {
			problems = append(problems, fmt.Sprintf("image resolution %d is not a multiple of the patch size %d", v.ImageResolution, v.PatchSize))
		}
	case ModifiedResNet:
		for i, n := range v.ResNetLayers {
			positive(fmt.Sprintf("blocks in ResNet stage %d", i+1), n)
		}
		if v.Width%2 != 0 {
			problems = append(problems, fmt.Sprintf("ResNet width %d is odd (the stem halves it)", v.Width))
		}
		heads("attention pool", 32*v.Width, v.Heads)
		if side := resNetOutputSide(v.ImageResolution); side < 1 {
			problems = append(problems, fmt.Sprintf("image resolution %d is too small for a ResNet (its output would be empty)", v.ImageResolution))
		}
	default:
		problems = append(problems, fmt.Sprintf("unknown architecture %q", v.Architecture))
	}
	if len(problems) > 0 {
		return fmt.Errorf("clip: %s: invalid model configuration: %s", path, strings.Join(problems, "; "))
	}
	return nil
}
