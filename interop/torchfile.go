package interop

import (
	"archive/zip"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"path"
	"strings"
)

// This file reads the two layouts of a PyTorch file: the zip archive that
// torch.save (PyTorch 1.6 on) and torch.jit.save write, and the legacy
// layout of torch.save before 1.6. Either gives one pickle, unpickled here,
// and storages that its tensors view.

// maxPickleSize bounds the pickle of any PyTorch file. Real ones take about
// 100 bytes per tensor, a few MB for the largest models.
const maxPickleSize = 256 << 20

// torchFile is a PyTorch file with its pickle unpickled.
type torchFile struct {
	root   any     // the unpickled value
	budget *budget // what building more (tensor names) may still take
	order  binary.ByteOrder
	// find returns the record holding a storage's elements, checked to be
	// of the storage's size; record caches it.
	find    func(s *storageRef) (storageRecord, error)
	records map[*storageRef]storageRecord
	// gapRoom is what the bytes that strided views skip over in compressed
	// records may still take; see span.
	gapRoom int
	// pickle names the pickle in error messages ("archive/data.pkl").
	pickle string
}

// storageRecord holds a storage's elements: bytes already in memory (a
// stored zip member or a legacy storage, slices of the file; a caller's
// buffer), or a compressed zip member, inflated when read.
type storageRecord struct {
	bytes   []byte
	archive *zipArchive
	member  *zip.File
}

// record returns the record of storage s.
func (f *torchFile) record(s *storageRef) (storageRecord, error) {
	if r, ok := f.records[s]; ok {
		return r, nil
	}
	r, err := f.find(s)
	if err != nil {
		return storageRecord{}, err
	}
	if f.records == nil {
		f.records = map[*storageRef]storageRecord{}
	}
	f.records[s] = r
	return r, nil
}

// verify checks storage s's record whole before any tensor is converted
// from it: a compressed record is inflated into nothing to check its size
// and CRC-32, so that a damaged one is refused before memory is spent on
// the tensors of another.
func (f *torchFile) verify(s *storageRef) error {
	r, err := f.record(s)
	if err != nil || r.member == nil {
		return err
	}
	_, err = r.archive.section(r.member, 0, 0)
	return err
}

// span returns the bytes of t's storage from its first element to just
// past its last: a slice of the file when the record is in memory, else
// inflated from the compressed record, keeping only those bytes. The bytes
// a strided view skips over then cost memory for nothing; they are charged
// against gapRoom, the file's size, so that a tensor of two elements
// strided across a storage that inflates to gigabytes is refused.
func (f *torchFile) span(t *tensorRef) ([]byte, error) {
	r, err := f.record(t.storage)
	if err != nil {
		return nil, err
	}
	size := t.storage.dt.size
	from, to := t.offset*size, t.end*size
	if t.numel == 0 {
		from, to = 0, 0 // an empty view's offset may lie anywhere
	}
	if r.member == nil {
		return r.bytes[from:to], nil
	}
	if gap := to - from - t.numel*size; gap > 0 {
		if gap > f.gapRoom {
			return nil, fmt.Errorf("storage %s: reading a strided view of its compressed record would inflate %d bytes "+
				"that the view skips over, more than the file's size (torch.save stores records uncompressed)", t.storage.key, gap)
		}
		f.gapRoom -= gap
	}
	return r.archive.section(r.member, uint64(from), uint64(to))
}

// zipMagic starts a zip archive's first local file header.
var zipMagic = []byte("PK\x03\x04")

// PyTorchHeadLen is the number of leading bytes IsPyTorch looks at.
const PyTorchHeadLen = 15

// IsPyTorch reports whether a file starting with head (its first
// PyTorchHeadLen bytes, or all of a shorter file) is laid out as a PyTorch
// file: a zip archive, or the legacy torch.save format. Neither start is
// possible for a safetensors file, whose first 8 bytes would then give an
// impossible header length, or a header not starting with '{'.
func IsPyTorch(head []byte) bool {
	return bytes.HasPrefix(head, zipMagic) || bytes.HasPrefix(head, legacyMagic)
}

// openTorch reads data as a PyTorch file of either layout. The storages it
// hands out alias data.
func openTorch(data []byte) (*torchFile, error) {
	switch {
	case bytes.HasPrefix(data, zipMagic):
		return openTorchZip(data)
	case bytes.HasPrefix(data, legacyMagic):
		return openTorchLegacy(data)
	}
	return nil, errors.New("not a PyTorch file: neither a zip archive (torch.save from PyTorch 1.6 on, torch.jit.save) " +
		"nor the legacy torch.save format")
}

// tensors returns the tensors of the file's pickle by name; see collectTensors.
func (f *torchFile) tensors(root any) ([]namedTensor, error) {
	found, err := collectTensors(root, f.budget)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", f.pickle, err)
	}
	return found, nil
}

// openTorchZip reads the archive layout: every record under one folder,
// <prefix>/data.pkl holding the pickle, <prefix>/data/<key> each storage
// and, from PyTorch 1.10 on, <prefix>/byteorder. TorchScript archives add
// code/, constants/ and constants.pkl, which are not read: the weights are
// all in data.pkl's module tree.
func openTorchZip(data []byte) (*torchFile, error) {
	archive, err := openZip(data)
	if err != nil {
		return nil, err
	}
	records := map[string]*zip.File{}
	var pickles []string
	for _, f := range archive.files {
		records[f.Name] = f
		if dir, file := path.Split(f.Name); file == "data.pkl" && strings.Count(dir, "/") == 1 {
			pickles = append(pickles, f.Name)
		}
	}
	if len(pickles) != 1 {
		return nil, fmt.Errorf("not a PyTorch archive: want one <folder>/data.pkl record, found %d", len(pickles))
	}
	prefix := strings.TrimSuffix(pickles[0], "data.pkl")
	member := func(name string) (*zip.File, error) {
		f := records[prefix+name]
		if f == nil {
			return nil, fmt.Errorf("no record %s%s in the archive", prefix, name)
		}
		return f, nil
	}
	order := binary.ByteOrder(binary.LittleEndian)
	if f := records[prefix+"byteorder"]; f != nil {
		b, err := archive.content(f)
		if err != nil {
			return nil, err
		}
		switch s := strings.TrimSpace(string(b)); s {
		case "little":
		case "big":
			order = binary.BigEndian
		default:
			return nil, fmt.Errorf("record %sbyteorder holds %q, want little or big", prefix, s)
		}
	}
	pf := records[pickles[0]]
	if limit := min(maxPickleSize, memoryPerInputByte*uint64(len(data))); pf.UncompressedSize64 > limit {
		return nil, fmt.Errorf("%s inflates to %d bytes, more than a PyTorch pickle in a %d-byte archive can take: %w",
			pickles[0], pf.UncompressedSize64, len(data), ErrTooLarge)
	}
	pkl, err := archive.content(pf)
	if err != nil {
		return nil, err
	}
	b := newBudget(len(data))
	root, err := newUnpickler(pkl, b).run()
	if err != nil {
		return nil, fmt.Errorf("%s: %w", pickles[0], err)
	}
	find := func(s *storageRef) (storageRecord, error) {
		f, err := member("data/" + s.key)
		if err != nil {
			return storageRecord{}, fmt.Errorf("storage %s: %w", s.key, err)
		}
		r := storageRecord{archive: archive, member: f}
		if f.Method == zip.Store {
			b, err := archive.stored(f)
			if err != nil {
				return storageRecord{}, err
			}
			r = storageRecord{bytes: b}
		}
		if err := s.checkLen(f.UncompressedSize64); err != nil {
			return storageRecord{}, err
		}
		return r, nil
	}
	return &torchFile{root: root, budget: b, order: order, find: find, gapRoom: len(data), pickle: pickles[0]}, nil
}

// legacyMagic is the first pickle of the legacy layout: the integer
// 0x1950a86a20f9469cfc6c as protocol 2 pickles it.
var legacyMagic = []byte("\x80\x02\x8a\x0a\x6c\xfc\x9c\x46\xf9\x20\x6a\xa8\x50\x19.")

// legacyVersion is the second pickle: the format version 1001.
var legacyVersion = []byte("\x80\x02M\xe9\x03.")

// openTorchLegacy reads the legacy layout (torch/serialization.py,
// _legacy_save): five pickles in a row (the magic number, the format
// version, a dict of system facts, the object, and the list of storage
// keys in the order their data follows), then each storage as an 8-byte
// element count and its elements.
func openTorchLegacy(data []byte) (*torchFile, error) {
	rest, ok := bytes.CutPrefix(data[len(legacyMagic):], legacyVersion)
	if !ok {
		return nil, errors.New("legacy torch.save format: unknown format version (want 1001)")
	}
	pos := len(data) - len(rest)
	b := newBudget(len(data))
	// next unpickles the pickle at pos and moves pos past it.
	next := func(what string, u *unpickler) (any, error) {
		v, err := u.run()
		if err != nil {
			return nil, fmt.Errorf("legacy torch.save format: %s: %w", what, err)
		}
		pos += u.pos
		return v, nil
	}
	info, err := next("system information", newUnpickler(data[pos:], b))
	if err != nil {
		return nil, err
	}
	order := binary.ByteOrder(binary.LittleEndian)
	if d, ok := info.(*pyDict); !ok {
		return nil, fmt.Errorf("legacy torch.save format: system information is a %s, not a dict", typeName(info))
	} else if i, ok := d.index["little_endian"]; ok && d.values[i] == false {
		order = binary.BigEndian
	}
	object := newUnpickler(data[pos:], b)
	object.legacy = true
	root, err := next("object", object)
	if err != nil {
		return nil, err
	}
	keyList, err := next("storage keys", newUnpickler(data[pos:], b))
	if err != nil {
		return nil, err
	}
	keys, ok := keyList.(*pyList)
	if !ok {
		return nil, fmt.Errorf("legacy torch.save format: storage keys are a %s, not a list", typeName(keyList))
	}
	// The storages follow in key order; their element sizes come from the
	// object pickle's persistent ids.
	storages := map[string][]byte{}
	for _, k := range keys.items {
		key, ok := k.(string)
		if !ok {
			return nil, fmt.Errorf("legacy torch.save format: a storage key is a %s, not a str", typeName(k))
		}
		s := object.storages[key]
		if s == nil {
			return nil, fmt.Errorf("legacy torch.save format: storage %s is listed but the object names no such storage", key)
		}
		if storages[key] != nil {
			return nil, fmt.Errorf("legacy torch.save format: storage %s is listed twice", key)
		}
		if len(data)-pos < 8 {
			return nil, fmt.Errorf("legacy torch.save format: storage %s: the file ends at its element count (truncated?)", key)
		}
		n := order.Uint64(data[pos:])
		pos += 8
		if n != uint64(s.numel) {
			return nil, fmt.Errorf("legacy torch.save format: storage %s holds %d elements, but its tensors say %d", key, n, s.numel)
		}
		if uint64(s.numel) > uint64(len(data)-pos)/uint64(s.dt.size) {
			return nil, fmt.Errorf("legacy torch.save format: storage %s: %d elements of %s run past the end of the file (truncated?)",
				key, s.numel, s.dt.name)
		}
		size := s.numel * s.dt.size
		storages[key] = data[pos : pos+size : pos+size]
		pos += size
	}
	find := func(s *storageRef) (storageRecord, error) {
		if b, ok := storages[s.key]; ok {
			return storageRecord{bytes: b}, nil
		}
		return storageRecord{}, fmt.Errorf("storage %s: not in the file's list of storages", s.key)
	}
	return &torchFile{root: root, budget: b, order: order, find: find, pickle: "legacy torch.save object"}, nil
}
