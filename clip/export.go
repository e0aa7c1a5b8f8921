package clip

import (
	"encoding/json"
	"fmt"
	"maps"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"

	"github.com/unimos/unimos/safetensors"
)

// Checkpoint is a CLIP model's weights under OpenAI's names, the tensors that
// Load reads whatever the naming and format of the file they came from, with
// the configuration to state beside them: what "unimos convert" writes as one
// safetensors file.
type Checkpoint struct {
	Config Config
	// Tensors are the weights in the order the model reads them, each
	// stored as DType.
	Tensors []*safetensors.Tensor
	DType   safetensors.DType
}

// ReadCheckpoint reads the checkpoint name (anything Load takes) and returns
// its weights stored as dtype: F16, BF16 or F32, or "" for the narrowest of
// these that holds every weight exactly (the storage type of an F16 or BF16
// checkpoint; F32 otherwise). Tensors that only bookkeeping uses (BatchNorm
// step counters, position ids) are left out, as Load leaves them unused.
//
// The checkpoint is loaded in full on the way, so everything Load checks is
// checked; a Hugging Face tokenizer beside the weights must be CLIP's own
// vocabulary, which an OpenAI-naming file implies.
func ReadCheckpoint(name string, dtype safetensors.DType) (*Checkpoint, error) {
	switch dtype {
	case "", safetensors.F16, safetensors.BF16, safetensors.F32:
	default:
		return nil, fmt.Errorf("clip: cannot store weights as %s (want F16, BF16 or F32)", dtype)
	}
	rec := &tensorRecorder{dtype: dtype}
	m, err := load(name, rec.keep)
	if err != nil {
		return nil, err
	}
	if err := checkDefaultVocabulary(name, m.tokenizer); err != nil {
		return nil, err
	}
	tensors, stored, err := rec.result()
	if err != nil {
		return nil, fmt.Errorf("clip: %s: %w", name, err)
	}
	return &Checkpoint{Config: m.Config, Tensors: tensors, DType: stored}, nil
}

// checkDefaultVocabulary returns an error when tok, the tokenizer found
// beside a checkpoint, is not CLIP's own: a file in OpenAI naming has no
// room for another, and silently dropping it would change every text
// feature.
func checkDefaultVocabulary(name string, tok *Tokenizer) error {
	if tok == nil {
		return nil
	}
	def, err := DefaultTokenizer()
	if err != nil {
		return err
	}
	if maps.Equal(tok.encoder, def.encoder) && maps.Equal(tok.merges, def.merges) {
		return nil
	}
	return fmt.Errorf("clip: %s: its tokenizer (%s, %s) is not CLIP's own vocabulary, and a file in OpenAI naming cannot carry another; use the checkpoint as it is", name, hfVocabFile, hfMergesFile)
}

// Metadata returns the safetensors "__metadata__" that states the
// configuration in the keys Load reads (each a JSON value in a string, as
// OpenAI-naming safetensors files carry them).
func (c *Checkpoint) Metadata() map[string]string {
	cfg := c.Config
	v, t := cfg.Vision, cfg.Text
	md := map[string]string{
		"format":             "pt", // what safetensors' PyTorch loaders expect
		"naming":             "openai-clip",
		"architecture":       jsonString(string(v.Architecture)),
		"embed_dim":          strconv.Itoa(cfg.EmbedDim),
		"image_resolution":   strconv.Itoa(v.ImageResolution),
		"vision_width":       strconv.Itoa(v.Width),
		"vision_heads":       strconv.Itoa(v.Heads),
		"context_length":     strconv.Itoa(t.ContextLength),
		"vocab_size":         strconv.Itoa(t.VocabSize),
		"transformer_width":  strconv.Itoa(t.Width),
		"transformer_heads":  strconv.Itoa(t.Heads),
		"transformer_layers": strconv.Itoa(t.Layers),
	}
	if v.Architecture == ModifiedResNet {
		layers, _ := json.Marshal(v.ResNetLayers[:])
		md["vision_layers"] = string(layers)
		md["vision_patch_size"] = "null"
	} else {
		md["vision_layers"] = strconv.Itoa(v.Layers)
		md["vision_patch_size"] = strconv.Itoa(v.PatchSize)
	}
	// One key states the activation of both towers; towers that differ
	// cannot be stated, which WriteFile's check reports.
	if v.Activation == t.Activation {
		md["hidden_act"] = jsonString(string(v.Activation))
	}
	return md
}

// jsonString returns s as a JSON string literal.
func jsonString(s string) string {
	b, _ := json.Marshal(s) // cannot fail for a string
	return string(b)
}

// WriteFile writes the checkpoint to path as one safetensors file, through a
// temporary file renamed into place. It first checks that Load will read
// the configuration back from the tensor shapes and the metadata (and from
// an open_clip_config.json that lies in path's folder, which Load applies
// too), and refuses a configuration that the metadata cannot state.
func (c *Checkpoint) WriteFile(path string) error {
	md := c.Metadata()
	src := shapesOf(path, c.Tensors)
	got, err := inferConfig(src)
	if err == nil {
		err = applyMetadata(&got, md, path)
	}
	if err == nil {
		err = ifExists(filepath.Join(filepath.Dir(path), openCLIPConfigName), func(p string) error { return applyOpenCLIPConfig(&got, p) })
	}
	if err != nil {
		return err
	}
	if got != c.Config {
		return fmt.Errorf("clip: %s: a safetensors file in OpenAI naming cannot state this model's configuration: it would be read as %v (%s), not %v (%s)%s",
			path, got, activations(got), c.Config, activations(c.Config), openCLIPNote(path))
	}
	if err := safetensors.WriteFile(path, c.Tensors, md); err != nil {
		return fmt.Errorf("clip: %w", err)
	}
	return nil
}

// activations names a configuration's activations and LayerNorm epsilons,
// which Config.String leaves out.
func activations(c Config) string {
	return fmt.Sprintf("vision %s, eps %g; text %s, eps %g", c.Vision.Activation, c.Vision.LayerNormEps, c.Text.Activation, c.Text.LayerNormEps)
}

// openCLIPNote points at the open_clip_config.json in path's folder, if any,
// since Load would apply it to the file written there.
func openCLIPNote(path string) string {
	p := filepath.Join(filepath.Dir(path), openCLIPConfigName)
	if _, err := os.Stat(p); err != nil {
		return ""
	}
	return fmt.Sprintf("; the folder holds %s, which Load applies to every checkpoint in it: write elsewhere", p)
}

// keepFunc receives a tensor as the model reads it: its OpenAI name, its
// shape and its values (which the model may modify afterwards).
type keepFunc func(name string, shape []int, values []float32) error

// keepingReader passes every tensor read through it to keep.
type keepingReader struct {
	tensorReader
	keep keepFunc
}

func (r keepingReader) read(name string, want []int) ([]float32, error) {
	v, err := r.tensorReader.read(name, want)
	if err != nil {
		return nil, err
	}
	if err := r.keep(name, want, v); err != nil {
		return nil, err
	}
	return v, nil
}

// tensorRecorder keeps the tensors a model reads, stored as dtype at once, or,
// when dtype is "", each in the narrowest type that holds it exactly, so
// that the copies take no more memory than the checkpoint's own storage.
type tensorRecorder struct {
	dtype   safetensors.DType
	tensors []*safetensors.Tensor
	// exact counts, per storage type, the tensors that it holds exactly.
	exact map[safetensors.DType]int
}

// halfTypes are the storage types narrower than F32, narrowest-first
// preference for an exact copy.
var halfTypes = []safetensors.DType{safetensors.F16, safetensors.BF16}

func (r *tensorRecorder) keep(name string, shape []int, values []float32) error {
	dtype := r.dtype
	if dtype == "" {
		if r.exact == nil {
			r.exact = map[safetensors.DType]int{}
		}
		dtype = safetensors.F32
		for _, d := range halfTypes {
			if holdsExactly(d, values) {
				r.exact[d]++
				if dtype == safetensors.F32 {
					dtype = d
				}
			}
		}
	}
	t, err := safetensors.FromFloat32(name, dtype, slices.Clone(shape), values)
	if err != nil {
		return err
	}
	r.tensors = append(r.tensors, t)
	return nil
}

// result returns the tensors and their common storage type. Without a
// requested type, that is the first of F16 and BF16 that holds every tensor
// exactly, else F32; the tensors kept in another type are converted, which
// is exact since the common type holds their values.
func (r *tensorRecorder) result() ([]*safetensors.Tensor, safetensors.DType, error) {
	if r.dtype != "" {
		return r.tensors, r.dtype, nil
	}
	common := safetensors.F32
	for _, d := range halfTypes {
		if r.exact[d] == len(r.tensors) {
			common = d
			break
		}
	}
	for i, t := range r.tensors {
		if t.DType == common {
			continue
		}
		v, err := t.Float32()
		if err != nil {
			return nil, "", err
		}
		if r.tensors[i], err = safetensors.FromFloat32(t.Name, common, t.Shape, v); err != nil {
			return nil, "", err
		}
	}
	return r.tensors, common, nil
}

// holdsExactly reports whether storing values as dtype (F16 or BF16) and
// reading them back gives every value unchanged.
func holdsExactly(dtype safetensors.DType, values []float32) bool {
	for _, v := range values {
		var back float32
		if dtype == safetensors.F16 {
			back = safetensors.F16ToFloat32(safetensors.Float32ToF16(v))
		} else {
			back = safetensors.BF16ToFloat32(safetensors.Float32ToBF16(v))
		}
		if back != v && !(math.IsNaN(float64(v)) && math.IsNaN(float64(back))) {
			return false
		}
	}
	return true
}

// tensorShapes answers inferConfig's questions about tensors held in memory
// under OpenAI's names.
type tensorShapes struct {
	file   string
	shapes map[string][]int
	names  []string
}

// shapesOf describes tensors that are to be written to file.
func shapesOf(file string, tensors []*safetensors.Tensor) *tensorShapes {
	s := &tensorShapes{file: file, shapes: map[string][]int{}}
	for _, t := range tensors {
		s.shapes[t.Name] = t.Shape
		s.names = append(s.names, t.Name)
	}
	return s
}

func (s *tensorShapes) shape(name string) ([]int, bool) {
	sh, ok := s.shapes[name]
	return sh, ok
}

func (s *tensorShapes) blockCount(prefix string) int { return countBlocks(s.names, prefix) }

func (s *tensorShapes) path() string { return s.file }

func (s *tensorShapes) fileNames(name string) string { return strconv.Quote(name) }
