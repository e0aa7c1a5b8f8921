package interop

import (
	"bytes"
	"encoding/binary"
	"os"
	"path/filepath"
	"slices"
	"testing"
)

// fixtureSeed returns a fixture file's bytes, or nil when the fixtures are
// absent: fuzzing then starts from the hand-made seeds only.
func fixtureSeed(name string) []byte {
	dir, err := findFixtures()
	if err != nil {
		return nil
	}
	data, err := os.ReadFile(filepath.Join(dir, name))
	if err != nil {
		return nil
	}
	return data
}

// checkArray fails unless a is internally consistent.
func checkArray(t *testing.T, name string, a *Array) {
	t.Helper()
	n, err := numElements(a.Shape)
	if err != nil {
		t.Fatalf("%s: returned with bad shape %v: %v", name, a.Shape, err)
	}
	if (a.Float32 == nil) == (a.Int64 == nil) {
		t.Fatalf("%s: Float32 and Int64 both set or both nil", name)
	}
	if len(a.Float32)+len(a.Int64) != n {
		t.Fatalf("%s: %d elements for shape %v", name, len(a.Float32)+len(a.Int64), a.Shape)
	}
}

func FuzzNPY(f *testing.F) {
	le, be := binary.LittleEndian, binary.BigEndian
	f.Add(buildNPY(1, npyHeaderFor("<f4", false, "(2, 3)"), encode(le, []float32{1, 2, 3, 4, 5, 6})))
	f.Add(buildNPY(2, npyHeaderFor(">i8", true, "(2, 2)"), encode(be, []int64{1, 2, 3, 4})))
	f.Add(buildNPY(3, npyHeaderFor("<f2", false, "(3,)"), encode(le, []uint16{0x3c00, 1, 0x7c00})))
	f.Add(buildNPY(1, npyHeaderFor("|u1", true, "(2, 1, 2)"), []byte{1, 2, 3, 4}))
	f.Add(buildNPY(1, npyHeaderFor("<f8", false, "()"), encode(le, 1.5)))
	for _, name := range []string{"features_f32.npy", "features_f16.npy", "labels.npy"} {
		if seed := fixtureSeed(name); seed != nil {
			f.Add(seed)
		}
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		var a *Array
		var err error
		used := allocated(func() { a, err = ParseNPY(data) })
		checkBudget(t, "ParseNPY", used, len(data), a)
		if err != nil {
			return
		}
		checkArray(t, "npy", a)
	})
}

// checkBudget fails when a reader allocated more than allocBudget allows
// for its input and output.
func checkBudget(t *testing.T, reader string, used uint64, inputLen int, output ...*Array) {
	t.Helper()
	if budget := allocBudget(inputLen, outputBytes(output...)); used > budget {
		t.Fatalf("%s allocated %d bytes for %d input bytes (output %d bytes), over the budget of %d",
			reader, used, inputLen, outputBytes(output...), budget)
	}
}

// FuzzZip feeds the same bytes to the .npz and .pth readers, which share
// the zip layer.
func FuzzZip(f *testing.F) {
	f.Add(smallBundle(f, false))
	f.Add(smallBundle(f, true))
	f.Add(buildPTH(f, "archive", featureCache(), map[string][]byte{"0": make([]byte, 8), "1": make([]byte, 16)}, "big"))
	for _, name := range []string{"bundle.npz", "bundle_compressed.npz", "reference_cache.pth"} {
		if seed := fixtureSeed(name); seed != nil {
			f.Add(seed)
		}
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		var arrays map[string]*Array
		used := allocated(func() { arrays, _ = ParseNPZ(data) })
		var output []*Array
		for name, a := range arrays {
			checkArray(t, name, a)
			output = append(output, a)
		}
		checkBudget(t, "ParseNPZ", used, len(data), output...)
		if arrays, err := ParsePTH(data); err == nil {
			for name, a := range arrays {
				checkArray(t, name, a)
			}
		}
	})
}

// FuzzFeatures runs the readers of import's inputs, which check each
// array's header against what they want before reading its data, on the
// bytes of a .npz archive and of a .npy file.
func FuzzFeatures(f *testing.F) {
	le := binary.LittleEndian
	f.Add(smallBundle(f, false))
	f.Add(smallBundle(f, true))
	f.Add(smallBundle(f, true, "text_features.npy", "other.npy"))
	f.Add(buildZip(f, zipMember{"features.npy", buildNPY(1, npyHeaderFor("<f2", true, "(2, 2)"), encode(le, []uint16{1, 2, 3, 4})), true}))
	f.Add(buildNPY(1, npyHeaderFor("<f4", false, "(2, 3)"), encode(le, []float32{1, 2, 3, 4, 5, 6})))
	for _, name := range []string{"bundle.npz", "bundle_compressed.npz", "features_f16.npy"} {
		if seed := fixtureSeed(name); seed != nil {
			f.Add(seed)
		}
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		for _, r := range []struct {
			name string
			read func([]byte) ([]*Array, error)
		}{
			{"parseFeatures", readFeaturesNPZ},
			{"parseMatrix", readMatrixNPZ},
			{"readNPY", func(data []byte) ([]*Array, error) {
				a, err := readNPY(bytes.NewReader(data), int64(len(data)), featuresSpec("features"))
				return []*Array{a}, err
			}},
		} {
			var arrays []*Array
			var err error
			used := allocated(func() { arrays, err = r.read(data) })
			checkBudget(t, r.name, used, len(data), arrays...)
			if err != nil {
				continue
			}
			for _, a := range arrays {
				if a != nil {
					checkArray(t, r.name, a)
				}
			}
			if f := arrays[0]; len(f.Shape) != 2 || f.Float32 == nil {
				t.Fatalf("%s returned %s %v, not a float matrix", r.name, f.DType, f.Shape)
			}
			if len(arrays) == 2 && arrays[1] != nil && (arrays[1].Int64 == nil || !slices.Equal(arrays[1].Shape, arrays[0].Shape[:1])) {
				t.Fatalf("%s returned labels %s %v for features %v", r.name, arrays[1].DType, arrays[1].Shape, arrays[0].Shape)
			}
		}
	})
}

// FuzzPickle runs the unpickler on raw bytes; every storage key reads the
// second input.
func FuzzPickle(f *testing.F) {
	f.Add(featureCache(), make([]byte, 8))
	f.Add(newPickle(2).tensor("FloatStorage", "0", 6, 1, []int{2, 2}, []int{1, 2}).done(), make([]byte, 24))
	f.Add(newPickle(2).global("os", "system").str("ls").raw(0x85, 'R').done(), []byte(nil))
	f.Add(newPickle(2).raw(']', 'q', 0, 'h', 0, 'a').done(), []byte(nil))
	if data := fixtureSeed("reference_cache.pth"); data != nil {
		if archive, err := openZip(data); err == nil {
			for _, file := range archive.files {
				if file.Name == "reference_cache/data.pkl" {
					if pkl, err := archive.read(file); err == nil {
						f.Add(pkl, make([]byte, 1184))
					}
				}
			}
		}
	}
	f.Fuzz(func(t *testing.T, pkl, storage []byte) {
		read := func(string) ([]byte, error) { return storage, nil }
		arrays, err := ParsePickle(pkl, read, binary.LittleEndian)
		if err != nil {
			return
		}
		for name, a := range arrays {
			checkArray(t, name, a)
		}
	})
}
