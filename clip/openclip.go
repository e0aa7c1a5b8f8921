package clip

import (
	"bytes"
	"encoding/json"
	"fmt"
	"slices"
	"sort"

	"github.com/unimos/unimos/internal/regularfile"
)

// openCLIPConfigName is the configuration file that open_clip publishes next
// to its checkpoints (open_clip_model.safetensors).
const openCLIPConfigName = "open_clip_config.json"

// openCLIPAccepted lists open_clip options that change the forward pass in
// ways this package does not implement, with the (default) values under
// which they do not. Other values are rejected rather than silently ignored.
var openCLIPAccepted = map[string][]string{
	"timm_model_name":     {"null"},
	"hf_model_name":       {"null"},
	"ls_init_value":       {"null"},
	"attentional_pool":    {"false"},
	"final_ln_after_pool": {"false"},
	"no_ln_pre":           {"false"},
	"global_average_pool": {"false"},
	"input_patchnorm":     {"false"},
	"embed_cls":           {"false"},
	"no_causal_mask":      {"false"},
	"proj_bias":           {"false"},
	"pool_type":           {`"tok"`, `"argmax"`}, // vision and text defaults
	"proj_type":           {`"linear"`},
}

// applyOpenCLIPConfig overrides cfg with an open_clip model configuration:
// model_cfg.embed_dim, model_cfg.quick_gelu (absent or false means GELU, as
// in open_clip), and in vision_cfg and text_cfg the sizes (image_size,
// layers, width, patch_size, head_width, heads, mlp_ratio, context_length,
// vocab_size).
func applyOpenCLIPConfig(cfg *Config, path string) error {
	data, err := regularfile.ReadFile(path, "a JSON file", maxJSONBytes)
	if err != nil {
		return fmt.Errorf("clip: %w", err)
	}
	var raw struct {
		ModelCfg *struct {
			EmbedDim  *int                       `json:"embed_dim"`
			QuickGELU bool                       `json:"quick_gelu"`
			VisionCfg map[string]json.RawMessage `json:"vision_cfg"`
			TextCfg   map[string]json.RawMessage `json:"text_cfg"`
		} `json:"model_cfg"`
	}
	if err := json.Unmarshal(data, &raw); err != nil {
		return fmt.Errorf("clip: %s: %w", path, err)
	}
	mc := raw.ModelCfg
	if mc == nil {
		return fmt.Errorf("clip: %s: no model_cfg", path)
	}
	for _, tower := range []map[string]json.RawMessage{mc.VisionCfg, mc.TextCfg} {
		keys := make([]string, 0, len(tower))
		for k := range tower {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			accepted, listed := openCLIPAccepted[k]
			if v := string(bytes.TrimSpace(tower[k])); listed && !slices.Contains(accepted, v) {
				return fmt.Errorf("clip: %s: unsupported open_clip option %s = %s", path, k, v)
			}
		}
	}

	var bad error
	getInt := func(m map[string]json.RawMessage, key string, dst *int) {
		if v, ok := m[key]; ok && bad == nil {
			if err := json.Unmarshal(v, dst); err != nil {
				bad = fmt.Errorf("clip: %s: %s: %w", path, key, err)
			}
		}
	}
	getFloat := func(m map[string]json.RawMessage, key string) (float64, bool) {
		var f float64
		v, ok := m[key]
		if ok && bad == nil {
			if err := json.Unmarshal(v, &f); err != nil {
				bad = fmt.Errorf("clip: %s: %s: %w", path, key, err)
			}
		}
		return f, ok && bad == nil
	}

	if mc.EmbedDim != nil {
		cfg.EmbedDim = *mc.EmbedDim
	}
	act := GELU
	if mc.QuickGELU {
		act = QuickGELU
	}
	cfg.Text.Activation, cfg.Vision.Activation = act, act

	t, vc := &cfg.Text, mc.TextCfg
	getInt(vc, "context_length", &t.ContextLength)
	getInt(vc, "vocab_size", &t.VocabSize)
	getInt(vc, "width", &t.Width)
	getInt(vc, "heads", &t.Heads)
	getInt(vc, "layers", &t.Layers)
	if r, ok := getFloat(vc, "mlp_ratio"); ok {
		t.MLPWidth = int(float64(t.Width) * r)
	}

	v, vv := &cfg.Vision, mc.VisionCfg
	getInt(vv, "width", &v.Width)
	getInt(vv, "patch_size", &v.PatchSize)
	if size, ok := vv["image_size"]; ok {
		var side int
		var sides []int
		if json.Unmarshal(size, &side) != nil {
			if err := json.Unmarshal(size, &sides); err != nil || len(sides) != 2 || sides[0] != sides[1] {
				return fmt.Errorf("clip: %s: image_size %s: want an int or two equal ints", path, size)
			}
			side = sides[0]
		}
		v.ImageResolution = side
	}
	if layers, ok := vv["layers"]; ok {
		var n int
		var stages []int
		switch {
		case json.Unmarshal(layers, &n) == nil:
			v.Architecture, v.Layers = ViT, n
		case json.Unmarshal(layers, &stages) == nil && len(stages) == 4:
			v.Architecture = ModifiedResNet
			copy(v.ResNetLayers[:], stages)
		default:
			return fmt.Errorf("clip: %s: vision layers %s: want an int or 4 ints", path, layers)
		}
	}
	head := headWidth
	getInt(vv, "head_width", &head)
	if head <= 0 {
		return fmt.Errorf("clip: %s: head_width %d", path, head)
	}
	if v.Architecture == ModifiedResNet {
		v.Heads = 32 * v.Width / head
	} else {
		v.Heads = v.Width / head
		if r, ok := getFloat(vv, "mlp_ratio"); ok {
			v.MLPWidth = int(float64(v.Width) * r)
		}
	}
	return bad
}
