package interop

import (
	"errors"
	"fmt"
	"math"
	"strings"
)

// This file gives pickled values their PyTorch meaning: the allow-listed
// globals, storages named by persistent ids, tensors rebuilt as views of
// those storages, and the module objects of TorchScript archives.

type (
	// pyGlobal is an allow-listed callable.
	pyGlobal struct{ module, name string }
	// torchClass is a TorchScript class (module __torch__ or below): NEWOBJ
	// makes an empty object of it, which BUILD fills with attributes.
	torchClass struct{ module, name string }
	// storageClass is a torch storage type such as torch.HalfStorage.
	storageClass struct{ dt dtype }
	// storageRef is a storage named by a persistent id: numel elements of
	// type dt in the record data/<key> (zip archives) or under key (the
	// legacy format).
	storageRef struct {
		dt    dtype
		key   string
		numel int
	}
	// tensorRef is a tensor as _rebuild_tensor_v2 describes it: a strided
	// view of a storage, checked to lie inside it, whose elements lie
	// between storage elements offset and end. Its elements are read only
	// when a caller asks for the tensor.
	tensorRef struct {
		storage *storageRef
		offset  int
		shape   []int
		strides []int
		numel   int
		end     int
	}
)

func (g pyGlobal) String() string   { return g.module + "." + g.name }
func (c torchClass) String() string { return c.module + "." + c.name }

var (
	globalRebuildTensor             = pyGlobal{"torch._utils", "_rebuild_tensor_v2"}
	globalRebuildParameter          = pyGlobal{"torch._utils", "_rebuild_parameter"}
	globalRebuildParameterWithState = pyGlobal{"torch._utils", "_rebuild_parameter_with_state"}
	globalOrderedDict               = pyGlobal{"collections", "OrderedDict"}
)

// storageClasses are the torch storage types allowed in persistent ids.
var storageClasses = map[string]dtype{
	"HalfStorage": dtFloat16, "BFloat16Storage": dtBfloat16, "FloatStorage": dtFloat32, "DoubleStorage": dtFloat64,
	"CharStorage": dtInt8, "ByteStorage": dtUint8, "ShortStorage": dtInt16, "IntStorage": dtInt32, "LongStorage": dtInt64,
}

// torchModule is the module of the classes TorchScript archives define.
const torchModule = "__torch__"

// resolveGlobal returns the value of an allow-listed global.
func resolveGlobal(module, name string) (any, error) {
	if dt, ok := storageClasses[name]; ok && module == "torch" {
		return storageClass{dt}, nil
	}
	if module == torchModule || strings.HasPrefix(module, torchModule+".") {
		return torchClass{module, name}, nil
	}
	g := pyGlobal{module, name}
	switch g {
	case globalRebuildTensor, globalRebuildParameter, globalRebuildParameterWithState, globalOrderedDict:
		return g, nil
	}
	return nil, fmt.Errorf("global %s is not allowed: %w (%s)", g, ErrUnsafePickle, allowedNote)
}

// newObject applies NEWOBJ: TorchScript archives pickle each module as
// cls.__new__(cls) with no arguments, then BUILD with its attributes. The
// object is an empty attribute map; nothing of the class is run.
func newObject(cls, argv any) (any, error) {
	c, ok := cls.(torchClass)
	if !ok {
		return nil, fmt.Errorf("NEWOBJ of a %s: %w (%s)", typeName(cls), ErrUnsafePickle, allowedNote)
	}
	if args, ok := argv.(*pyTuple); !ok || len(args.items) != 0 {
		return nil, fmt.Errorf("NEWOBJ of %s with arguments: %w (%s)", c, ErrUnsafePickle, allowedNote)
	}
	d := newDict(false)
	d.class = c.String()
	return d, nil
}

// build applies BUILD's state to obj. A TorchScript module's state is the
// dict of its attributes, which become its entries. OrderedDict pickles its
// instance attributes (a state_dict's _metadata) as state, which carries no
// tensors and is dropped. Any other BUILD would call a class's __setstate__.
func (u *unpickler) build(obj, state any) error {
	d, ok := obj.(*pyDict)
	switch {
	case ok && d.ordered:
		return nil
	case !ok || d.class == "":
		return fmt.Errorf("setting the state of a %s: %w (%s)", typeName(obj), ErrUnsafePickle, allowedNote)
	}
	attrs, ok := state.(*pyDict)
	if !ok || attrs.class != "" {
		return fmt.Errorf("setting the state of %s from a %s, not a dict of attributes: %w (%s)",
			d.class, typeName(state), ErrUnsafePickle, allowedNote)
	}
	if err := u.budget.spend(entryCost * len(attrs.keys)); err != nil {
		return err
	}
	for i, k := range attrs.keys {
		if _, ok := k.(string); !ok {
			return fmt.Errorf("%s has an attribute named by a %s", d.class, typeName(k))
		}
		d.set(k, attrs.values[i])
	}
	return nil
}

// persistentLoad interprets a persistent id as torch.save writes it for a
// storage: ('storage', storage_type, key, location, numel), with a sixth
// item, view_metadata, in the legacy format, where it is None unless the
// storage is a view of another (a layout PyTorch stopped writing in 0.4).
func (u *unpickler) persistentLoad(pid any) (*storageRef, error) {
	t, ok := pid.(*pyTuple)
	want := 5
	if u.legacy {
		want = 6
	}
	if !ok || len(t.items) != want || t.items[0] != "storage" {
		if u.legacy {
			return nil, errors.New("persistent id is not a ('storage', type, key, location, numel, view) tuple")
		}
		return nil, errors.New("persistent id is not a ('storage', type, key, location, numel) tuple")
	}
	if u.legacy && t.items[5] != nil {
		return nil, errors.New("storage views (written by PyTorch before 0.4) are not supported; " +
			"load and save the file again with a recent PyTorch")
	}
	cls, ok := t.items[1].(storageClass)
	if !ok {
		return nil, fmt.Errorf("persistent id names a %s, not a storage type", typeName(t.items[1]))
	}
	key, ok := t.items[2].(string)
	if !ok {
		return nil, errors.New("persistent id has a key that is not a string")
	}
	numel, err := asInt(t.items[4])
	// The bound keeps the storage's size in bytes an int.
	if err != nil || numel < 0 || numel > math.MaxInt/cls.dt.size {
		return nil, errors.New("persistent id has an invalid element count")
	}
	if s, ok := u.storages[key]; ok {
		if s.dt != cls.dt || s.numel != numel {
			return nil, fmt.Errorf("storage %s is used both as %d %s and as %d %s", key, s.numel, s.dt.name, numel, cls.dt.name)
		}
		return s, nil
	}
	s := &storageRef{dt: cls.dt, key: key, numel: numel}
	u.storages[key] = s
	return s, nil
}

// call applies an allow-listed callable (REDUCE).
func (u *unpickler) call(fn, argv any) (any, error) {
	g, ok := fn.(pyGlobal)
	if !ok {
		return nil, fmt.Errorf("calling a %s: %w (%s)", typeName(fn), ErrUnsafePickle, allowedNote)
	}
	args, ok := argv.(*pyTuple)
	if !ok {
		return nil, fmt.Errorf("%s called with a %s instead of an argument tuple", g, typeName(argv))
	}
	a := args.items
	switch g {
	case globalOrderedDict:
		if len(a) != 0 {
			return nil, fmt.Errorf("%s called with %d arguments, want 0", g, len(a))
		}
		return newDict(true), nil
	case globalRebuildParameter, globalRebuildParameterWithState:
		// (data, requires_grad, backward_hooks[, state]): the data is all
		// that matters here.
		if len(a) < 3 {
			return nil, fmt.Errorf("%s called with %d arguments, want at least 3", g, len(a))
		}
		if _, ok := a[0].(*tensorRef); !ok {
			return nil, fmt.Errorf("%s called on a %s, not a tensor", g, typeName(a[0]))
		}
		return a[0], nil
	}
	// _rebuild_tensor_v2(storage, storage_offset, size, stride,
	// requires_grad, backward_hooks[, metadata]).
	if len(a) != 6 && len(a) != 7 {
		return nil, fmt.Errorf("%s called with %d arguments, want 6 or 7", g, len(a))
	}
	return rebuildTensor(a[0], a[1], a[2], a[3])
}

// rebuildTensor checks the strided view of a storage that a tensor is.
func rebuildTensor(storage, offset, size, stride any) (*tensorRef, error) {
	ref, ok := storage.(*storageRef)
	if !ok {
		return nil, fmt.Errorf("tensor storage is a %s", typeName(storage))
	}
	off, err := asInt(offset)
	if err != nil {
		return nil, fmt.Errorf("tensor storage offset: %w", err)
	}
	shape, err := asInts(size)
	if err != nil {
		return nil, fmt.Errorf("tensor size: %w", err)
	}
	strides, err := asInts(stride)
	if err != nil {
		return nil, fmt.Errorf("tensor stride: %w", err)
	}
	n, end, err := checkView(ref.numel, off, shape, strides)
	if err != nil {
		return nil, fmt.Errorf("tensor on storage %s: %w", ref.key, err)
	}
	return &tensorRef{storage: ref, offset: off, shape: shape, strides: strides, numel: n, end: end}, nil
}

// contiguous reports whether the tensor is its storage's elements from its
// offset on, in row-major order, so that it can be handed out without a copy.
func (t *tensorRef) contiguous() bool { return isContiguous(t.shape, t.strides) }

// checkLen verifies that a record of n bytes holds exactly the storage's
// elements.
func (s *storageRef) checkLen(n uint64) error {
	if n != uint64(s.numel)*uint64(s.dt.size) {
		return fmt.Errorf("storage %s: %d bytes, but %d elements of %s need %d",
			s.key, n, s.numel, s.dt.name, s.numel*s.dt.size)
	}
	return nil
}
