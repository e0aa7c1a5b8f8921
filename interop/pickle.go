package interop

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
)

// ErrUnsafePickle is wrapped by the error for a pickle that needs more than
// rebuilding tensors: a Python global outside the allow-list, or an opcode
// that instantiates arbitrary classes. Unpickling such data would let the
// file run code of its choosing.
var ErrUnsafePickle = errors.New("arbitrary pickles are refused for safety")

// allowedNote ends every ErrUnsafePickle error.
const allowedNote = "only PyTorch tensors, their storages and OrderedDict are accepted"

// Pickle opcodes, named as in Python's pickletools. The unpickler knows the
// binary opcodes that torch.save (protocol 2, or 4 and 5 on request) emits
// for containers of tensors.
const (
	opMark            = '('
	opStop            = '.'
	opPop             = '0'
	opPopMark         = '1'
	opDup             = '2'
	opBinFloat        = 'G'
	opBinInt          = 'J'
	opBinInt1         = 'K'
	opBinInt2         = 'M'
	opNone            = 'N'
	opBinPersID       = 'Q'
	opReduce          = 'R'
	opBinUnicode      = 'X'
	opEmptyList       = ']'
	opAppend          = 'a'
	opBuild           = 'b'
	opGlobal          = 'c'
	opAppends         = 'e'
	opBinGet          = 'h'
	opLongBinGet      = 'j'
	opBinPut          = 'q'
	opLongBinPut      = 'r'
	opSetItem         = 's'
	opTuple           = 't'
	opSetItems        = 'u'
	opEmptyDict       = '}'
	opEmptyTuple      = ')'
	opProto           = 0x80
	opTuple1          = 0x85
	opTuple2          = 0x86
	opTuple3          = 0x87
	opNewTrue         = 0x88
	opNewFalse        = 0x89
	opLong1           = 0x8a
	opShortBinUnicode = 0x8c
	opBinUnicode8     = 0x8d
	opStackGlobal     = 0x93
	opMemoize         = 0x94
	opFrame           = 0x95
)

// opNames spells opcodes in error messages.
var opNames = map[byte]string{
	opMark: "MARK", opStop: "STOP", opPop: "POP", opPopMark: "POP_MARK", opDup: "DUP", opBinFloat: "BINFLOAT",
	opBinInt: "BININT", opBinInt1: "BININT1", opBinInt2: "BININT2", opNone: "NONE", opBinPersID: "BINPERSID",
	opReduce: "REDUCE", opBinUnicode: "BINUNICODE", opEmptyList: "EMPTY_LIST", opAppend: "APPEND", opBuild: "BUILD",
	opGlobal: "GLOBAL", opAppends: "APPENDS", opBinGet: "BINGET", opLongBinGet: "LONG_BINGET", opBinPut: "BINPUT",
	opLongBinPut: "LONG_BINPUT", opSetItem: "SETITEM", opTuple: "TUPLE", opSetItems: "SETITEMS",
	opEmptyDict: "EMPTY_DICT", opEmptyTuple: "EMPTY_TUPLE", opProto: "PROTO", opTuple1: "TUPLE1", opTuple2: "TUPLE2",
	opTuple3: "TUPLE3", opNewTrue: "NEWTRUE", opNewFalse: "NEWFALSE", opLong1: "LONG1",
	opShortBinUnicode: "SHORT_BINUNICODE", opBinUnicode8: "BINUNICODE8", opStackGlobal: "STACK_GLOBAL",
	opMemoize: "MEMOIZE", opFrame: "FRAME",
	'i': "INST", 'o': "OBJ", 0x81: "NEWOBJ", 0x92: "NEWOBJ_EX", 0x82: "EXT1", 0x83: "EXT2", 0x84: "EXT4",
}

// classOpcodes instantiate arbitrary classes, or classes from the copyreg
// extension registry; they are refused as unsafe.
var classOpcodes = map[byte]bool{'i': true, 'o': true, 0x81: true, 0x92: true, 0x82: true, 0x83: true, 0x84: true}

// argWidth is the byte width of the little-endian integer argument of the
// opcodes that take one (for strings, the width of their length).
var argWidth = map[byte]int{
	opBinInt1: 1, opBinInt2: 2, opBinInt: 4,
	opShortBinUnicode: 1, opBinUnicode: 4, opBinUnicode8: 8,
	opBinGet: 1, opLongBinGet: 4, opBinPut: 1, opLongBinPut: 4,
}

// Values on the unpickler's stack are nil (None), bool, int64, float64,
// string, the pointer types below, pyGlobal, storageClass and *Array
// (a rebuilt tensor). All are comparable, so any can be a dict key.
type (
	pyTuple struct{ items []any }
	pyList  struct{ items []any }
	pyDict  struct {
		keys, values []any
		index        map[any]int // position of each key in keys
		ordered      bool        // made by collections.OrderedDict
	}
	// pyGlobal is an allow-listed callable.
	pyGlobal struct{ module, name string }
	// storageClass is a torch storage type such as torch.HalfStorage.
	storageClass struct{ dt dtype }
	// storageRef is a storage named by a persistent id: numel elements of
	// type dt in the archive record data/<key>.
	storageRef struct {
		dt    dtype
		key   string
		numel int
	}
)

func (g pyGlobal) String() string { return g.module + "." + g.name }

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

// resolveGlobal returns the value of an allow-listed global.
func resolveGlobal(module, name string) (any, error) {
	if dt, ok := storageClasses[name]; ok && module == "torch" {
		return storageClass{dt}, nil
	}
	g := pyGlobal{module, name}
	switch g {
	case globalRebuildTensor, globalRebuildParameter, globalRebuildParameterWithState, globalOrderedDict:
		return g, nil
	}
	return nil, fmt.Errorf("global %s is not allowed: %w (%s)", g, ErrUnsafePickle, allowedNote)
}

// ParsePickle interprets pkl, the data.pkl record of a PyTorch archive, and
// returns the tensors it holds, named by their path in the pickled
// containers: "fea" for the entry of a dict, "model.weight" for nested
// dicts, "0" for the first item of a list or tuple, and "" for a tensor
// pickled alone. Values other than tensors are skipped. A tensor stored
// under several names is listed under each, as the same *Array; a container
// stored under several names is walked once, under the first.
//
// readStorage returns the bytes of the archive record data/<key>, whose
// elements are in the given byte order.
//
// Only the opcodes and globals needed to rebuild tensors are accepted (see
// ErrUnsafePickle). Tensors may not hold more elements in total than the
// storages they view: that refuses broadcast (stride 0) and overlapping
// views, absent from feature files, and keeps a small storage from being
// expanded into unbounded memory.
func ParsePickle(pkl []byte, readStorage func(key string) ([]byte, error), order binary.ByteOrder) (map[string]*Array, error) {
	arrays, err := parsePickle(pkl, readStorage, order)
	if err != nil {
		return nil, fmt.Errorf("interop: %w", err)
	}
	return arrays, nil
}

func parsePickle(pkl []byte, readStorage func(key string) ([]byte, error), order binary.ByteOrder) (map[string]*Array, error) {
	u := &unpickler{
		data:        pkl,
		memo:        map[uint64]any{},
		readStorage: readStorage,
		order:       order,
		storages:    map[string]*decodedStorage{},
	}
	root, err := u.run()
	if err != nil {
		return nil, err
	}
	arrays := map[string]*Array{}
	w := &arrayCollector{arrays: arrays, seen: map[any]bool{}}
	if err := w.walk(root, nil); err != nil {
		return nil, err
	}
	return arrays, nil
}

// unpickler is a pickle stack machine restricted to rebuilding tensors.
type unpickler struct {
	data  []byte
	pos   int
	stack []any
	marks []int // stack heights at each open MARK
	memo  map[uint64]any

	readStorage func(key string) ([]byte, error)
	order       binary.ByteOrder
	storages    map[string]*decodedStorage // by key
	budget      int                        // elements that tensors may still take from the storages
}

// decodedStorage is a storage's elements as a flat array.
type decodedStorage struct {
	*Array
	// lent is set once a tensor covering the whole storage has taken its
	// elements without a copy; other tensors then get copies, so that no
	// two returned arrays share memory.
	lent bool
}

func (u *unpickler) run() (any, error) {
	for u.pos < len(u.data) {
		at, op := u.pos, u.data[u.pos]
		u.pos++
		if op == opStop {
			if len(u.marks) != 0 || len(u.stack) != 1 {
				return nil, fmt.Errorf("pickle: malformed: %d values and %d marks on the stack at STOP", len(u.stack), len(u.marks))
			}
			return u.stack[0], nil
		}
		if err := u.step(op); err != nil {
			return nil, fmt.Errorf("pickle opcode %s at offset %d: %w", opName(op), at, err)
		}
	}
	return nil, errors.New("pickle: truncated: no STOP opcode")
}

// opName spells an opcode for error messages.
func opName(op byte) string {
	if name, ok := opNames[op]; ok {
		return name
	}
	return fmt.Sprintf("0x%02x", op)
}

// step executes one opcode, whose argument bytes follow at u.pos.
func (u *unpickler) step(op byte) error {
	switch op {
	case opProto:
		b, err := u.read(1)
		if err != nil {
			return err
		}
		if b[0] > 5 {
			return fmt.Errorf("unsupported pickle protocol %d", b[0])
		}
	case opFrame:
		// Frames only help buffering; the whole pickle is in memory.
		_, err := u.read(8)
		return err
	case opMark:
		u.marks = append(u.marks, len(u.stack))
	case opPop:
		_, err := u.pop()
		return err
	case opPopMark:
		_, err := u.popMark()
		return err
	case opDup:
		v, err := u.top()
		if err != nil {
			return err
		}
		u.push(v)
	case opNone:
		u.push(nil)
	case opNewTrue, opNewFalse:
		u.push(op == opNewTrue)
	case opBinInt, opBinInt1, opBinInt2:
		return u.pushInt(op)
	case opLong1:
		return u.pushLong1()
	case opBinFloat:
		b, err := u.read(8)
		if err != nil {
			return err
		}
		u.push(math.Float64frombits(binary.BigEndian.Uint64(b)))
	case opBinUnicode, opShortBinUnicode, opBinUnicode8:
		return u.pushString(op)
	case opEmptyTuple:
		u.push(&pyTuple{items: []any{}})
	case opEmptyList:
		u.push(&pyList{})
	case opEmptyDict:
		u.push(newDict(false))
	case opTuple:
		items, err := u.popMark()
		if err != nil {
			return err
		}
		u.push(&pyTuple{items: items})
	case opTuple1, opTuple2, opTuple3:
		items, err := u.popN(int(op-opTuple1) + 1)
		if err != nil {
			return err
		}
		u.push(&pyTuple{items: items})
	case opAppend, opAppends:
		return u.appendItems(op)
	case opSetItem, opSetItems:
		return u.setItems(op)
	case opBinPut, opLongBinPut, opMemoize:
		return u.put(op)
	case opBinGet, opLongBinGet:
		return u.get(op)
	case opGlobal:
		module, err := u.line()
		if err != nil {
			return err
		}
		name, err := u.line()
		if err != nil {
			return err
		}
		return u.pushGlobal(module, name)
	case opStackGlobal:
		items, err := u.popN(2)
		if err != nil {
			return err
		}
		module, ok1 := items[0].(string)
		name, ok2 := items[1].(string)
		if !ok1 || !ok2 {
			return errors.New("module and name are not strings")
		}
		return u.pushGlobal(module, name)
	case opBinPersID:
		pid, err := u.pop()
		if err != nil {
			return err
		}
		ref, err := persistentStorage(pid)
		if err != nil {
			return err
		}
		u.push(ref)
	case opReduce:
		items, err := u.popN(2)
		if err != nil {
			return err
		}
		v, err := u.call(items[0], items[1])
		if err != nil {
			return err
		}
		u.push(v)
	case opBuild:
		// OrderedDict pickles its instance attributes (a state_dict's
		// _metadata) as BUILD state, which carries no tensors.
		items, err := u.popN(2)
		if err != nil {
			return err
		}
		if d, ok := items[0].(*pyDict); !ok || !d.ordered {
			return fmt.Errorf("setting the state of a %s: %w (%s)", typeName(items[0]), ErrUnsafePickle, allowedNote)
		}
		u.push(items[0])
	default:
		if classOpcodes[op] {
			return fmt.Errorf("%s instantiates arbitrary classes: %w (%s)", opName(op), ErrUnsafePickle, allowedNote)
		}
		return errors.New("unsupported opcode (this reader handles the binary opcodes that torch.save emits)")
	}
	return nil
}

// read consumes the next n argument bytes.
func (u *unpickler) read(n int) ([]byte, error) {
	if n < 0 || n > len(u.data)-u.pos {
		return nil, errors.New("truncated argument")
	}
	b := u.data[u.pos : u.pos+n]
	u.pos += n
	return b, nil
}

// readUint consumes an n-byte little-endian unsigned integer (n = 1, 2, 4, 8).
func (u *unpickler) readUint(n int) (uint64, error) {
	b, err := u.read(n)
	if err != nil {
		return 0, err
	}
	var v uint64
	for i := n - 1; i >= 0; i-- {
		v = v<<8 | uint64(b[i])
	}
	return v, nil
}

// line consumes a newline-terminated text argument.
func (u *unpickler) line() (string, error) {
	n := bytes.IndexByte(u.data[u.pos:], '\n')
	if n < 0 {
		return "", errors.New("truncated argument")
	}
	s := string(u.data[u.pos : u.pos+n])
	u.pos += n + 1
	return s, nil
}

func (u *unpickler) push(v any) { u.stack = append(u.stack, v) }

// base is the lowest stack index above the innermost open MARK.
func (u *unpickler) base() int {
	if len(u.marks) == 0 {
		return 0
	}
	return u.marks[len(u.marks)-1]
}

func (u *unpickler) top() (any, error) {
	if len(u.stack) <= u.base() {
		return nil, errors.New("stack underflow")
	}
	return u.stack[len(u.stack)-1], nil
}

func (u *unpickler) pop() (any, error) {
	v, err := u.top()
	if err == nil {
		u.stack = u.stack[:len(u.stack)-1]
	}
	return v, err
}

// popN removes the top n values, returned oldest first.
func (u *unpickler) popN(n int) ([]any, error) {
	if len(u.stack)-u.base() < n {
		return nil, errors.New("stack underflow")
	}
	items := slices.Clone(u.stack[len(u.stack)-n:])
	u.stack = u.stack[:len(u.stack)-n]
	return items, nil
}

// popMark removes the values above the innermost MARK, and the MARK.
func (u *unpickler) popMark() ([]any, error) {
	if len(u.marks) == 0 {
		return nil, errors.New("no MARK on the stack")
	}
	items, _ := u.popN(len(u.stack) - u.base())
	u.marks = u.marks[:len(u.marks)-1]
	return items, nil
}

func (u *unpickler) pushInt(op byte) error {
	v, err := u.readUint(argWidth[op])
	if err != nil {
		return err
	}
	if op == opBinInt {
		u.push(int64(int32(uint32(v))))
	} else {
		u.push(int64(v))
	}
	return nil
}

// pushLong1 reads a little-endian two's-complement integer of up to 8 bytes.
func (u *unpickler) pushLong1() error {
	n, err := u.readUint(1)
	if err != nil {
		return err
	}
	if n > 8 {
		return fmt.Errorf("integer of %d bytes is too large", n)
	}
	b, err := u.read(int(n))
	if err != nil {
		return err
	}
	var v uint64
	for i := len(b) - 1; i >= 0; i-- {
		v = v<<8 | uint64(b[i])
	}
	if n > 0 {
		unused := 64 - 8*n
		v = uint64(int64(v<<unused) >> unused) // sign-extend
	}
	u.push(int64(v))
	return nil
}

func (u *unpickler) pushString(op byte) error {
	n, err := u.readUint(argWidth[op])
	if err != nil {
		return err
	}
	if n > uint64(len(u.data)-u.pos) {
		return errors.New("truncated argument")
	}
	b, _ := u.read(int(n))
	u.push(string(b))
	return nil
}

func (u *unpickler) pushGlobal(module, name string) error {
	v, err := resolveGlobal(module, name)
	if err != nil {
		return err
	}
	u.push(v)
	return nil
}

func (u *unpickler) appendItems(op byte) error {
	var items []any
	var err error
	if op == opAppend {
		items, err = u.popN(1)
	} else {
		items, err = u.popMark()
	}
	if err != nil {
		return err
	}
	target, err := u.top()
	if err != nil {
		return err
	}
	list, ok := target.(*pyList)
	if !ok {
		return fmt.Errorf("appending to a %s", typeName(target))
	}
	list.items = append(list.items, items...)
	return nil
}

func (u *unpickler) setItems(op byte) error {
	var items []any
	var err error
	if op == opSetItem {
		items, err = u.popN(2)
	} else {
		items, err = u.popMark()
	}
	if err != nil {
		return err
	}
	if len(items)%2 != 0 {
		return errors.New("odd number of keys and values")
	}
	target, err := u.top()
	if err != nil {
		return err
	}
	d, ok := target.(*pyDict)
	if !ok {
		return fmt.Errorf("setting items of a %s", typeName(target))
	}
	for i := 0; i < len(items); i += 2 {
		d.set(items[i], items[i+1])
	}
	return nil
}

func (u *unpickler) put(op byte) error {
	key := uint64(len(u.memo)) // MEMOIZE's implicit key
	if op != opMemoize {
		var err error
		if key, err = u.readUint(argWidth[op]); err != nil {
			return err
		}
	}
	v, err := u.top()
	if err != nil {
		return err
	}
	u.memo[key] = v
	return nil
}

func (u *unpickler) get(op byte) error {
	key, err := u.readUint(argWidth[op])
	if err != nil {
		return err
	}
	v, ok := u.memo[key]
	if !ok {
		return fmt.Errorf("memo entry %d was never stored", key)
	}
	u.push(v)
	return nil
}

// persistentStorage interprets a persistent id as torch.save writes it for
// a storage: ('storage', storage_type, key, location, numel).
func persistentStorage(pid any) (*storageRef, error) {
	t, ok := pid.(*pyTuple)
	if !ok || len(t.items) != 5 || t.items[0] != "storage" {
		return nil, errors.New("persistent id is not a ('storage', type, key, location, numel) tuple")
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
	if err != nil || numel < 0 {
		return nil, errors.New("persistent id has an invalid element count")
	}
	return &storageRef{dt: cls.dt, key: key, numel: numel}, nil
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
		if _, ok := a[0].(*Array); !ok {
			return nil, fmt.Errorf("%s called on a %s, not a tensor", g, typeName(a[0]))
		}
		return a[0], nil
	}
	// _rebuild_tensor_v2(storage, storage_offset, size, stride,
	// requires_grad, backward_hooks[, metadata]).
	if len(a) != 6 && len(a) != 7 {
		return nil, fmt.Errorf("%s called with %d arguments, want 6 or 7", g, len(a))
	}
	return u.rebuildTensor(a[0], a[1], a[2], a[3])
}

// rebuildTensor materialises the strided view of a storage as an Array.
func (u *unpickler) rebuildTensor(storage, offset, size, stride any) (*Array, error) {
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
	s, err := u.storage(ref)
	if err != nil {
		return nil, err
	}
	n, err := checkView(ref.numel, off, shape, strides)
	if err != nil {
		return nil, fmt.Errorf("tensor on storage %s: %w", ref.key, err)
	}
	if n > u.budget {
		return nil, fmt.Errorf("tensor on storage %s: the tensors hold more elements than their storages "+
			"(broadcast or overlapping views are not supported)", ref.key)
	}
	u.budget -= n
	if !s.lent && off == 0 && n == ref.numel && isContiguous(shape, strides) {
		s.lent = true
		return &Array{DType: s.DType, Shape: shape, Float32: s.Float32, Int64: s.Int64}, nil
	}
	return s.view(off, shape, strides), nil
}

// storage returns the decoded storage ref names, reading it on first use.
func (u *unpickler) storage(ref *storageRef) (*decodedStorage, error) {
	if s, ok := u.storages[ref.key]; ok {
		if s.DType != ref.dt.name || s.Shape[0] != ref.numel {
			return nil, fmt.Errorf("storage %s is used both as %d %s and as %d %s",
				ref.key, s.Shape[0], s.DType, ref.numel, ref.dt.name)
		}
		return s, nil
	}
	raw, err := u.readStorage(ref.key)
	if err != nil {
		return nil, fmt.Errorf("storage %s: %w", ref.key, err)
	}
	if ref.numel > len(raw)/ref.dt.size || len(raw) != ref.numel*ref.dt.size {
		return nil, fmt.Errorf("storage %s: %d bytes, but %d elements of %s need %d",
			ref.key, len(raw), ref.numel, ref.dt.name, ref.numel*ref.dt.size)
	}
	s := &decodedStorage{Array: decode(ref.dt, u.order, raw)}
	u.storages[ref.key] = s
	u.budget += ref.numel
	return s, nil
}

func asInt(v any) (int, error) {
	i, ok := v.(int64)
	if !ok {
		return 0, fmt.Errorf("a %s, not an integer", typeName(v))
	}
	if int64(int(i)) != i {
		return 0, fmt.Errorf("integer %d out of range", i)
	}
	return int(i), nil
}

func asInts(v any) ([]int, error) {
	t, ok := v.(*pyTuple)
	if !ok {
		return nil, fmt.Errorf("a %s, not a tuple", typeName(v))
	}
	out := make([]int, len(t.items))
	for k, item := range t.items {
		i, err := asInt(item)
		if err != nil {
			return nil, err
		}
		out[k] = i
	}
	return out, nil
}

// typeName names the Python type of an unpickled value for error messages.
func typeName(v any) string {
	switch v := v.(type) {
	case nil:
		return "None"
	case bool:
		return "bool"
	case int64:
		return "int"
	case float64:
		return "float"
	case string:
		return "str"
	case *pyTuple:
		return "tuple"
	case *pyList:
		return "list"
	case *pyDict:
		return "dict"
	case pyGlobal:
		return v.String()
	case storageClass:
		return "storage type"
	case *storageRef:
		return "storage"
	case *Array:
		return "tensor"
	}
	return fmt.Sprintf("%T", v)
}

func newDict(ordered bool) *pyDict { return &pyDict{index: map[any]int{}, ordered: ordered} }

// set assigns d[k] = v, keeping the key's first position as Python does.
func (d *pyDict) set(k, v any) {
	if i, ok := d.index[k]; ok {
		d.values[i] = v
		return
	}
	d.index[k] = len(d.keys)
	d.keys = append(d.keys, k)
	d.values = append(d.values, v)
}

// Limits on how tensors are named; a pickle can nest containers and reuse
// long strings cheaply, so names are bounded before they are built.
const (
	maxNesting = 64
	maxNameLen = 4096
)

// arrayCollector gathers the tensors of an unpickled value by path.
type arrayCollector struct {
	arrays map[string]*Array
	seen   map[any]bool // containers already walked
}

// walk visits v, reached through the container keys in path.
func (c *arrayCollector) walk(v any, path []string) error {
	var keys, values []any
	switch v := v.(type) {
	case *Array:
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
		case *Array, *pyDict, *pyList, *pyTuple:
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

func (c *arrayCollector) add(a *Array, path []string) error {
	n := len(path)
	for _, p := range path {
		n += len(p)
	}
	if n > maxNameLen {
		return fmt.Errorf("tensor name of %d bytes is longer than %d", n, maxNameLen)
	}
	name := strings.Join(path, ".")
	if c.arrays[name] != nil && c.arrays[name] != a {
		return fmt.Errorf("two tensors are named %q", name)
	}
	c.arrays[name] = a
	return nil
}
