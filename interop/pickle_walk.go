package interop

import (
	"encoding/binary"
	"fmt"
	"math"
	"strconv"
	"strings"
)

// This file walks unpickled containers (dicts, lists, tuples, TorchScript
// module objects) to name the tensors they hold, and turns the named
// tensors of a pickle into Arrays.

// Limits on how tensors are named; a pickle can nest containers and reuse
// long strings cheaply, so names are bounded before they are built.
const (
	maxNesting = 64
	maxNameLen = 4096
)

// namedTensor is a tensor found in an unpickled value, under its path.
type namedTensor struct {
	name   string
	tensor *tensorRef
}

// collectTensors returns the tensors of v, named by their path in the
// containers: "fea" for the entry of a dict or the attribute of a module,
// "model.weight" for nested ones, "0" for the first item of a list or tuple,
// and "" for a tensor pickled alone, in the order the pickle holds them.
// Values other than tensors are skipped. A tensor stored under several
// names is listed under each; a container stored under several names is
// walked once, under the first. The names' bytes are taken from b.
func collectTensors(v any, b *budget) ([]namedTensor, error) {
	c := &tensorCollector{seen: map[any]bool{}, byName: map[string]*tensorRef{}, budget: b}
	if err := c.walk(v, nil); err != nil {
		return nil, err
	}
	return c.found, nil
}

// tensorCollector gathers the tensors of an unpickled value by path.
type tensorCollector struct {
	found  []namedTensor
	byName map[string]*tensorRef
	seen   map[any]bool // containers already walked
	budget *budget
}

// walk visits v, reached through the container keys in path.
func (c *tensorCollector) walk(v any, path []string) error {
	var keys, values []any
	switch v := v.(type) {
	case *tensorRef:
		return c.add(v, path)
	case *pyDict:
		keys, values = v.keys, v.values
	case *pyList:
		values = v.items
	case *pyTuple:
		values = v.items
	default:
		return nil
	}
	// A container shared by several paths is listed under the first; a
	// pickle can share containers to describe exponentially many paths.
	if c.seen[v] {
		return nil
	}
	c.seen[v] = true
	if len(path) == maxNesting {
		return fmt.Errorf("containers nested more than %d deep", maxNesting)
	}
	for i, child := range values {
		switch child.(type) {
		case *tensorRef, *pyDict, *pyList, *pyTuple:
		default:
			continue // a scalar: holds no tensors
		}
		key := strconv.Itoa(i)
		if keys != nil {
			switch k := keys[i].(type) {
			case string:
				key = k
			case int64:
				key = strconv.FormatInt(k, 10)
			default:
				return fmt.Errorf("tensors under a dict key of type %s are not supported", typeName(k))
			}
		}
		if err := c.walk(child, append(path, key)); err != nil {
			return err
		}
	}
	return nil
}

func (c *tensorCollector) add(t *tensorRef, path []string) error {
	n := len(path)
	for _, p := range path {
		n += len(p)
	}
	if n > maxNameLen {
		return fmt.Errorf("tensor name of %d bytes is longer than %d", n, maxNameLen)
	}
	name := strings.Join(path, ".")
	if prev, ok := c.byName[name]; ok {
		if prev != t {
			return fmt.Errorf("two tensors are named %q", name)
		}
		return nil
	}
	if len(c.found) == maxNames {
		return fmt.Errorf("more than %d tensor names: %w", maxNames, ErrTooLarge)
	}
	if err := c.budget.spend(n + entryCost); err != nil {
		return err
	}
	c.byName[name] = t
	c.found = append(c.found, namedTensor{name, t})
	return nil
}

// ParsePickle interprets pkl, the data.pkl record of a PyTorch archive, and
// returns the tensors it holds, named as collectTensors describes. A tensor
// stored under several names is listed under each, as the same *Array.
//
// readStorage returns the bytes of the archive record data/<key>, whose
// elements are in the given byte order.
//
// Only the opcodes and globals needed to rebuild tensors are accepted (see
// ErrUnsafePickle), and the values the pickle builds are bounded (see
// ErrTooLarge). Tensors may not hold more elements in total than the
// storages they view: that refuses broadcast (stride 0) and overlapping
// views, absent from feature files, and keeps a small storage from being
// expanded into unbounded memory.
func ParsePickle(pkl []byte, readStorage func(key string) ([]byte, error), order binary.ByteOrder) (map[string]*Array, error) {
	arrays, err := parsePickle(pkl, len(pkl), readStorage, order)
	if err != nil {
		return nil, fmt.Errorf("interop: %w", err)
	}
	return arrays, nil
}

// parsePickle is ParsePickle for a pickle from a file of inputSize bytes,
// which sets the memory bound.
func parsePickle(pkl []byte, inputSize int, readStorage func(key string) ([]byte, error), order binary.ByteOrder) (map[string]*Array, error) {
	b := newBudget(inputSize)
	root, err := newUnpickler(pkl, b).run()
	if err != nil {
		return nil, err
	}
	found, err := collectTensors(root, b)
	if err != nil {
		return nil, err
	}
	find := func(s *storageRef) (storageRecord, error) {
		raw, err := readStorage(s.key)
		if err != nil {
			return storageRecord{}, fmt.Errorf("storage %s: %w", s.key, err)
		}
		if err := s.checkLen(uint64(len(raw))); err != nil {
			return storageRecord{}, err
		}
		return storageRecord{bytes: raw}, nil
	}
	return toArrays(&torchFile{root: root, budget: b, order: order, find: find}, found)
}

// toArrays converts the named tensors of f, once every storage they view
// has been verified.
func toArrays(f *torchFile, found []namedTensor) (map[string]*Array, error) {
	verified := map[*storageRef]bool{}
	for _, t := range found {
		if s := t.tensor.storage; !verified[s] {
			if err := f.verify(s); err != nil {
				return nil, err
			}
			verified[s] = true
		}
	}
	m := newArrayMaker(f)
	byName := make(map[string]*Array, len(found))
	for _, t := range found {
		a, err := m.array(t.tensor)
		if err != nil {
			return nil, err
		}
		byName[t.name] = a
	}
	return byName, nil
}

// arrayMaker converts the tensors of a file into Arrays. Each tensor is
// read from only the bytes of its storage that it views and converted
// straight into its Array: storages are never decoded whole, so a tensor
// costs the memory of its own elements, however large its storage. A
// tensor named several times is converted once.
type arrayMaker struct {
	file   *torchFile
	arrays map[*tensorRef]*Array
	seen   map[*storageRef]bool // storages whose elements left counts
	left   int                  // elements that tensors may still take from them
}

func newArrayMaker(f *torchFile) *arrayMaker {
	return &arrayMaker{file: f, arrays: map[*tensorRef]*Array{}, seen: map[*storageRef]bool{}}
}

// array returns t as an Array. Tensors may not hold more elements in total
// than the storages they view: that refuses broadcast (stride 0) and
// overlapping views, absent from feature files, which would expand a
// small storage into unbounded memory.
func (m *arrayMaker) array(t *tensorRef) (*Array, error) {
	if a := m.arrays[t]; a != nil {
		return a, nil
	}
	s := t.storage
	if !m.seen[s] {
		m.seen[s] = true
		m.left += min(s.numel, math.MaxInt-m.left)
	}
	if t.numel > m.left {
		return nil, fmt.Errorf("tensor on storage %s: the tensors hold more elements than their storages "+
			"(broadcast or overlapping views are not supported)", s.key)
	}
	m.left -= t.numel
	raw, err := m.file.span(t)
	if err != nil {
		return nil, err
	}
	if !t.contiguous() {
		raw = gatherBytes(raw, s.dt.size, 0, t.shape, t.strides)
	}
	a := decode(s.dt, m.file.order, raw)
	a.Shape = t.shape
	m.arrays[t] = a
	return a, nil
}
