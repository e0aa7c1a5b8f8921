package clip

import (
	"errors"
	"fmt"
	"io/fs"
	"math"
	"os"
	"path/filepath"

	"github.com/unimos/unimos/tensor"
)

// Model is a CLIP model loaded for inference in float32. Its methods are
// safe for concurrent use; each call has activations of its own, whose
// buffers are recycled from finished calls. Config describes the loaded
// architecture and must not be modified.
type Model struct {
	Config Config

	text       *textEncoder
	vit        *visionTransformer // nil for a ModifiedResNet
	resnet     *modifiedResNet    // nil for a ViT
	logitScale float32            // the stored log of the logit multiplier
	tokenizer  *Tokenizer         // from the checkpoint's folder; nil: DefaultTokenizer

	// Batches are encoded in groups that keep activations bounded: at most
	// maxTokenRows transformer rows (token positions) or maxMapFloats floats
	// in the largest ResNet feature map per group.
	maxTokenRows int
	maxMapFloats int
}

// Default group bounds: 4096 rows of a ViT-L/14 MLP (width 4096) take 64 MiB,
// and 16 Mi floats are 64 MiB (20 images at RN50's widest map, 256×56×56).
const (
	defaultTokenRows = 4096
	defaultMapFloats = 16 << 20
)

// Weight files a directory may hold, in order of preference; the last is the
// index of a Hugging Face sharded checkpoint.
var modelFileNames = []string{"model.safetensors", "open_clip_model.safetensors", "pytorch_model.bin", "open_clip_pytorch_model.bin", shardIndexName}

// Load reads a CLIP model from a weights file, from a directory holding one
// of modelFileNames, or from a name that Resolve finds on this machine
// (ViT-B/16 in ~/.cache/clip, openai/clip-vit-base-patch16 in the Hugging
// Face cache; Resolve's warning about a cached file that is not the one
// OpenAI publishes goes to os.Stderr). A weights file is safetensors, the
// index of a Hugging Face sharded checkpoint (model.safetensors.index.json
// and the shards it names) or, told apart by its content, a PyTorch file:
// an OpenAI TorchScript archive (RN50.pt, ViT-B-16.pt, ...), or a
// torch.save file (zip or legacy layout) holding a state dict or an
// open_clip training checkpoint; see interop.OpenCheckpoint, which rebuilds
// the tensors without running anything from the file.
//
// Parameter names may follow OpenAI's CLIP state dict (shared by open_clip)
// or Hugging Face's CLIPModel, recognised by its tensor names. The
// architecture is inferred from the tensor shapes as OpenAI's build_model
// does (ViT when visual.proj exists, ModifiedResNet when
// visual.attnpool.positional_embedding does; heads = width/64, QuickGELU),
// and values stated beside the weights override the inferred ones:
//
//   - OpenAI naming: the safetensors __metadata__ keys embed_dim,
//     image_resolution, vision_layers (an int, or 4 stage depths),
//     vision_width, vision_patch_size, vision_heads, context_length,
//     vocab_size, transformer_width, transformer_heads, transformer_layers,
//     architecture ("ViT" or "ModifiedResNet") and hidden_act ("quick_gelu"
//     or "gelu"), each a JSON value in a string; and open_clip's
//     open_clip_config.json in the file's directory, whose models use GELU
//     unless it sets quick_gelu.
//   - Hugging Face naming: config.json in the file's directory
//     (projection_dim, and per tower hidden_size, intermediate_size,
//     num_hidden_layers, num_attention_heads, max_position_embeddings,
//     vocab_size, image_size, patch_size, hidden_act, layer_norm_eps).
//
// Weights stored as F16, BF16, F32 or F64 are converted to float32, and
// ResNet BatchNorms are folded into their convolutions.
//
// A missing tensor, a tensor of the wrong shape and a tensor that the
// architecture does not have are errors naming the file and the tensor.
func Load(name string) (*Model, error) {
	return load(name, nil)
}

// load is Load; keep, when not nil, also receives every tensor the model
// reads, under its OpenAI name (ReadCheckpoint records them so).
func load(name string, keep keepFunc) (*Model, error) {
	path, err := Resolve(name, nil)
	if err != nil {
		return nil, err
	}
	file, err := weightsFile(path)
	if err != nil {
		return nil, err
	}
	f, err := openWeights(file)
	if err != nil {
		return nil, err
	}
	defer f.Close()

	dir := filepath.Dir(file)
	if _, err := f.Tensor(hfTokenEmbedding); err == nil {
		m, err := buildModel(newHFSource(f), func(c *Config) error {
			return ifExists(filepath.Join(dir, "config.json"), func(p string) error { return applyHFConfig(c, p) })
		}, keep)
		if err != nil {
			return nil, err
		}
		if m.tokenizer, err = hfTokenizer(dir, m.Config.Text.VocabSize); err != nil {
			return nil, err
		}
		return m, nil
	}
	return buildModel(newFileSource(f), func(c *Config) error {
		if err := applyMetadata(c, f.Metadata(), file); err != nil {
			return err
		}
		return ifExists(filepath.Join(dir, openCLIPConfigName), func(p string) error { return applyOpenCLIPConfig(c, p) })
	}, keep)
}

// weightSource is a checkpoint as Load sees it: shapes for inferring the
// configuration, the weights, and the tensors left over afterwards.
type weightSource interface {
	shapeSource
	tensorReader
	// unused lists the tensors no read asked for, bookkeeping aside.
	unused() []string
}

// buildModel infers the configuration from src's shapes, lets overlay apply the
// values the checkpoint states, reads the model (passing each tensor to keep
// when it is not nil) and rejects tensors the architecture does not use.
func buildModel(src weightSource, overlay func(*Config) error, keep keepFunc) (*Model, error) {
	cfg, err := inferConfig(src)
	if err != nil {
		return nil, err
	}
	if err := overlay(&cfg); err != nil {
		return nil, err
	}
	var r tensorReader = src
	if keep != nil {
		r = keepingReader{src, keep}
	}
	m, err := newModel(cfg, r, src.path())
	if err != nil {
		return nil, err
	}
	if err := unexpectedTensors(src.path(), src.unused()); err != nil {
		return nil, err
	}
	return m, nil
}

// weightsFile returns path, or the model file inside the directory path (for
// a sharded checkpoint, its index).
func weightsFile(path string) (string, error) {
	st, err := os.Stat(path)
	if err != nil {
		return "", fmt.Errorf("clip: %w", err)
	}
	if !st.IsDir() {
		return path, nil
	}
	for _, name := range modelFileNames {
		p := filepath.Join(path, name)
		if _, err := os.Stat(p); err == nil {
			return p, nil
		}
	}
	return "", fmt.Errorf("clip: %s: directory holds none of %v", path, modelFileNames)
}

// ifExists calls apply(path) when the file exists.
func ifExists(path string, apply func(string) error) error {
	if _, err := os.Stat(path); errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	return apply(path)
}

// newModel validates cfg and builds the model from the weights r hands out
// under OpenAI's names; path names the source in errors.
func newModel(cfg Config, r tensorReader, path string) (*Model, error) {
	if err := cfg.validate(path); err != nil {
		return nil, err
	}
	rd := &reader{src: r}
	m := &Model{Config: cfg, maxTokenRows: defaultTokenRows, maxMapFloats: defaultMapFloats}
	m.text = readTextEncoder(rd, cfg.Text, cfg.EmbedDim)
	if cfg.Vision.Architecture == ViT {
		m.vit = readVisionTransformer(rd, cfg.Vision, cfg.EmbedDim)
	} else {
		m.resnet = readModifiedResNet(rd, cfg.Vision, cfg.EmbedDim)
	}
	m.logitScale = rd.floats("logit_scale")[0]
	if rd.err != nil {
		return nil, rd.err
	}
	return m, nil
}

// hfTokenizer reads the Hugging Face tokenizer files vocab.json and
// merges.txt in dir, or returns nil when there are none. Their token ids
// must index the model's vocabSize token embeddings.
func hfTokenizer(dir string, vocabSize int) (*Tokenizer, error) {
	vocab, merges := filepath.Join(dir, hfVocabFile), filepath.Join(dir, hfMergesFile)
	_, vocabErr := os.Stat(vocab)
	_, mergesErr := os.Stat(merges)
	switch {
	case errors.Is(vocabErr, fs.ErrNotExist) && errors.Is(mergesErr, fs.ErrNotExist):
		return nil, nil
	case errors.Is(vocabErr, fs.ErrNotExist) || errors.Is(mergesErr, fs.ErrNotExist):
		return nil, fmt.Errorf("clip: %s holds only one of %s and %s; a Hugging Face tokenizer needs both (remove it to use CLIP's own vocabulary)", dir, hfVocabFile, hfMergesFile)
	}
	tok, err := NewTokenizerFromHF(vocab, merges)
	if err != nil {
		return nil, err
	}
	if id := tok.maxID(); id >= vocabSize {
		return nil, fmt.Errorf("clip: %s has token id %d, but the model has %d token embeddings", vocab, id, vocabSize)
	}
	return tok, nil
}

// Hugging Face tokenizer files, beside config.json.
const (
	hfVocabFile  = "vocab.json"
	hfMergesFile = "merges.txt"
)

// Tokenizer returns the tokenizer that goes with the weights: the Hugging
// Face vocab.json and merges.txt in a Hugging Face checkpoint's folder when
// it has them, CLIP's own BPE vocabulary (DefaultTokenizer) otherwise.
func (m *Model) Tokenizer() (*Tokenizer, error) {
	if m.tokenizer != nil {
		return m.tokenizer, nil
	}
	return DefaultTokenizer()
}

// InputResolution returns the side n of the [3, n, n] images EncodeImages
// takes (the n to pass to Preprocess).
func (m *Model) InputResolution() int { return m.Config.Vision.ImageResolution }

// EmbedDim returns the size of the image and text features.
func (m *Model) EmbedDim() int { return m.Config.EmbedDim }

// ContextLength returns the number of token positions of the text encoder
// (the context length to pass to Tokenizer.Tokenize).
func (m *Model) ContextLength() int { return m.Config.Text.ContextLength }

// LogitScale returns the multiplier of the cosine similarities in the
// model's logits, exp(logit_scale) (100 for the released OpenAI models).
func (m *Model) LogitScale() float32 { return float32(math.Exp(float64(m.logitScale))) }

// EncodeImages returns the image features [len(images), EmbedDim()], not
// normalised, as OpenAI's encode_image. Each image is [3, n, n] with n =
// InputResolution(), channel-major, as Preprocess returns it.
func (m *Model) EncodeImages(images [][]float32) (*tensor.Matrix, error) {
	return m.encodeImages(images, nil)
}

func (m *Model) encodeImages(images [][]float32, probe probe) (*tensor.Matrix, error) {
	n := m.InputResolution()
	for i, img := range images {
		if len(img) != 3*n*n {
			return nil, fmt.Errorf("clip: image %d has %d values, want 3×%d×%d = %d", i, len(img), n, n, 3*n*n)
		}
	}
	encode, group := m.imageEncoder()
	return encodeInGroups(len(images), m.EmbedDim(), group, func(lo, hi int) *tensor.Matrix {
		return encode(images[lo:hi], probe)
	}), nil
}

// imageEncoder returns the vision tower's encode function and how many
// images it encodes at a time.
func (m *Model) imageEncoder() (func([][]float32, probe) *tensor.Matrix, int) {
	if m.vit != nil {
		return m.vit.encode, max(1, m.maxTokenRows/(m.vit.grid*m.vit.grid+1))
	}
	side := m.InputResolution() / 4 // stage 1 keeps the stem's 1/4 resolution
	widest := 4 * m.Config.Vision.Width * side * side
	return m.resnet.encode, max(1, m.maxMapFloats/widest)
}

// EncodeText returns the text features [len(ids), EmbedDim()], not
// normalised, as OpenAI's encode_text: each row is pooled at its largest id,
// the end-of-text token of Tokenizer.Tokenize output. Rows hold 1 to
// ContextLength() ids; a shorter row gives the same result as one padded
// with zeros.
func (m *Model) EncodeText(ids [][]int32) (*tensor.Matrix, error) {
	return m.encodeText(ids, nil)
}

func (m *Model) encodeText(ids [][]int32, probe probe) (*tensor.Matrix, error) {
	if err := m.text.check(ids); err != nil {
		return nil, err
	}
	// Group rows so that each group's packed positions stay within the
	// bound; a single long row still forms a group of its own.
	var groups [][2]int
	rows, lo := 0, 0
	for i, row := range ids {
		n := poolPosition(row) + 1
		if rows+n > m.maxTokenRows && i > lo {
			groups = append(groups, [2]int{lo, i})
			lo, rows = i, 0
		}
		rows += n
	}
	groups = append(groups, [2]int{lo, len(ids)})
	out := tensor.New(len(ids), m.EmbedDim())
	for _, g := range groups {
		if g[1] > g[0] {
			enc := m.text.encode(ids[g[0]:g[1]], probe)
			tensor.Copy(out.Slice(g[0], g[0]+enc.Rows, 0, out.Cols), enc)
		}
	}
	return out, nil
}

// encodeInGroups encodes n inputs group at a time into one [n, dim] matrix.
func encodeInGroups(n, dim, group int, encode func(lo, hi int) *tensor.Matrix) *tensor.Matrix {
	out := tensor.New(n, dim)
	for lo := 0; lo < n; lo += group {
		hi := min(n, lo+group)
		tensor.Copy(out.Slice(lo, hi, 0, out.Cols), encode(lo, hi))
	}
	return out
}

// Logits returns CLIP's logits_per_image [Bi, Bt] for image features
// [Bi, E] and text features [Bt, E]: LogitScale() times the cosine
// similarity of every pair. The inputs are not modified; logits_per_text is
// the transpose. It panics when the feature widths differ.
func (m *Model) Logits(images, texts *tensor.Matrix) *tensor.Matrix {
	img, txt := images.Clone(), texts.Clone()
	tensor.NormalizeRows(img, 0)
	tensor.NormalizeRows(txt, 0)
	out := tensor.New(img.Rows, txt.Rows)
	tensor.Gemm(false, true, m.LogitScale(), img, txt, 0, out)
	return out
}
