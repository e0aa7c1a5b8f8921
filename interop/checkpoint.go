package interop

import (
	"encoding/binary"
	"fmt"
	"strings"

	"github.com/unimos/unimos/internal/mmapfile"
	"github.com/unimos/unimos/safetensors"
)

// Checkpoint is a PyTorch file opened for its model weights: a TorchScript
// archive (torch.jit.save, as OpenAI's CLIP releases are), or a file written
// by torch.save in the zip layout (PyTorch 1.6 on) or the legacy one,
// holding a state dict or a training checkpoint with one. Its tensors are
// safetensors.Tensor values whose Data, little-endian and row-major, is a
// slice of the memory-mapped file where the file stores it that way, and a
// copy otherwise (a strided view, big-endian data, a compressed record).
// Nothing in the file is executed: see ErrUnsafePickle.
type Checkpoint struct {
	path    string
	names   []string
	tensors map[string]*safetensors.Tensor
	release func() error
}

// stateDictKey is the entry of a training checkpoint holding the weights,
// as open_clip writes it: {"epoch", "name", "state_dict", "optimizer"}.
const stateDictKey = "state_dict"

// dataParallelPrefix starts every weight's name in a state dict saved from
// a model wrapped in DataParallel or DistributedDataParallel.
const dataParallelPrefix = "module."

// OpenCheckpoint reads the weights of the PyTorch file at path. They are
// named by their path in the pickled containers, as ParsePickle describes:
// a state dict's own keys; a TorchScript module's attribute path
// ("visual.conv1.weight"), which is its state dict's name. When the file is
// a dict with a "state_dict" dict in it, only that entry is read (the
// epoch, the optimizer and the rest of a training checkpoint are not
// weights), and when every name starts with "module." that prefix is
// removed.
//
// Truncated or damaged files, storages shorter than their tensors, and
// pickles beyond the bounds of ErrTooLarge are errors naming the file; so
// is every Python global outside the allow-list (ErrUnsafePickle). Close
// releases the mapping.
func OpenCheckpoint(path string) (*Checkpoint, error) {
	data, release, err := mmapfile.Open(path, "a PyTorch checkpoint")
	if err != nil {
		return nil, fmt.Errorf("interop: %w", err)
	}
	c, err := parseCheckpoint(data)
	if err != nil {
		release()
		return nil, fmt.Errorf("interop: %s: %w", path, err)
	}
	c.path, c.release = path, release
	return c, nil
}

// parseCheckpoint reads the weights of a PyTorch file held in data, which
// the tensors alias.
func parseCheckpoint(data []byte) (*Checkpoint, error) {
	f, err := openTorch(data)
	if err != nil {
		return nil, err
	}
	root := f.root
	if d, ok := root.(*pyDict); ok && d.class == "" {
		if i, ok := d.index[stateDictKey]; ok {
			if sd, ok := d.values[i].(*pyDict); ok {
				root = sd
			}
		}
	}
	found, err := f.tensors(root)
	if err != nil {
		return nil, err
	}
	strip := len(found) > 0
	for _, t := range found {
		strip = strip && strings.HasPrefix(t.name, dataParallelPrefix)
	}
	m := &tensorMaker{file: f, room: len(data)}
	c := &Checkpoint{tensors: make(map[string]*safetensors.Tensor, len(found))}
	for _, t := range found {
		name := t.name
		if strip {
			name = strings.TrimPrefix(name, dataParallelPrefix)
		}
		st, err := m.tensor(name, t.tensor)
		if err != nil {
			return nil, fmt.Errorf("%s: tensor %q: %w", f.pickle, t.name, err)
		}
		c.names = append(c.names, name)
		c.tensors[name] = st
	}
	return c, nil
}

// tensorMaker turns tensor references into safetensors tensors.
type tensorMaker struct {
	file *torchFile
	// room is the number of bytes that copies may still take, starting at
	// the file's size. It keeps broadcast or overlapping views of a storage
	// from being expanded into unbounded memory.
	room int
}

// tensor returns t's elements as a safetensors tensor named name.
func (m *tensorMaker) tensor(name string, t *tensorRef) (*safetensors.Tensor, error) {
	size := t.storage.dt.size
	little := m.file.order == binary.LittleEndian
	asStored := t.contiguous() && little // the stored bytes are the tensor's data as they are
	if !asStored {
		if t.numel > m.room/size {
			return nil, fmt.Errorf("copying its strided view of storage %s would take the checkpoint's copies to "+
				"more than the file's size (broadcast or overlapping views are not supported)", t.storage.key)
		}
		m.room -= t.numel * size
	}
	data, err := m.file.span(t)
	if err != nil {
		return nil, err
	}
	if !asStored {
		data = gatherBytes(data, size, 0, t.shape, t.strides)
		if !little {
			swapBytes(data, size)
		}
	}
	return &safetensors.Tensor{Name: name, DType: t.storage.dt.st, Shape: t.shape, Data: data}, nil
}

// swapBytes reverses the bytes of each size-byte element of b in place.
func swapBytes(b []byte, size int) {
	for i := 0; i+size <= len(b); i += size {
		e := b[i : i+size]
		for j, k := 0, size-1; j < k; j, k = j+1, k-1 {
			e[j], e[k] = e[k], e[j]
		}
	}
}

// Path returns the path the checkpoint was opened from.
func (c *Checkpoint) Path() string { return c.path }

// Names returns the tensor names in the order the file holds them.
func (c *Checkpoint) Names() []string { return append([]string(nil), c.names...) }

// Tensor returns the named tensor, valid until Close.
func (c *Checkpoint) Tensor(name string) (*safetensors.Tensor, error) {
	if t, ok := c.tensors[name]; ok {
		return t, nil
	}
	if c.tensors == nil {
		return nil, fmt.Errorf("interop: %s: checkpoint is closed", c.path)
	}
	return nil, fmt.Errorf("interop: %s: no tensor %q (has: %s)", c.path, name, someNames(c.names))
}

// Close releases the file's memory mapping; tensors obtained from the
// checkpoint must not be used afterwards. Close is idempotent.
func (c *Checkpoint) Close() error {
	release := c.release
	c.release, c.tensors = nil, nil
	if release == nil {
		return nil
	}
	if err := release(); err != nil {
		return fmt.Errorf("interop: %s: unmap: %w", c.path, err)
	}
	return nil
}
