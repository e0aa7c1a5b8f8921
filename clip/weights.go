package clip

import (
	"fmt"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/unimos/unimos/safetensors"
	"github.com/unimos/unimos/tensor"
)

// tensorReader hands out the weights of a model by their OpenAI names,
// converted to float32.
type tensorReader interface {
	// read returns the named tensor after checking that its shape is want.
	read(name string, want []int) ([]float32, error)
}

// bookkeeping reports whether a tensor carries no weights the forward pass
// uses: BatchNorm step counters, Hugging Face position ids, the causal mask
// buffer and the scalar hyper-parameters that OpenAI's TorchScript archives
// keep next to the weights.
func bookkeeping(name string) bool {
	switch name {
	case "attn_mask", "input_resolution", "context_length", "vocab_size":
		return true
	}
	return strings.HasSuffix(name, ".num_batches_tracked") || strings.HasSuffix(name, ".position_ids")
}

// checkedFloat32 converts t to float32 after checking its shape against want.
func checkedFloat32(path string, t *safetensors.Tensor, want []int) ([]float32, error) {
	if !slices.Equal(t.Shape, want) {
		return nil, fmt.Errorf("clip: %s: tensor %q has shape %v, want %v", path, t.Name, t.Shape, want)
	}
	v, err := t.Float32()
	if err != nil {
		return nil, fmt.Errorf("clip: %s: %w", path, err)
	}
	return v, nil
}

// fileSource reads a weights file in OpenAI's naming, which open_clip
// shares.
type fileSource struct {
	f    tensorFile
	used map[string]bool
}

func newFileSource(f tensorFile) *fileSource {
	return &fileSource{f: f, used: map[string]bool{}}
}

func (s *fileSource) path() string { return s.f.Path() }

func (s *fileSource) fileNames(name string) string { return strconv.Quote(name) }

func (s *fileSource) shape(name string) ([]int, bool) {
	t, err := s.f.Tensor(name)
	if err != nil {
		return nil, false
	}
	return t.Shape, true
}

func (s *fileSource) blockCount(prefix string) int {
	return countBlocks(s.f.Names(), prefix)
}

func (s *fileSource) read(name string, want []int) ([]float32, error) {
	t, err := s.f.Tensor(name)
	if err != nil {
		return nil, fmt.Errorf("clip: %s: missing tensor %q", s.path(), name)
	}
	s.used[name] = true
	return checkedFloat32(s.path(), t, want)
}

// unused lists the file's tensors that no read asked for, bookkeeping aside.
func (s *fileSource) unused() []string {
	var names []string
	for _, n := range s.f.Names() {
		if !s.used[n] && !bookkeeping(n) {
			names = append(names, n)
		}
	}
	return names
}

// countBlocks returns the number of distinct integers i for which some name
// starts with prefix + "i.".
func countBlocks(names []string, prefix string) int {
	seen := map[int]bool{}
	for _, n := range names {
		rest, ok := strings.CutPrefix(n, prefix)
		if !ok {
			continue
		}
		idx, _, ok := strings.Cut(rest, ".")
		if i, err := strconv.Atoi(idx); ok && err == nil && i >= 0 {
			seen[i] = true
		}
	}
	return len(seen)
}

// reader loads the tensors of one model and keeps the first error, so that
// the construction code reads as a list of tensors. After an error it hands
// out zeros of the requested shape, which are never used.
type reader struct {
	src tensorReader
	err error
}

// floats returns the named tensor of the given shape, flattened row-major.
func (r *reader) floats(name string, shape ...int) []float32 {
	n := 1
	for _, d := range shape {
		n *= d
	}
	if r.err == nil {
		v, err := r.src.read(name, shape)
		if err == nil {
			return v
		}
		r.err = err
	}
	return make([]float32, n)
}

// matrix returns the named tensor as a [rows, cols] matrix. Extra dims
// (a convolution's [in, kh, kw]) are flattened into the columns and must
// multiply to cols.
func (r *reader) matrix(name string, rows, cols int, shape ...int) *tensor.Matrix {
	if len(shape) == 0 {
		shape = []int{rows, cols}
	}
	return tensor.FromSlice(rows, cols, r.floats(name, shape...))
}

// linear returns the Linear layer prefix.weight [out, in] and prefix.bias.
func (r *reader) linear(prefix string, out, in int) linear {
	return linear{w: r.matrix(prefix+".weight", out, in), b: r.floats(prefix+".bias", out)}
}

// layerNorm returns the LayerNorm prefix.weight and prefix.bias of width n.
func (r *reader) layerNorm(prefix string, n int, eps float32) layerNorm {
	return layerNorm{gamma: r.floats(prefix+".weight", n), beta: r.floats(prefix+".bias", n), eps: eps}
}

// unexpectedTensors turns a list of unread tensor names into an error: such
// tensors belong to a variant (LayerScale, extra norms, another pooling)
// whose forward pass this package would silently get wrong.
func unexpectedTensors(path string, names []string) error {
	if len(names) == 0 {
		return nil
	}
	sort.Strings(names)
	const show = 5
	list := strings.Join(names[:min(len(names), show)], ", ")
	if len(names) > show {
		list += fmt.Sprintf(" and %d more", len(names)-show)
	}
	return fmt.Errorf("clip: %s: tensors that OpenAI's CLIP architecture does not have (an unsupported variant?): %s", path, list)
}
