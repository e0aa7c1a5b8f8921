package interop

import (
	"bytes"
	"encoding/binary"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/unimos/unimos/internal/testkit"
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
	f.Add(testkit.NPY(1, testkit.NPYHeader("<f4", false, "(2, 3)"), encode(le, []float32{1, 2, 3, 4, 5, 6})))
	f.Add(testkit.NPY(2, testkit.NPYHeader(">i8", true, "(2, 2)"), encode(be, []int64{1, 2, 3, 4})))
	f.Add(testkit.NPY(3, testkit.NPYHeader("<f2", false, "(3,)"), encode(le, []uint16{0x3c00, 1, 0x7c00})))
	f.Add(testkit.NPY(1, testkit.NPYHeader("|u1", true, "(2, 1, 2)"), []byte{1, 2, 3, 4}))
	f.Add(testkit.NPY(1, testkit.NPYHeader("<f8", false, "()"), encode(le, 1.5)))
	for _, name := range []string{"features_f32.npy", "features_f16.npy", "labels.npy"} {
		if seed := fixtureSeed(name); seed != nil {
			f.Add(seed)
		}
	}
	parseNPY := budgetedReader{"ParseNPY", func(data []byte) ([]*Array, error) {
		a, err := ParseNPY(data)
		return []*Array{a}, err
	}, 0}
	f.Fuzz(func(t *testing.T, data []byte) { parseNPY.run(t, data) })
}

// budgetedReader is a reader of a file's bytes, run under an allocation
// budget: allocBudget for its input and output, plus slack.
type budgetedReader struct {
	name string
	read func([]byte) ([]*Array, error)
	// slack is what the reader may take whatever its input's size: the
	// unpickler's minimum budget, minMemory, for the readers of .pth files.
	slack uint64
}

// run reads data and fails when the reader allocated more than its budget
// or returned an inconsistent array.
func (r budgetedReader) run(t *testing.T, data []byte) ([]*Array, error) {
	t.Helper()
	var arrays []*Array
	var err error
	used := testkit.Allocated(func() { arrays, err = r.read(data) })
	if budget := allocBudget(len(data), outputBytes(arrays...)) + r.slack; used > budget {
		t.Fatalf("%s allocated %d bytes for %d input bytes (output %d bytes), over the budget of %d",
			r.name, used, len(data), outputBytes(arrays...), budget)
	}
	for _, a := range arrays {
		if a != nil {
			checkArray(t, r.name, a)
		}
	}
	return arrays, err
}

// The readers of archives that the fuzzers run.
var (
	parseNPZReader    = budgetedReader{"parseNPZ", readNPZ, 0}
	parsePTHReader    = budgetedReader{"parsePTH", readPTH, minMemory}
	featuresNPZReader = budgetedReader{"parseFeatures .npz", readFeaturesNPZ, 0}
	matrixNPZReader   = budgetedReader{"parseMatrix .npz", readMatrixNPZ, 0}
	featuresPTHReader = budgetedReader{"parseFeatures .pth", readFeaturesPTH, minMemory}
	matrixPTHReader   = budgetedReader{"parseMatrix .pth", readMatrixPTH, minMemory}
	featuresNPYReader = budgetedReader{"readNPY features", func(data []byte) ([]*Array, error) {
		a, err := readNPY(bytes.NewReader(data), int64(len(data)), featuresSpec("features"))
		return []*Array{a}, err
	}, 0}
)

// checkPickleBudget fails when reading a pickle or a checkpoint of
// inputLen bytes allocated more than the unpickler's bound (ErrTooLarge:
// about 64 bytes per input byte, at least 4 MiB) and a copy of every
// tensor (at most the input's size) allow.
func checkPickleBudget(t *testing.T, reader string, used uint64, inputLen int) {
	t.Helper()
	if budget := allocBudget(inputLen, inputLen) + 4<<20; used > budget {
		t.Fatalf("%s allocated %d bytes for %d input bytes, over the budget of %d", reader, used, inputLen, budget)
	}
}

// FuzzZip feeds the same bytes to the .npz and .pth readers, which share
// the zip layer, each under its allocation budget.
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
		parseNPZReader.run(t, data)
		parsePTHReader.run(t, data)
	})
}

// FuzzFeatures runs the readers of import's inputs, which check each
// array's header (a .pth tensor's type and shape) against what they want
// before reading its data, on the bytes of a .npz archive, a .pth archive
// and a .npy file.
func FuzzFeatures(f *testing.F) {
	le := binary.LittleEndian
	f.Add(smallBundle(f, false))
	f.Add(smallBundle(f, true))
	f.Add(smallBundle(f, true, "text_features.npy", "other.npy"))
	f.Add(testkit.Zip(f, testkit.ZipMember{Name: "features.npy", Data: testkit.NPY(1, testkit.NPYHeader("<f2", true, "(2, 2)"), encode(le, []uint16{1, 2, 3, 4})), Deflate: true}))
	f.Add(testkit.NPY(1, testkit.NPYHeader("<f4", false, "(2, 3)"), encode(le, []float32{1, 2, 3, 4, 5, 6})))
	f.Add(buildPTH(f, "archive", featureCache(), map[string][]byte{"0": make([]byte, 8), "1": make([]byte, 16)}, ""))
	f.Add(testkit.Zip(f,
		testkit.ZipMember{Name: "c/data.pkl", Data: newPickle(2).raw('}', '(').
			str("fea").tensor("FloatStorage", "0", 6, 0, []int{3, 2}, []int{1, 3}).
			str("label").tensor("ByteStorage", "1", 8, 2, []int{3}, []int{2}).raw('u').done()},
		testkit.ZipMember{Name: "c/data/0", Data: encode(le, []float32{1, 2, 3, 4, 5, 6}), Deflate: true},
		testkit.ZipMember{Name: "c/data/1", Data: make([]byte, 8), Deflate: true}))
	for _, name := range []string{"bundle.npz", "bundle_compressed.npz", "features_f16.npy", "reference_cache.pth"} {
		if seed := fixtureSeed(name); seed != nil {
			f.Add(seed)
		}
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		for _, r := range []budgetedReader{featuresNPZReader, matrixNPZReader, featuresPTHReader, matrixPTHReader, featuresNPYReader} {
			arrays, err := r.run(t, data)
			if err == nil {
				checkFeatureArrays(t, r.name, arrays)
			}
		}
	})
}

// checkFeatureArrays fails unless arrays, as the features readers return them,
// are a float matrix and, if present, integer labels of one per row.
func checkFeatureArrays(t *testing.T, reader string, arrays []*Array) {
	t.Helper()
	if f := arrays[0]; len(f.Shape) != 2 || f.Float32 == nil {
		t.Fatalf("%s returned %s %v, not a float matrix", reader, f.DType, f.Shape)
	}
	if len(arrays) == 2 && arrays[1] != nil && (arrays[1].Int64 == nil || !slices.Equal(arrays[1].Shape, arrays[0].Shape[:1])) {
		t.Fatalf("%s returned labels %s %v for features %v", reader, arrays[1].DType, arrays[1].Shape, arrays[0].Shape)
	}
}

// FuzzNPZMembers fuzzes the .npy payloads inside a well-formed .npz
// archive: the archive is built around them each time, its sizes and
// CRC-32s right, so that the fuzzer reaches the .npy headers and data
// behind the zip layer (as FuzzCheckpointPickle does for pickles), stored
// or deflated.
func FuzzNPZMembers(f *testing.F) {
	le, be := binary.LittleEndian, binary.BigEndian
	labels := testkit.NPY(1, testkit.NPYHeader("<i8", false, "(2,)"), encode(le, []int64{7, 8}))
	f.Add(testkit.NPY(1, testkit.NPYHeader("<f4", false, "(2, 3)"), encode(le, []float32{1, 2, 3, 4, 5, 6})), labels, false)
	f.Add(testkit.NPY(1, testkit.NPYHeader("<f2", true, "(2, 2)"), encode(le, []uint16{1, 2, 3, 4})), labels, true)
	f.Add(testkit.NPY(2, testkit.NPYHeader(">f8", false, "(2, 1)"), encode(be, []float64{1, 2})),
		testkit.NPY(1, testkit.NPYHeader("|u1", false, "(2,)"), []byte{3, 4}), true)
	f.Add(testkit.NPY(3, testkit.NPYHeader("<f4", false, "(0, 5)"), nil),
		testkit.NPY(1, testkit.NPYHeader(">i2", true, "(0,)"), nil), false)
	f.Fuzz(func(t *testing.T, features, labels []byte, deflate bool) {
		both := testkit.Zip(t,
			testkit.ZipMember{Name: "features.npy", Data: features, Deflate: deflate},
			testkit.ZipMember{Name: "labels.npy", Data: labels, Deflate: deflate})
		if arrays, err := featuresNPZReader.run(t, both); err == nil {
			checkFeatureArrays(t, featuresNPZReader.name, arrays)
		}
		parseNPZReader.run(t, both)
		alone := testkit.Zip(t, testkit.ZipMember{Name: "text_features.npy", Data: features, Deflate: deflate})
		if arrays, err := matrixNPZReader.run(t, alone); err == nil {
			checkFeatureArrays(t, matrixNPZReader.name, arrays)
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
					if pkl, err := archive.content(file); err == nil {
						f.Add(pkl, make([]byte, 1184))
					}
				}
			}
		}
	}
	f.Fuzz(func(t *testing.T, pkl, storage []byte) {
		read := func(string) ([]byte, error) { return storage, nil }
		var arrays map[string]*Array
		var err error
		used := testkit.Allocated(func() { arrays, err = ParsePickle(pkl, read, binary.LittleEndian) })
		checkPickleBudget(t, "ParsePickle", used, len(pkl)+len(storage))
		if err != nil {
			return
		}
		for name, a := range arrays {
			checkArray(t, name, a)
		}
	})
}

// checkCheckpoint fails unless every tensor of c is internally consistent.
func checkCheckpoint(t *testing.T, c *Checkpoint) {
	t.Helper()
	for _, name := range c.Names() {
		st, err := c.Tensor(name)
		if err != nil {
			t.Fatalf("listed tensor %q: %v", name, err)
		}
		n, err := numElements(st.Shape)
		if err != nil || n*st.DType.Size() != len(st.Data) {
			t.Fatalf("%s: %d bytes for %s %v", name, len(st.Data), st.DType, st.Shape)
		}
	}
}

// fixturePickles returns the data.pkl of the checkpoint fixtures that
// exist, for seeding.
func fixturePickles() [][]byte {
	dir, err := findFixtures()
	if err != nil {
		return nil
	}
	var pickles [][]byte
	for _, name := range []string{"vit_openai_jit.pt", "rn_openai_jit.pt", "vit_openclip_epoch_32.pt", "hf_bin/pytorch_model.bin"} {
		data, err := os.ReadFile(filepath.Join(dir, "..", "clip_formats", name))
		if err != nil {
			continue
		}
		if archive, err := openZip(data); err == nil {
			for _, f := range archive.files {
				if strings.HasSuffix(f.Name, "/data.pkl") {
					if pkl, err := archive.content(f); err == nil {
						pickles = append(pickles, pkl)
					}
				}
			}
		}
	}
	return pickles
}

// FuzzCheckpointPickle fuzzes the pickle inside a well-formed archive (so
// that the zip checksums stay valid and the fuzzer reaches the unpickler,
// the module trees, the state-dict selection and the tensor views), with
// storages "0" to "3" of 64 bytes each.
func FuzzCheckpointPickle(f *testing.F) {
	f.Add(featureCache())
	f.Add(newPickle(2).raw('}').str("state_dict").raw('}').str("module.w").
		tensor("FloatStorage", "1", 16, 2, []int{2, 3}, []int{1, 2}).raw('s', 's').done())
	f.Add(newPickle(2).module("CLIP", func(p *pickleBuilder) {
		p.str("proj").tensor("HalfStorage", "0", 32, 0, []int{4, 8}, []int{8, 1})
	}).done())
	for _, pkl := range fixturePickles() {
		f.Add(pkl)
	}
	storages := map[string][]byte{}
	for i := range 4 {
		storages[strconv.Itoa(i)] = make([]byte, 64)
	}
	f.Fuzz(func(t *testing.T, pkl []byte) {
		archive := buildPTH(t, "ck", pkl, storages, "")
		var c *Checkpoint
		var err error
		used := testkit.Allocated(func() { c, err = parseCheckpoint(archive) })
		checkPickleBudget(t, "parseCheckpoint", used, len(archive))
		if err != nil {
			return
		}
		checkCheckpoint(t, c)
	})
}

// FuzzCheckpointFile feeds raw bytes to the checkpoint reader: zip
// archives, legacy files, and anything else.
func FuzzCheckpointFile(f *testing.F) {
	f.Add(buildPTH(f, "ck", featureCache(), map[string][]byte{"0": make([]byte, 8), "1": make([]byte, 16)}, "big"))
	values := encode(le, []float32{1, 2, 3, 4, 5, 6})
	f.Add(legacyFile(le, newPickle(2).raw('}').str("w").
		legacyTensor("FloatStorage", "7", 6, 0, []int{3, 2}, []int{1, 3}, false).raw('s').done(),
		[]string{"7"}, map[string][]byte{"7": values}, 4))
	f.Fuzz(func(t *testing.T, data []byte) {
		var c *Checkpoint
		var err error
		used := testkit.Allocated(func() { c, err = parseCheckpoint(data) })
		checkPickleBudget(t, "parseCheckpoint", used, len(data))
		if err != nil {
			return
		}
		checkCheckpoint(t, c)
	})
}
