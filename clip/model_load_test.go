package clip

import (
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/unimos/unimos/safetensors"
	"github.com/unimos/unimos/tensor"
)

// fixtureTensors returns copies of the tensor headers of a fixture file (the
// data still aliases the file, which stays open until the test ends) and its
// metadata.
func fixtureTensors(t *testing.T, rel string) ([]*safetensors.Tensor, map[string]string) {
	t.Helper()
	f, err := safetensors.Open(filepath.Join(referenceDir(t), "models", rel))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	var ts []*safetensors.Tensor
	for _, n := range f.Names() {
		tt, err := f.Tensor(n)
		if err != nil {
			t.Fatal(err)
		}
		c := *tt
		ts = append(ts, &c)
	}
	md := map[string]string{}
	for k, v := range f.Metadata() {
		md[k] = v
	}
	return ts, md
}

// writeModel writes tensors and metadata as dir/name, with the extra files
// (name -> content) beside it, in a fresh temporary directory, and returns
// the weights path.
func writeModel(t testing.TB, name string, ts []*safetensors.Tensor, md map[string]string, extra map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	path := filepath.Join(dir, name)
	if err := safetensors.WriteFile(path, ts, md); err != nil {
		t.Fatal(err)
	}
	for n, content := range extra {
		if err := os.WriteFile(filepath.Join(dir, n), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return path
}

// hfConfigJSON returns the Hugging Face fixture's config.json, edited.
func hfConfigJSON(t *testing.T, edit func(string) string) map[string]string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(referenceDir(t), "models", "hf_vit_tiny", "config.json"))
	if err != nil {
		t.Fatal(err)
	}
	return map[string]string{"config.json": edit(string(data))}
}

func without(ts []*safetensors.Tensor, name string) []*safetensors.Tensor {
	return slices.DeleteFunc(slices.Clone(ts), func(x *safetensors.Tensor) bool { return x.Name == name })
}

// reshaped returns ts with the named tensor given another shape of the same
// size.
func reshaped(t *testing.T, ts []*safetensors.Tensor, name string, shape ...int) []*safetensors.Tensor {
	out := slices.Clone(ts)
	for i, x := range out {
		if x.Name == name {
			c := *x
			c.Shape = shape
			out[i] = &c
			return out
		}
	}
	t.Fatalf("no tensor %s", name)
	return nil
}

func wantLoadError(t *testing.T, path string, fragments ...string) {
	t.Helper()
	_, err := Load(path)
	if err == nil {
		t.Fatalf("Load(%s) succeeded, want an error mentioning %q", path, fragments)
	}
	for _, f := range fragments {
		if !strings.Contains(err.Error(), f) {
			t.Errorf("error %q does not mention %q", err, f)
		}
	}
}

func TestLoadMissingTensor(t *testing.T) {
	ts, md := fixtureTensors(t, "vit_tiny.safetensors")
	path := writeModel(t, "m.safetensors", without(ts, "visual.ln_post.bias"), md, nil)
	wantLoadError(t, path, path, `missing tensor "visual.ln_post.bias"`)

	ts, md = fixtureTensors(t, "rn_tiny.safetensors")
	path = writeModel(t, "m.safetensors", without(ts, "visual.layer3.0.downsample.1.running_var"), md, nil)
	wantLoadError(t, path, `missing tensor "visual.layer3.0.downsample.1.running_var"`)

	ts, md = fixtureTensors(t, "hf_vit_tiny/model.safetensors")
	name := "text_model.encoder.layers.1.self_attn.k_proj.bias"
	path = writeModel(t, "model.safetensors", without(ts, name), md, hfConfigJSON(t, func(s string) string { return s }))
	wantLoadError(t, path, path, strconv.Quote(name))
}

func TestLoadMisshapenTensor(t *testing.T) {
	ts, md := fixtureTensors(t, "vit_tiny.safetensors")
	path := writeModel(t, "m.safetensors", reshaped(t, ts, "transformer.resblocks.1.mlp.c_fc.weight", 32, 32), md, nil)
	wantLoadError(t, path, path, `"transformer.resblocks.1.mlp.c_fc.weight" has shape [32 32], want [64 16]`)

	// The HF projections are stored transposed: the untransposed shape is wrong.
	ts, md = fixtureTensors(t, "hf_vit_tiny/model.safetensors")
	path = writeModel(t, "model.safetensors", reshaped(t, ts, "visual_projection.weight", 128, 32), md,
		hfConfigJSON(t, func(s string) string { return s }))
	wantLoadError(t, path, `"visual_projection.weight" has shape [128 32], want [32 128]`)

	// A config value that disagrees with the weights shows up as a shape error.
	ts, md = fixtureTensors(t, "vit_tiny.safetensors")
	md["image_resolution"] = "48"
	path = writeModel(t, "m.safetensors", ts, md, nil)
	wantLoadError(t, path, `"visual.positional_embedding" has shape [17 128], want [37 128]`)
}

func TestLoadUnknownArchitecture(t *testing.T) {
	ts, md := fixtureTensors(t, "vit_tiny.safetensors")
	path := writeModel(t, "m.safetensors", without(ts, "visual.proj"), md, nil)
	wantLoadError(t, path, path, "unknown image encoder")

	md["architecture"] = `"Swin"`
	path = writeModel(t, "m.safetensors", ts, md, nil)
	wantLoadError(t, path, path, `unknown architecture "Swin"`)

	ts, md = fixtureTensors(t, "hf_vit_tiny/model.safetensors")
	path = writeModel(t, "model.safetensors", ts, md, hfConfigJSON(t, func(s string) string {
		return strings.Replace(s, `"model_type": "clip",`, `"model_type": "siglip",`, 1)
	}))
	wantLoadError(t, path, "config.json", `model_type "siglip"`)
}

func TestLoadUnexpectedTensor(t *testing.T) {
	ts, md := fixtureTensors(t, "vit_tiny.safetensors")
	extra, err := safetensors.FromFloat32("visual.transformer.resblocks.0.ls_1.gamma", safetensors.F32, []int{128}, make([]float32, 128))
	if err != nil {
		t.Fatal(err)
	}
	path := writeModel(t, "m.safetensors", append(slices.Clone(ts), extra), md, nil)
	wantLoadError(t, path, path, "visual.transformer.resblocks.0.ls_1.gamma")
}

func TestLoadHeads(t *testing.T) {
	ts, md := fixtureTensors(t, "vit_tiny.safetensors")
	md["transformer_heads"] = "3"
	path := writeModel(t, "m.safetensors", ts, md, nil)
	wantLoadError(t, path, "text width 16 is not divisible into 3 heads")

	// Without metadata, heads are width/64 as in build_model, which is 0 for
	// the tiny text tower: the error says to state them.
	path = writeModel(t, "m.safetensors", ts, nil, nil)
	wantLoadError(t, path, "text width 16 is not divisible into 0 heads", "state the head count")

	md["transformer_heads"] = "abc"
	path = writeModel(t, "m.safetensors", ts, md, nil)
	wantLoadError(t, path, "metadata transformer_heads")
}

func TestLoadPathErrors(t *testing.T) {
	wantLoadError(t, filepath.Join(t.TempDir(), "absent.safetensors"), "absent.safetensors")
	wantLoadError(t, t.TempDir(), "model.safetensors")
	bad := filepath.Join(t.TempDir(), "bad.safetensors")
	if err := os.WriteFile(bad, []byte("not a safetensors file"), 0o644); err != nil {
		t.Fatal(err)
	}
	wantLoadError(t, bad, "bad.safetensors")
}

// converted returns ts with every float tensor stored as dtype.
func converted(t *testing.T, ts []*safetensors.Tensor, dtype safetensors.DType) []*safetensors.Tensor {
	t.Helper()
	out := make([]*safetensors.Tensor, len(ts))
	for i, x := range ts {
		out[i] = x
		if x.DType != safetensors.F32 {
			continue
		}
		v, err := x.Float32()
		if err != nil {
			t.Fatal(err)
		}
		if out[i], err = safetensors.FromFloat32(x.Name, dtype, x.Shape, v); err != nil {
			t.Fatal(err)
		}
	}
	return out
}

// TestLoadHalfPrecision loads F16 and BF16 copies of the fixtures. Each must
// load to exactly the model of an F32 file holding the same rounded values,
// and stay close to the float32 reference outputs.
func TestLoadHalfPrecision(t *testing.T) {
	// Worst feature deviations seen from rounding these weights (features up
	// to ~5 in size) were about 5e-3 (F16, 11 significant bits) and 3e-2
	// (BF16, 8 bits); the bounds leave a margin of about 4×.
	tolerance := map[safetensors.DType]float64{safetensors.F16: 0.02, safetensors.BF16: 0.15}
	tokens := fixtureTokens(t)
	for _, fm := range fixtureModels[:2] {
		for _, dtype := range []safetensors.DType{safetensors.F16, safetensors.BF16} {
			t.Run(fmt.Sprintf("%s/%s", fm.name, dtype), func(t *testing.T) {
				ts, md := fixtureTensors(t, fm.weights)
				half := converted(t, ts, dtype)
				m, err := Load(writeModel(t, "m.safetensors", half, md, nil))
				if err != nil {
					t.Fatal(err)
				}
				rounded, err := Load(writeModel(t, "m.safetensors", converted(t, half, safetensors.F32), md, nil))
				if err != nil {
					t.Fatal(err)
				}
				if !reflect.DeepEqual(m, rounded) {
					t.Fatalf("%s weights do not load to their float32 values", dtype)
				}
				img, err := m.EncodeImages(fixturePixels(t, fm.resolution))
				if err != nil {
					t.Fatal(err)
				}
				txt, err := m.EncodeText(tokens)
				if err != nil {
					t.Fatal(err)
				}
				want, _ := expected(t, fm.name, "image_features")
				compareOutput(t, "image_features", flat(img), want, tolerance[dtype])
				want, _ = expected(t, fm.name, "text_features")
				compareOutput(t, "text_features", flat(txt), want, tolerance[dtype])
			})
		}
	}
}

func TestHFConfigActivation(t *testing.T) {
	ts, md := fixtureTensors(t, "hf_vit_tiny/model.safetensors")
	base, err := Load(filepath.Join(referenceDir(t), "models", "hf_vit_tiny"))
	if err != nil {
		t.Fatal(err)
	}
	path := writeModel(t, "model.safetensors", ts, md, hfConfigJSON(t, func(s string) string {
		return strings.ReplaceAll(s, `"hidden_act": "quick_gelu"`, `"hidden_act": "gelu"`)
	}))
	m, err := Load(filepath.Dir(path))
	if err != nil {
		t.Fatal(err)
	}
	if m.Config.Text.Activation != GELU || m.Config.Vision.Activation != GELU {
		t.Fatalf("activations %q, %q, want gelu", m.Config.Text.Activation, m.Config.Vision.Activation)
	}
	assertActivationChangesFeatures(t, base, m)

	path = writeModel(t, "model.safetensors", ts, md, hfConfigJSON(t, func(s string) string {
		return strings.ReplaceAll(s, `"hidden_act": "quick_gelu"`, `"hidden_act": "relu"`)
	}))
	wantLoadError(t, path, `unsupported activation "relu"`)
}

// assertActivationChangesFeatures checks that two models differing only in
// activation give different text and image features.
func assertActivationChangesFeatures(t *testing.T, a, b *Model) {
	t.Helper()
	ids := fixtureTokens(t)[:4]
	images := fixturePixels(t, a.InputResolution())[:2]
	for _, m := range []*Model{a, b} {
		if m.Config.Text.Activation == a.Config.Text.Activation && m != a {
			t.Fatal("models have the same activation")
		}
	}
	ta, _ := a.EncodeText(ids)
	tb, _ := b.EncodeText(ids)
	ia, _ := a.EncodeImages(images)
	ib, _ := b.EncodeImages(images)
	if reflect.DeepEqual(ta, tb) || reflect.DeepEqual(ia, ib) {
		t.Error("changing the activation did not change the features")
	}
}

func TestOpenCLIPConfig(t *testing.T) {
	ts, md := fixtureTensors(t, "vit_tiny.safetensors")
	clear(md) // only the open_clip config describes the model
	const cfg = `{"model_cfg": {"embed_dim": 32, %s
		"vision_cfg": {"image_size": [32, 32], "layers": 2, "width": 128, "patch_size": 8, "ls_init_value": null},
		"text_cfg": {"context_length": 77, "vocab_size": 49408, "width": 16, "heads": 2, "layers": 2%s}},
		"preprocess_cfg": {"mean": [0.48145466, 0.4578275, 0.40821073]}}`
	load := func(quick, textExtra string) (*Model, error) {
		path := writeModel(t, "open_clip_model.safetensors", ts, md,
			map[string]string{openCLIPConfigName: fmt.Sprintf(cfg, quick, textExtra)})
		return Load(filepath.Dir(path))
	}
	quick, err := load(`"quick_gelu": true,`, "")
	if err != nil {
		t.Fatal(err)
	}
	reference := loadFixture(t, fixtureModels[0])
	if !reflect.DeepEqual(quick, reference) {
		t.Errorf("open_clip load with quick_gelu differs from the OpenAI load:\n%+v\n%+v", quick.Config, reference.Config)
	}
	gelu, err := load("", "")
	if err != nil {
		t.Fatal(err)
	}
	if gelu.Config.Text.Activation != GELU || gelu.Config.Vision.Activation != GELU {
		t.Errorf("open_clip default activation: %q, %q, want gelu", gelu.Config.Text.Activation, gelu.Config.Vision.Activation)
	}
	assertActivationChangesFeatures(t, quick, gelu)

	if _, err := load("", `, "hf_model_name": "roberta-base"`); err == nil || !strings.Contains(err.Error(), "hf_model_name") {
		t.Errorf("open_clip hf_model_name: error %v, want one naming the option", err)
	}
}

func TestEncodeInputErrors(t *testing.T) {
	m := loadFixture(t, fixtureModels[0])
	if _, err := m.EncodeImages([][]float32{make([]float32, 3*32*32), make([]float32, 10)}); err == nil ||
		!strings.Contains(err.Error(), "image 1 has 10 values") {
		t.Errorf("short image: error %v", err)
	}
	long := make([]int32, 78)
	for _, tc := range []struct {
		ids  [][]int32
		want string
	}{
		{[][]int32{{49406, 49408}}, "id 49408 outside the vocabulary"},
		{[][]int32{{49406, -1}}, "id -1 outside"},
		{[][]int32{{49406, 49407}, {}}, "token row 1 has 0 ids"},
		{[][]int32{long}, "has 78 ids, want 1 to 77"},
	} {
		if _, err := m.EncodeText(tc.ids); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("EncodeText: error %v, want %q", err, tc.want)
		}
	}
	img, err := m.EncodeImages(nil)
	if err != nil || img.Rows != 0 || img.Cols != 32 {
		t.Errorf("EncodeImages(nil) = %v, %v; want an empty [0, 32] matrix", img, err)
	}
	txt, err := m.EncodeText(nil)
	if err != nil || txt.Rows != 0 || txt.Cols != 32 {
		t.Errorf("EncodeText(nil) = %v, %v; want an empty [0, 32] matrix", txt, err)
	}
}

// releasedModel holds the hyper-parameters OpenAI's build_model derives for
// a released checkpoint (clip/model.py; also the model card).
type releasedModel struct {
	name                           string
	embed, resolution              int
	visionLayers                   []int // one entry for a ViT
	visionWidth, patch             int
	textWidth, textHeads, textLays int
}

var releasedModels = []releasedModel{
	{"RN50", 1024, 224, []int{3, 4, 6, 3}, 64, 0, 512, 8, 12},
	{"RN101", 512, 224, []int{3, 4, 23, 3}, 64, 0, 512, 8, 12},
	{"RN50x4", 640, 288, []int{4, 6, 10, 6}, 80, 0, 640, 10, 12},
	{"ViT-B/32", 512, 224, []int{12}, 768, 32, 512, 8, 12},
	{"ViT-B/16", 512, 224, []int{12}, 768, 16, 512, 8, 12},
	{"ViT-L/14", 768, 224, []int{24}, 1024, 14, 768, 12, 12},
	{"ViT-L/14@336px", 768, 336, []int{24}, 1024, 14, 768, 12, 12},
}

// shapes lists the state-dict shapes of the released checkpoint, written out
// from the layer definitions of OpenAI's model.py.
func (r releasedModel) shapes() map[string][]int {
	s := map[string][]int{}
	ln := func(p string, n int) { s[p+".weight"], s[p+".bias"] = []int{n}, []int{n} }
	blocks := func(prefix string, layers, w int) {
		for i := range layers {
			p := fmt.Sprintf("%s%d.", prefix, i)
			ln(p+"ln_1", w)
			ln(p+"ln_2", w)
			s[p+"attn.in_proj_weight"], s[p+"attn.in_proj_bias"] = []int{3 * w, w}, []int{3 * w}
			s[p+"attn.out_proj.weight"], s[p+"attn.out_proj.bias"] = []int{w, w}, []int{w}
			s[p+"mlp.c_fc.weight"], s[p+"mlp.c_fc.bias"] = []int{4 * w, w}, []int{4 * w}
			s[p+"mlp.c_proj.weight"], s[p+"mlp.c_proj.bias"] = []int{w, 4 * w}, []int{w}
		}
	}
	tw := r.textWidth
	s["token_embedding.weight"], s["positional_embedding"] = []int{49408, tw}, []int{77, tw}
	blocks("transformer.resblocks.", r.textLays, tw)
	ln("ln_final", tw)
	s["text_projection"], s["logit_scale"] = []int{tw, r.embed}, []int{}
	// Scalars that OpenAI's TorchScript archives keep with the weights.
	s["input_resolution"], s["context_length"], s["vocab_size"] = []int{}, []int{}, []int{}

	w := r.visionWidth
	if len(r.visionLayers) == 1 {
		g := r.resolution / r.patch
		s["visual.conv1.weight"] = []int{w, 3, r.patch, r.patch}
		s["visual.class_embedding"], s["visual.positional_embedding"] = []int{w}, []int{g*g + 1, w}
		ln("visual.ln_pre", w)
		blocks("visual.transformer.resblocks.", r.visionLayers[0], w)
		ln("visual.ln_post", w)
		s["visual.proj"] = []int{w, r.embed}
		return s
	}
	bn := func(p string, n int) {
		ln(p, n)
		s[p+".running_mean"], s[p+".running_var"], s[p+".num_batches_tracked"] = []int{n}, []int{n}, []int{}
	}
	conv := func(p string, out, in, k int) { s[p] = []int{out, in, k, k} }
	conv("visual.conv1.weight", w/2, 3, 3)
	bn("visual.bn1", w/2)
	conv("visual.conv2.weight", w/2, w/2, 3)
	bn("visual.bn2", w/2)
	conv("visual.conv3.weight", w, w/2, 3)
	bn("visual.bn3", w)
	in := w
	for stage, n := range r.visionLayers {
		planes := w << stage
		for j := range n {
			p := fmt.Sprintf("visual.layer%d.%d.", stage+1, j)
			conv(p+"conv1.weight", planes, in, 1)
			bn(p+"bn1", planes)
			conv(p+"conv2.weight", planes, planes, 3)
			bn(p+"bn2", planes)
			conv(p+"conv3.weight", 4*planes, planes, 1)
			bn(p+"bn3", 4*planes)
			if j == 0 {
				conv(p+"downsample.0.weight", 4*planes, in, 1)
				bn(p+"downsample.1", 4*planes)
			}
			in = 4 * planes
		}
	}
	d, side := 32*w, r.resolution/32
	s["visual.attnpool.positional_embedding"] = []int{side*side + 1, d}
	for _, p := range []string{"q_proj", "k_proj", "v_proj"} {
		s["visual.attnpool."+p+".weight"], s["visual.attnpool."+p+".bias"] = []int{d, d}, []int{d}
	}
	s["visual.attnpool.c_proj.weight"], s["visual.attnpool.c_proj.bias"] = []int{r.embed, d}, []int{r.embed}
	return s
}

// shapeMapSource is a checkpoint known only by its shapes; its weights are
// views of one shared zero buffer, enough to build (not run) a model.
type shapeMapSource struct {
	shapes map[string][]int
	used   map[string]bool
	zeros  []float32
}

func (s *shapeMapSource) path() string                 { return "synthetic" }
func (s *shapeMapSource) fileNames(name string) string { return strconv.Quote(name) }
func (s *shapeMapSource) shape(name string) ([]int, bool) {
	sh, ok := s.shapes[name]
	return sh, ok
}

func (s *shapeMapSource) blockCount(prefix string) int {
	var names []string
	for n := range s.shapes {
		names = append(names, n)
	}
	return countBlocks(names, prefix)
}

func (s *shapeMapSource) read(name string, want []int) ([]float32, error) {
	sh, ok := s.shapes[name]
	if !ok {
		return nil, fmt.Errorf("missing tensor %q", name)
	}
	if !slices.Equal(sh, want) {
		return nil, fmt.Errorf("tensor %q has shape %v, want %v", name, sh, want)
	}
	s.used[name] = true
	n := 1
	for _, d := range sh {
		n *= d
	}
	return s.zeros[:n:n], nil
}

func (s *shapeMapSource) unused() []string {
	var names []string
	for n := range s.shapes {
		if !s.used[n] && !bookkeeping(n) {
			names = append(names, n)
		}
	}
	return names
}

// TestReleasedArchitecturesLoad checks that the shapes of every released
// OpenAI checkpoint infer its published configuration and that the model
// reads every tensor with the expected shape and no tensor is left over.
func TestReleasedArchitecturesLoad(t *testing.T) {
	zeros := make([]float32, 49408*1024)
	for _, r := range releasedModels {
		if testing.Short() && r.name != "RN50" && r.name != "ViT-B/32" {
			continue
		}
		t.Run(r.name, func(t *testing.T) {
			m, err := buildModel(&shapeMapSource{shapes: r.shapes(), used: map[string]bool{}, zeros: zeros},
				func(*Config) error { return nil }, nil)
			if err != nil {
				t.Fatal(err)
			}
			c := m.Config
			want := Config{EmbedDim: r.embed,
				Text: TextConfig{ContextLength: 77, VocabSize: 49408, Width: r.textWidth, Heads: r.textHeads,
					Layers: r.textLays, MLPWidth: 4 * r.textWidth, Activation: QuickGELU, LayerNormEps: 1e-5},
				Vision: VisionConfig{ImageResolution: r.resolution, Width: r.visionWidth, Activation: QuickGELU, LayerNormEps: 1e-5}}
			if len(r.visionLayers) == 1 {
				want.Vision.Architecture, want.Vision.Layers, want.Vision.PatchSize = ViT, r.visionLayers[0], r.patch
				want.Vision.Heads, want.Vision.MLPWidth = r.visionWidth/64, 4*r.visionWidth
			} else {
				want.Vision.Architecture, want.Vision.Heads = ModifiedResNet, r.visionWidth*32/64
				copy(want.Vision.ResNetLayers[:], r.visionLayers)
			}
			if c != want {
				t.Errorf("config\n%+v, want\n%+v", c, want)
			}
		})
	}
}

// TestConfigString is a smoke test of the log line.
func TestConfigString(t *testing.T) {
	m := loadFixture(t, fixtureModels[1])
	if s := m.Config.String(); !strings.Contains(s, "ModifiedResNet layers [2 1 1 1] width 8") || !strings.Contains(s, "64 px") {
		t.Errorf("String() = %q", s)
	}
}

// TestAttentionAgainstNaive compares the packed multi-head attention, with
// and without the causal mask and with partial query ranges, against a
// direct float64 implementation of the formula.
func TestAttentionAgainstNaive(t *testing.T) {
	const width, heads = 12, 3
	rng := newTestRand(7)
	a := attention{heads: heads,
		in:  linear{w: randomMatrix(rng, 3*width, width), b: randomMatrix(rng, 1, 3*width).Data},
		out: linear{w: randomMatrix(rng, 5, width), b: randomMatrix(rng, 1, 5).Data}}
	x := randomMatrix(rng, 11, width)
	seqs := []sequence{{start: 0, length: 4, query: 0, queries: 4}, {start: 4, length: 7, query: 2, queries: 3}}
	for _, causal := range []bool{false, true} {
		a.causal = causal
		var s scratch
		got := a.forward(x, seqs, &s).Clone()
		r := 0
		for _, sq := range seqs {
			for qi := range sq.queries {
				want := naiveAttention(a, x, sq, sq.query+qi, causal)
				for j, w := range want {
					if d := math.Abs(float64(got.At(r, j)) - w); d > 1e-5*math.Max(1, math.Abs(w)) {
						t.Fatalf("causal=%v row %d col %d: got %g, want %g", causal, r, j, got.At(r, j), w)
					}
				}
				r++
			}
		}
	}
}

// naiveAttention computes the attention output for position p of sequence
// sq in float64, straight from the definition.
func naiveAttention(a attention, x *tensor.Matrix, sq sequence, p int, causal bool) []float64 {
	width := x.Cols
	d := width / a.heads
	proj := func(row []float32, block int) []float64 {
		out := make([]float64, width)
		for o := range width {
			sum := float64(a.in.b[block*width+o])
			for i, v := range row {
				sum += float64(a.in.w.At(block*width+o, i)) * float64(v)
			}
			out[o] = sum
		}
		return out
	}
	q := proj(x.Row(sq.start+p), 0)
	concat := make([]float64, width)
	keys := sq.length
	if causal {
		keys = p + 1
	}
	for h := range a.heads {
		scores := make([]float64, keys)
		values := make([][]float64, keys)
		maxScore := math.Inf(-1)
		for j := range keys {
			k := proj(x.Row(sq.start+j), 1)
			values[j] = proj(x.Row(sq.start+j), 2)
			for c := h * d; c < (h+1)*d; c++ {
				scores[j] += q[c] * k[c]
			}
			scores[j] /= math.Sqrt(float64(d))
			maxScore = math.Max(maxScore, scores[j])
		}
		var total float64
		for j := range scores {
			scores[j] = math.Exp(scores[j] - maxScore)
			total += scores[j]
		}
		for j := range keys {
			for c := h * d; c < (h+1)*d; c++ {
				concat[c] += scores[j] / total * values[j][c]
			}
		}
	}
	out := make([]float64, a.out.w.Rows)
	for o := range out {
		sum := float64(a.out.b[o])
		for i, v := range concat {
			sum += float64(a.out.w.At(o, i)) * v
		}
		out[o] = sum
	}
	return out
}

// TestHFTokenizerFiles loads the Hugging Face fixture with vocab.json and
// merges.txt beside it, two token ids swapped in vocab.json: the model's
// tokenizer must take its ids from those files, and must refuse an id past
// the token embeddings or one file without the other.
func TestHFTokenizerFiles(t *testing.T) {
	ts, md := fixtureTensors(t, "hf_vit_tiny/model.safetensors")
	vocabPath, mergesPath := writeHFTokenizerFiles(t)
	var vocab map[string]int
	raw, err := os.ReadFile(vocabPath)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(raw, &vocab); err != nil {
		t.Fatal(err)
	}
	merges, err := os.ReadFile(mergesPath)
	if err != nil {
		t.Fatal(err)
	}
	vocab["photo</w>"], vocab["cat</w>"] = vocab["cat</w>"], vocab["photo</w>"]
	files := func(vocab map[string]int, withMerges bool) map[string]string {
		extra := hfConfigJSON(t, func(s string) string { return s })
		raw, err := json.Marshal(vocab)
		if err != nil {
			t.Fatal(err)
		}
		extra[hfVocabFile] = string(raw)
		if withMerges {
			extra[hfMergesFile] = string(merges)
		}
		return extra
	}

	def := mustDefaultTokenizer(t)
	base, err := Load(filepath.Join(referenceDir(t), "models", "hf_vit_tiny"))
	if err != nil {
		t.Fatal(err)
	}
	const text = "a photo of a cat"
	if tok, err := base.Tokenizer(); err != nil || !slices.Equal(tok.Encode(text), def.Encode(text)) {
		t.Errorf("without tokenizer files: %v, want CLIP's own vocabulary", err)
	}

	m, err := Load(filepath.Dir(writeModel(t, "model.safetensors", ts, md, files(vocab, true))))
	if err != nil {
		t.Fatal(err)
	}
	tok, err := m.Tokenizer()
	if err != nil {
		t.Fatal(err)
	}
	want := def.Encode(text) // a, photo, of, a, cat
	want[1], want[4] = want[4], want[1]
	if got := tok.Encode(text); !slices.Equal(got, want) {
		t.Errorf("%q encodes to %v, want the files' ids %v", text, got, want)
	}

	wantLoadError(t, writeModel(t, "model.safetensors", ts, md, files(vocab, false)), "only one of vocab.json and merges.txt")
	vocab["extra</w>"] = 49408
	wantLoadError(t, writeModel(t, "model.safetensors", ts, md, files(vocab, true)), "vocab.json has token id 49408", "49408 token embeddings")
}
