package clip

import (
	"fmt"
	"io"
	"os"

	"github.com/unimos/unimos/interop"
	"github.com/unimos/unimos/safetensors"
)

// tensorFile is an opened weights file as the weight sources read it: a
// safetensors file, or a PyTorch checkpoint whose tensors interop rebuilt
// without running anything from it.
type tensorFile interface {
	Path() string
	// Names lists the tensors in file order.
	Names() []string
	Tensor(name string) (*safetensors.Tensor, error)
	// Metadata is the safetensors header's __metadata__ (nil for PyTorch
	// files, which have none).
	Metadata() map[string]string
	Close() error
}

// checkpointFile is a PyTorch checkpoint as a tensorFile.
type checkpointFile struct{ *interop.Checkpoint }

func (checkpointFile) Metadata() map[string]string { return nil }

// openWeights opens a weights file by its content, whatever its name: a zip
// archive (torch.save from PyTorch 1.6 on, torch.jit.save) or a legacy
// torch.save file, which starts with a pickle's PROTO opcode, is read as a
// PyTorch checkpoint; anything else as safetensors.
func openWeights(path string) (tensorFile, error) {
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
