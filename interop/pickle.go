package interop

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"slices"
)

// This file is the pickle stack machine: opcodes, the stack, marks and memo,
// and the bounds that keep a crafted pickle from exhausting memory. What the
// values mean to PyTorch (globals, storages, tensors, TorchScript modules)
// is in pickle_torch.go; the walk that names the tensors of the unpickled
// containers is in pickle_walk.go.

// ErrUnsafePickle is wrapped by the error for a pickle that needs more than
// rebuilding tensors: a Python global outside the allow-list, or an opcode
// that instantiates arbitrary classes. Unpickling such data would let the
// file run code of its choosing.
var ErrUnsafePickle = errors.New("arbitrary pickles are refused for safety")

// ErrTooLarge is wrapped by the error for a file that would need far more
// memory than its size justifies: a pickle whose values exceed the memory
// bound, or whose stack, marks, memo or tensor names exceed theirs. Such
// files are crafted, not written by PyTorch.
var ErrTooLarge = errors.New("too large to be a PyTorch file")

// allowedNote ends every ErrUnsafePickle error.
const allowedNote = "only PyTorch tensors, their storages, TorchScript modules and OrderedDict are accepted"

// Pickle opcodes, named as in Python's pickletools. The unpickler knows the
// binary opcodes that torch.save and torch.jit.save (protocol 2, or 4 and 5
// on request) emit for containers of tensors and modules.
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
	opNewObj          = 0x81
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
	opEmptyDict: "EMPTY_DICT", opEmptyTuple: "EMPTY_TUPLE", opProto: "PROTO", opNewObj: "NEWOBJ", opTuple1: "TUPLE1",
	opTuple2: "TUPLE2", opTuple3: "TUPLE3", opNewTrue: "NEWTRUE", opNewFalse: "NEWFALSE", opLong1: "LONG1",
	opShortBinUnicode: "SHORT_BINUNICODE", opBinUnicode8: "BINUNICODE8", opStackGlobal: "STACK_GLOBAL",
	opMemoize: "MEMOIZE", opFrame: "FRAME",
	'i': "INST", 'o': "OBJ", 0x92: "NEWOBJ_EX", 0x82: "EXT1", 0x83: "EXT2", 0x84: "EXT4",
}

// classOpcodes instantiate arbitrary classes, or classes from the copyreg
// extension registry; they are refused as unsafe. (NEWOBJ is accepted for
// TorchScript module classes only; see newObject.)
var classOpcodes = map[byte]bool{'i': true, 'o': true, 0x92: true, 0x82: true, 0x83: true, 0x84: true}

// argWidth is the byte width of the little-endian integer argument of the
// opcodes that take one (for strings, the width of their length).
var argWidth = map[byte]int{
	opBinInt1: 1, opBinInt2: 2, opBinInt: 4,
	opShortBinUnicode: 1, opBinUnicode: 4, opBinUnicode8: 8,
	opBinGet: 1, opLongBinGet: 4, opBinPut: 1, opLongBinPut: 4,
}

// Values on the unpickler's stack are nil (None), bool, int64, float64,
// string, the pointer types below, and the torch values of pickle_torch.go.
// All are comparable, so any can be a dict key.
type (
	pyTuple struct{ items []any }
	pyList  struct{ items []any }
	// pyDict is a dict, an OrderedDict, or the attributes of a TorchScript
	// module object (class set).
	pyDict struct {
		keys, values []any
		index        map[any]int // position of each key in keys
		ordered      bool        // made by collections.OrderedDict
		class        string      // a TorchScript module's class, such as __torch__.clip.model.CLIP
	}
)

// Bounds on what one pickle may build. PyTorch files need a few thousand
// values: a state dict of n tensors pickles about 10n; these bounds are far
// above that and far below what would exhaust memory.
const (
	maxStack = 1 << 20 // values on the stack at once
	maxMarks = 1 << 16 // open MARKs
	maxMemo  = 1 << 20 // memo entries
	maxNames = 1 << 20 // tensor names in the result
)

// The memory bound: the values a pickle builds may take about
// memoryPerInputByte times the size of the file they come from (the tensor
// data aside, which is the file's own), and at least minMemory.
const (
	memoryPerInputByte = 64
	minMemory          = 4 << 20
)

// Approximate bytes that building values takes, charged against the memory
// bound: a stack slot or list item, a dict or memo entry, a new container or
// tensor.
const (
	slotCost   = 16
	entryCost  = 64
	objectCost = 64
)

// budget is the memory a pickle's values may still take.
type budget struct {
	left, limit int64
}

// newBudget returns the budget for a pickle read from a file of inputSize
// bytes.
func newBudget(inputSize int) *budget {
	limit := max(int64(minMemory), memoryPerInputByte*int64(inputSize))
	return &budget{left: limit, limit: limit}
}

// spend takes n bytes from the budget.
func (b *budget) spend(n int) error {
	if int64(n) > b.left {
		return fmt.Errorf("its values need more than %d MB of memory, more than a file of its size can justify: %w",
			b.limit>>20, ErrTooLarge)
	}
	b.left -= int64(n)
	return nil
}

// unpickler is a pickle stack machine restricted to rebuilding tensors and
// TorchScript module trees.
type unpickler struct {
	data   []byte
	pos    int
	stack  []any
	marks  []int // stack heights at each open MARK
	memo   map[uint64]any
	budget *budget

	// storages holds each storage named by a persistent id, by key, so that
	// every reference to one storage agrees on its type and size.
	storages map[string]*storageRef
	// legacy accepts the persistent ids of the pre-1.6 torch.save format.
	legacy bool
}

func newUnpickler(data []byte, b *budget) *unpickler {
	return &unpickler{data: data, memo: map[uint64]any{}, budget: b, storages: map[string]*storageRef{}}
}

// run executes opcodes up to STOP and returns the pickled value; u.pos is
// then just past the STOP, where a following pickle would start.
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
			if errors.Is(err, ErrTooLarge) {
				return nil, fmt.Errorf("pickle: %w", err) // one message, whatever opcode tripped it
			}
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
		if len(u.marks) == maxMarks {
			return fmt.Errorf("more than %d open MARKs: %w", maxMarks, ErrTooLarge)
		}
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
		return u.push(v)
	case opNone:
		return u.push(nil)
	case opNewTrue, opNewFalse:
		return u.push(op == opNewTrue)
	case opBinInt, opBinInt1, opBinInt2:
		return u.pushInt(op)
	case opLong1:
		return u.pushLong1()
	case opBinFloat:
		b, err := u.read(8)
		if err != nil {
			return err
		}
		return u.push(math.Float64frombits(binary.BigEndian.Uint64(b)))
	case opBinUnicode, opShortBinUnicode, opBinUnicode8:
		return u.pushString(op)
	case opEmptyTuple:
		return u.pushNew(&pyTuple{items: []any{}}, 0)
	case opEmptyList:
		return u.pushNew(&pyList{}, 0)
	case opEmptyDict:
		return u.pushNew(newDict(false), 0)
	case opTuple:
		items, err := u.popMark()
		if err != nil {
			return err
		}
		return u.pushNew(&pyTuple{items: items}, len(items))
	case opTuple1, opTuple2, opTuple3:
		items, err := u.popN(int(op-opTuple1) + 1)
		if err != nil {
			return err
		}
		return u.pushNew(&pyTuple{items: items}, len(items))
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
		ref, err := u.persistentLoad(pid)
		if err != nil {
			return err
		}
		return u.push(ref)
	case opReduce:
		items, err := u.popN(2)
		if err != nil {
			return err
		}
		v, err := u.call(items[0], items[1])
		if err != nil {
			return err
		}
		return u.pushNew(v, 0)
	case opNewObj:
		items, err := u.popN(2)
		if err != nil {
			return err
		}
		v, err := newObject(items[0], items[1])
		if err != nil {
			return err
		}
		return u.pushNew(v, 0)
	case opBuild:
		items, err := u.popN(2)
		if err != nil {
			return err
		}
		if err := u.build(items[0], items[1]); err != nil {
			return err
		}
		return u.push(items[0])
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
	if err := u.budget.spend(n); err != nil {
		return "", err
	}
	s := string(u.data[u.pos : u.pos+n])
	u.pos += n + 1
	return s, nil
}

// push puts v on the stack.
func (u *unpickler) push(v any) error {
	if len(u.stack) == maxStack {
		return fmt.Errorf("more than %d values on the stack: %w", maxStack, ErrTooLarge)
	}
	if err := u.budget.spend(slotCost); err != nil {
		return err
	}
	u.stack = append(u.stack, v)
	return nil
}

// pushNew pushes a value just built, holding n items.
func (u *unpickler) pushNew(v any, n int) error {
	if err := u.budget.spend(objectCost + n*slotCost); err != nil {
		return err
	}
	return u.push(v)
}

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
		return u.push(int64(int32(uint32(v))))
	}
	return u.push(int64(v))
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
	return u.push(int64(v))
}

func (u *unpickler) pushString(op byte) error {
	n, err := u.readUint(argWidth[op])
	if err != nil {
		return err
	}
	if n > uint64(len(u.data)-u.pos) {
		return errors.New("truncated argument")
	}
	if err := u.budget.spend(int(n)); err != nil {
		return err
	}
	b, _ := u.read(int(n))
	return u.push(string(b))
}

func (u *unpickler) pushGlobal(module, name string) error {
	v, err := resolveGlobal(module, name)
	if err != nil {
		return err
	}
	return u.push(v)
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
	// A list's backing array may be twice its length.
	if err := u.budget.spend(2 * slotCost * len(items)); err != nil {
		return err
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
	if err := u.budget.spend(entryCost * len(items) / 2); err != nil {
		return err
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
	if _, ok := u.memo[key]; !ok && len(u.memo) == maxMemo {
		return fmt.Errorf("more than %d memo entries: %w", maxMemo, ErrTooLarge)
	}
	if err := u.budget.spend(entryCost); err != nil {
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
	return u.push(v)
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
		if v.class != "" {
			return v.class
		}
		return "dict"
	case pyGlobal:
		return v.String()
	case torchClass:
		return v.String()
	case storageClass:
		return "storage type"
	case *storageRef:
		return "storage"
	case *tensorRef:
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
