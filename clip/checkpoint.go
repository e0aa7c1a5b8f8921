package clip

import (
	"fmt"
	"io"
	"strings"

	"github.com/unimos/unimos/internal/regularfile"
	"github.com/unimos/unimos/interop"
	"github.com/unimos/unimos/safetensors"
)

// tensorFile is a checkpoint's tensors under the names it stores them by,
// as the weight sources (fileSource, hfSource) read them: one safetensors
// file, the shards of a Hugging Face sharded checkpoint read as one, or a
// PyTorch checkpoint whose tensors interop rebuilt without running anything
// from it.
type tensorFile interface {
	// Path names the checkpoint in error messages.
	Path() string
	// Names lists every tensor, in file order.
	Names() []string
	// Tensor returns the named tensor, or an error when there is none.
	Tensor(name string) (*safetensors.Tensor, error)
	// Metadata is the safetensors header's __metadata__ (nil for PyTorch
	// files, which have none).
	Metadata() map[string]string
	// Close releases the file or files; tensor data must not be used after.
	Close() error
}

// checkpointFile is a PyTorch checkpoint as a tensorFile.
type checkpointFile struct{ *interop.Checkpoint }

func (checkpointFile) Metadata() map[string]string { return nil }

// openWeights opens a weights file: a shard index (a name ending in
// ".safetensors.index.json") with its shards, or a file told apart by its
// content, whatever its name: a zip archive (torch.save from PyTorch 1.6 on,
// torch.jit.save) or a legacy torch.save file, which starts with a pickle's
// PROTO opcode, is read as a PyTorch checkpoint, and a file starting as
// safetensors files do as safetensors. Any other file is an error saying
// what is read, rather than what a safetensors reader makes of its first
// bytes.
func openWeights(path string) (tensorFile, error) {
	if strings.HasSuffix(path, ".safetensors.index.json") {
		return openSharded(path)
	}
	n := max(interop.PyTorchHeadLen, safetensors.HeadLen)
	head, err := fileHead(path, n)
	if err != nil {
		return nil, fmt.Errorf("clip: %w", err)
	}
	switch {
	case interop.IsPyTorch(head):
		c, err := interop.OpenCheckpoint(path)
		if err != nil {
			return nil, fmt.Errorf("clip: %w", err)
		}
		return checkpointFile{c}, nil
	case safetensors.IsSafetensors(head):
		f, err := safetensors.Open(path)
		if err != nil {
			return nil, fmt.Errorf("clip: %w", err)
		}
		return f, nil
	}
	size := ""
	if len(head) < n { // an empty file, or a download cut short
		size = fmt.Sprintf(" (the file is %d bytes long)", len(head))
	}
	return nil, fmt.Errorf("clip: %s: neither a safetensors file nor a PyTorch checkpoint%s: give CLIP weights as "+
		"safetensors (one file, or Hugging Face shards with their %s), an OpenAI TorchScript archive "+
		"(what clip.load downloads), or a torch.save file (.pt, .pth, .bin: a state dict, an open_clip training "+
		"checkpoint, Hugging Face's pytorch_model.bin)", path, size, shardIndexName)
}

// Caps on the side files read whole, far above what real ones hold
// (transformers' config.json and a shard index: kilobytes; CLIP's
// vocab.json and merges.txt: 1.6 MB and 0.5 MB; refs/main: one hash), so
// that a wrong path given as one of them fails fast instead of filling
// memory.
const (
	maxJSONBytes = 64 << 20
	maxRefBytes  = 4 << 10
)

// fileHead returns the first n bytes of the regular file at path, or all
// of a shorter file (a named pipe would block the read, a device never
// end).
func fileHead(path string, n int) ([]byte, error) {
	fd, _, err := regularfile.Open(path, "a CLIP weights file")
	if err != nil {
		return nil, err
	}
	defer fd.Close()
	head := make([]byte, n)
	got, err := io.ReadFull(fd, head)
	if err != nil && err != io.ErrUnexpectedEOF && err != io.EOF {
		return nil, err
	}
	return head[:got], nil
}
