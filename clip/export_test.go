package clip

import (
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/unimos/unimos/safetensors"
)

// TestCheckpointRoundTrip converts checkpoints of every naming and format
// to one OpenAI-naming safetensors file at each storage type and loads it
// back. Kept exact (F32, or the default), the file must load to the very
// model of its source; rounded to F16 or BF16, to the model of the source's
// OpenAI fixture with its values rounded to that type, made here
// independently of the conversion.
func TestCheckpointRoundTrip(t *testing.T) {
	models := filepath.Join(referenceDir(t), "models")
	formats := formatsDir(t)
	cases := []struct {
		source      string
		fixture     string            // the OpenAI-naming file holding the same weights
		defaultType safetensors.DType // what ReadCheckpoint keeps without a type
	}{
		{filepath.Join(models, "vit_tiny.safetensors"), "vit_tiny.safetensors", safetensors.F32},
		{filepath.Join(models, "rn_tiny.safetensors"), "rn_tiny.safetensors", safetensors.F32},
		{filepath.Join(models, "hf_vit_tiny"), "vit_tiny.safetensors", safetensors.F32},
		{filepath.Join(formats, "hf_sharded"), "vit_tiny.safetensors", safetensors.F32},
		{filepath.Join(formats, "vit_f16.safetensors"), "", safetensors.F16},
	}
	for _, c := range cases {
		source, err := Load(c.source)
		if err != nil {
			t.Fatal(err)
		}
		for _, dtype := range []safetensors.DType{"", safetensors.F32, safetensors.F16, safetensors.BF16} {
			t.Run(filepath.Base(c.source)+"/"+string(dtype), func(t *testing.T) {
				ck, err := ReadCheckpoint(c.source, dtype)
				if err != nil {
					t.Fatal(err)
				}
				want := dtype
				if want == "" {
					want = c.defaultType
				}
				out := filepath.Join(t.TempDir(), "model.safetensors")
				if err := ck.WriteFile(out); err != nil {
					t.Fatal(err)
				}
				checkWritten(t, out, want)
				back, err := Load(out)
				if err != nil {
					t.Fatal(err)
				}
				if back.Config != source.Config {
					t.Fatalf("config %+v, want %+v", back.Config, source.Config)
				}
				reference := source
				if want != c.defaultType && want != safetensors.F32 {
					if c.fixture == "" {
						return // no float32 original to round
					}
					ts, md := fixtureTensors(t, c.fixture)
					if reference, err = Load(writeModel(t, "rounded.safetensors", converted(t, ts, want), md, nil)); err != nil {
						t.Fatal(err)
					}
				}
				if !reflect.DeepEqual(back, reference) {
					t.Error("the converted file loads to another model")
				}
				sameEmbeddings(t, out, back, reference)
			})
		}
	}
}

// checkWritten checks that every tensor of the file at path is stored as
// dtype and that the metadata states the configuration.
func checkWritten(t *testing.T, path string, dtype safetensors.DType) {
	t.Helper()
	f, err := safetensors.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for _, name := range f.Names() {
		if x, _ := f.Tensor(name); x.DType != dtype {
			t.Errorf("tensor %s stored as %s, want %s", name, x.DType, dtype)
		}
	}
	md := f.Metadata()
	for _, key := range []string{"architecture", "embed_dim", "image_resolution", "vision_layers", "vision_width", "vision_heads",
		"vision_patch_size", "context_length", "vocab_size", "transformer_width", "transformer_heads", "transformer_layers", "hidden_act"} {
		if md[key] == "" {
			t.Errorf("metadata has no %s: %v", key, md)
		}
	}
}

// TestCheckpointDefaultType keeps a checkpoint whose weights all fit BF16
// as BF16, and one with weights in F16 and BF16 as F32.
func TestCheckpointDefaultType(t *testing.T) {
	ts, md := fixtureTensors(t, "vit_tiny.safetensors")
	bf16 := converted(t, ts, safetensors.BF16)
	mixed := slices.Clone(bf16)
	for i, x := range ts {
		if x.Name == "visual.proj" {
			mixed[i] = converted(t, ts[i:i+1], safetensors.F16)[0]
		}
	}
	for _, c := range []struct {
		name string
		ts   []*safetensors.Tensor
		want safetensors.DType
	}{
		{"bf16", bf16, safetensors.BF16},
		{"bf16 and f16", mixed, safetensors.F32},
	} {
		ck, err := ReadCheckpoint(writeModel(t, "m.safetensors", c.ts, md, nil), "")
		if err != nil {
			t.Fatal(err)
		}
		if ck.DType != c.want {
			t.Errorf("%s: kept as %s, want %s", c.name, ck.DType, c.want)
		}
		for _, x := range ck.Tensors {
			if x.DType != c.want {
				t.Errorf("%s: tensor %s is %s, want %s", c.name, x.Name, x.DType, c.want)
			}
		}
	}
}

// TestCheckpointRoundedValues: --dtype f16 and bf16 store each weight
// rounded to nearest, ties to even, as safetensors' converters do.
func TestCheckpointRoundedValues(t *testing.T) {
	path := filepath.Join(referenceDir(t), "models", "vit_tiny.safetensors")
	f, err := safetensors.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	orig, err := f.Tensor("visual.proj")
	if err != nil {
		t.Fatal(err)
	}
	values, err := orig.Float32()
	if err != nil {
		t.Fatal(err)
	}
	for _, dtype := range []safetensors.DType{safetensors.F16, safetensors.BF16} {
		ck, err := ReadCheckpoint(path, dtype)
		if err != nil {
			t.Fatal(err)
		}
		i := slices.IndexFunc(ck.Tensors, func(x *safetensors.Tensor) bool { return x.Name == "visual.proj" })
		if i < 0 {
			t.Fatal("no visual.proj")
		}
		got, err := ck.Tensors[i].Float32()
		if err != nil {
			t.Fatal(err)
		}
		for j, v := range values {
			var want float32
			if dtype == safetensors.F16 {
				want = safetensors.F16ToFloat32(safetensors.Float32ToF16(v))
			} else {
				want = safetensors.BF16ToFloat32(safetensors.Float32ToBF16(v))
			}
			if got[j] != want {
				t.Fatalf("%s: value %d is %g, want %g rounded to %g", dtype, j, got[j], v, want)
			}
		}
		if slices.Equal(got, values) {
			t.Errorf("%s: no value was rounded", dtype)
		}
	}
}

// TestCheckpointWriteRefuses: configurations that an OpenAI-naming file
// cannot state, or that an open_clip_config.json beside the output would
// change, are refused before anything is written.
func TestCheckpointWriteRefuses(t *testing.T) {
	path := filepath.Join(referenceDir(t), "models", "vit_tiny.safetensors")
	cases := []struct {
		name   string
		edit   func(*Config)
		beside string // an open_clip_config.json in the output's folder
		wants  []string
	}{
		{"towers with other activations", func(c *Config) { c.Text.Activation = GELU }, "",
			[]string{"cannot state this model's configuration", "text quick_gelu", "text gelu"}},
		{"another LayerNorm epsilon", func(c *Config) { c.Vision.LayerNormEps = 1e-6 }, "",
			[]string{"vision quick_gelu, eps 1e-05", "vision quick_gelu, eps 1e-06"}},
		{"an open_clip config beside", func(*Config) {}, `{"model_cfg": {"embed_dim": 32}}`,
			[]string{"text gelu", "open_clip_config.json, which Load applies to every checkpoint in it: write elsewhere"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			ck, err := ReadCheckpoint(path, "")
			if err != nil {
				t.Fatal(err)
			}
			c.edit(&ck.Config)
			dir := t.TempDir()
			if c.beside != "" {
				if err := os.WriteFile(filepath.Join(dir, openCLIPConfigName), []byte(c.beside), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			out := filepath.Join(dir, "out.safetensors")
			err = ck.WriteFile(out)
			if err == nil {
				t.Fatal("written, want an error")
			}
			for _, w := range append(c.wants, out) {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not say %q", err, w)
				}
			}
			if _, err := os.Stat(out); err == nil {
				t.Error("the file was written anyway")
			}
		})
	}
}

// TestCheckpointTokenizer: a Hugging Face folder whose tokenizer files hold
// CLIP's own vocabulary converts; one with another vocabulary is refused,
// since the converted file could not carry it.
func TestCheckpointTokenizer(t *testing.T) {
	ts, md := fixtureTensors(t, "hf_vit_tiny/model.safetensors")
	vocabPath, mergesPath := writeHFTokenizerFiles(t)
	raw, err := os.ReadFile(vocabPath)
	if err != nil {
		t.Fatal(err)
	}
	merges, err := os.ReadFile(mergesPath)
	if err != nil {
		t.Fatal(err)
	}
	var vocab map[string]int
	if err := json.Unmarshal(raw, &vocab); err != nil {
		t.Fatal(err)
	}
	vocab["photo</w>"], vocab["cat</w>"] = vocab["cat</w>"], vocab["photo</w>"]
	swapped, err := json.Marshal(vocab)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name, vocab string
		ok          bool
	}{
		{"CLIP's vocabulary", string(raw), true},
		{"another vocabulary", string(swapped), false},
	} {
		extra := hfConfigJSON(t, func(s string) string { return s })
		extra[hfVocabFile], extra[hfMergesFile] = c.vocab, string(merges)
		dir := filepath.Dir(writeModel(t, "model.safetensors", ts, md, extra))
		_, err := ReadCheckpoint(dir, "")
		switch {
		case c.ok && err != nil:
			t.Errorf("%s: %v", c.name, err)
		case !c.ok && (err == nil || !strings.Contains(err.Error(), "is not CLIP's own vocabulary")):
			t.Errorf("%s: error %v, want a refusal", c.name, err)
		}
	}
}

// TestReadCheckpointBadType: only F16, BF16 and F32 are storage types.
func TestReadCheckpointBadType(t *testing.T) {
	_, err := ReadCheckpoint(filepath.Join(referenceDir(t), "models", "vit_tiny.safetensors"), safetensors.F64)
	if err == nil || !strings.Contains(err.Error(), "cannot store weights as F64") {
		t.Errorf("error %v", err)
	}
}
