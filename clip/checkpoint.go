package clip

import (
	"fmt"
	"io"
	"os"
	"strings"

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
// PROTO opcode, is read as a PyTorch checkpoint; anything else as
// safetensors.
func openWeights(path string) (tensorFile, error) {
	if strings.HasSuffix(path, ".safetensors.index.json") {
		return openSharded(path)
	}
	torch, err := isPyTorchFile(path)
	if err != nil {
		return nil, fmt.Errorf("clip: %w", err)
	}
	if torch {
		c, err := interop.OpenCheckpoint(path)
		if err != nil {
			return nil, fmt.Errorf("clip: %w", err)
		}
		return checkpointFile{c}, nil
	}
	f, err := safetensors.Open(path)
	if err != nil {
		return nil, fmt.Errorf("clip: %w", err)
	}
	return f, nil
}

// isPyTorchFile reports whether the file at path starts as PyTorch files do.
func isPyTorchFile(path string) (bool, error) {
	fd, err := os.Open(path)
	if err != nil {
		return false, err
	}
	defer fd.Close()
	head := make([]byte, interop.PyTorchHeadLen)
	n, err := io.ReadFull(fd, head)
	if err != nil && err != io.ErrUnexpectedEOF && err != io.EOF {
		return false, err
	}
	return interop.IsPyTorch(head[:n]), nil
}
