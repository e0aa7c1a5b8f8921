package interop

import (
	"archive/zip"
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"math"
	"os"
	"path"
	"path/filepath"
	"slices"
	"testing"

	"github.com/unimos/unimos/internal/shareddata"
	"github.com/unimos/unimos/internal/testkit"
	"github.com/unimos/unimos/safetensors"
)

// TestCheckpointMatchesSafetensors opens every PyTorch fixture and checks
// that it holds exactly the tensors of its safetensors equivalent: the same
// names, dtypes, shapes and bytes.
func TestCheckpointMatchesSafetensors(t *testing.T) {
	m := shareddata.ReadCheckpointFormats(t)
	dir := m.Dir
	checked := 0
	for name, equivalent := range m.Equivalent {
		ckpt, want := filepath.Join(dir, name), filepath.Join(dir, equivalent)
		if st, err := os.Stat(ckpt); err != nil || st.IsDir() {
			if ckpt = filepath.Join(ckpt, "pytorch_model.bin"); !fileExists(ckpt) {
				continue // a folder of safetensors shards: not a PyTorch file
			}
			want = filepath.Join(want, "model.safetensors")
		}
		t.Run(name, func(t *testing.T) {
			c, err := OpenCheckpoint(ckpt)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			f, err := safetensors.Open(want)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			for _, n := range testkit.SameNames(t, c.Names(), f.Names()) {
				g, _ := c.Tensor(n)
				w, _ := f.Tensor(n)
				if g.DType == safetensors.I64 && w.DType != g.DType {
					// BatchNorm step counters: the TorchScript archive keeps
					// them int64, the safetensors equivalent converted them.
					gv, err1 := g.Int64()
					wv, err2 := w.Float32()
					if err1 != nil || err2 != nil || len(gv) != 1 || len(wv) != 1 || float32(gv[0]) != wv[0] {
						t.Errorf("%s: got %v, want %v", n, gv, wv)
					}
					continue
				}
				if g.DType != w.DType || !slices.Equal(g.Shape, w.Shape) || !bytes.Equal(g.Data, w.Data) {
					t.Errorf("%s: got %s %v (%d bytes), want %s %v (%d bytes)", n, g.DType, g.Shape, len(g.Data),
						w.DType, w.Shape, len(w.Data))
				}
			}
		})
		checked++
	}
	if checked != 8 {
		t.Errorf("checked %d checkpoints, want the manifest's 8 (7 files and hf_bin)", checked)
	}
}

func fileExists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}

// TestCheckpointRefusesMaliciousFixtures opens the two pickles that would
// run os.system: both are refused, naming the global and the file, and the
// command they carry has not run.
func TestCheckpointRefusesMaliciousFixtures(t *testing.T) {
	m := shareddata.ReadCheckpointFormats(t)
	dir := m.Dir
	const marker = "/tmp/unimos-pwned-marker"
	os.Remove(marker)
	if len(m.Refuse) == 0 {
		t.Fatal("the manifest lists no file to refuse")
	}
	for _, name := range m.Refuse {
		path := filepath.Join(dir, name)
		_, err := OpenCheckpoint(path)
		if !errors.Is(err, ErrUnsafePickle) {
			t.Errorf("%s: got %v, want ErrUnsafePickle", name, err)
			continue
		}
		for _, want := range []string{path, "system", "refused for safety"} {
			if !bytes.Contains([]byte(err.Error()), []byte(want)) {
				t.Errorf("%s: error %q does not mention %q", name, err, want)
			}
		}
		if _, err := ReadPTH(path); !errors.Is(err, ErrUnsafePickle) {
			t.Errorf("%s: ReadPTH: got %v, want ErrUnsafePickle", name, err)
		}
	}
	if _, err := os.Stat(marker); err == nil {
		t.Errorf("%s exists: a malicious pickle ran", marker)
	}
}

// bf16Nearest returns the bits of the bfloat16 nearest to v, ties to even.
// It scales v so that the bfloat16 spacing at v (8 significant bits for
// normal numbers, 2^-133 below them) becomes 1 and rounds there, another
// route than the bit arithmetic of safetensors.Float32ToBF16; the result is
// a float32 whose low 16 bits are zero, so its high half is the bfloat16.
func bf16Nearest(v float32) uint16 {
	_, exp := math.Frexp(float64(v)) // |v| = frac × 2^exp, 0.5 <= frac < 1
	spacing := max(exp-8, -133)
	r := math.Ldexp(math.RoundToEven(math.Ldexp(float64(v), -spacing)), spacing)
	return uint16(math.Float32bits(float32(r)) >> 16)
}

// asBF16Archive returns a copy of the PyTorch zip archive data (a
// little-endian one, whose storages all hold elements of storageType)
// saved as if its weights were bfloat16: each storage record's elements
// rounded with bf16Nearest, and the pickle's reference to
// torch.<storageType> made one to torch.BFloat16Storage.
func asBF16Archive(t *testing.T, data []byte, storageType string, decode func([]byte) float32, size int) []byte {
	t.Helper()
	zr, err := zip.NewReader(bytes.NewReader(data), int64(len(data)))
	if err != nil {
		t.Fatal(err)
	}
	var members []testkit.ZipMember
	for _, f := range zr.File {
		rc, err := f.Open()
		if err != nil {
			t.Fatal(err)
		}
		content, err := io.ReadAll(rc)
		rc.Close()
		if err != nil {
			t.Fatal(err)
		}
		dir, base := path.Split(f.Name)
		switch {
		case base == "data.pkl":
			global := []byte("torch\n" + storageType + "\n")
			if n := bytes.Count(content, global); n != 1 {
				t.Fatalf("%s names torch.%s %d times, want once", f.Name, storageType, n)
			}
			content = bytes.Replace(content, global, []byte("torch\nBFloat16Storage\n"), 1)
		case path.Base(dir) == "data":
			bf16 := make([]byte, 0, len(content)/size*2)
			for i := 0; i+size <= len(content); i += size {
				bf16 = binary.LittleEndian.AppendUint16(bf16, bf16Nearest(decode(content[i:])))
			}
			content = bf16
		case base == "byteorder" && string(content) != "little":
			t.Fatalf("%s holds %q, want little", f.Name, content)
		}
		members = append(members, testkit.ZipMember{Name: f.Name, Data: content})
	}
	return testkit.Zip(t, members...)
}

// TestCheckpointBF16Storages opens bfloat16 versions of two fixtures (the
// float16 TorchScript archive and the float32 open_clip training
// checkpoint, rewritten by asBF16Archive): every tensor is BF16 and holds
// the equivalent safetensors file's values rounded to nearest bfloat16.
func TestCheckpointBF16Storages(t *testing.T) {
	m := shareddata.ReadCheckpointFormats(t)
	cases := []struct {
		checkpoint, storageType string
		decode                  func([]byte) float32
		size                    int
	}{
		{"vit_openai_jit.pt", "HalfStorage", func(b []byte) float32 { return safetensors.F16ToFloat32(le.Uint16(b)) }, 2},
		{"vit_openclip_epoch_32.pt", "FloatStorage", func(b []byte) float32 { return math.Float32frombits(le.Uint32(b)) }, 4},
	}
	for _, c := range cases {
		t.Run(c.checkpoint, func(t *testing.T) {
			data, err := os.ReadFile(filepath.Join(m.Dir, c.checkpoint))
			if err != nil {
				t.Fatal(err)
			}
			file := filepath.Join(t.TempDir(), "bf16.pt")
			testkit.WriteFile(t, file, asBF16Archive(t, data, c.storageType, c.decode, c.size))
			ck, err := OpenCheckpoint(file)
			if err != nil {
				t.Fatal(err)
			}
			defer ck.Close()
			want, err := safetensors.Open(filepath.Join(m.Dir, m.Equivalent[c.checkpoint]))
			if err != nil {
				t.Fatal(err)
			}
			defer want.Close()
			for _, name := range testkit.SameNames(t, ck.Names(), want.Names()) {
				w, _ := want.Tensor(name)
				values, err := w.Float32()
				if err != nil {
					t.Fatal(err)
				}
				bf16 := make([]byte, 0, 2*len(values))
				for _, v := range values {
					bf16 = le.AppendUint16(bf16, bf16Nearest(v))
				}
				g, _ := ck.Tensor(name)
				if g.DType != safetensors.BF16 || !slices.Equal(g.Shape, w.Shape) || !bytes.Equal(g.Data, bf16) {
					t.Errorf("%s: got %s %v (%d bytes), want BF16 %v holding the equivalent's values rounded", name, g.DType, g.Shape,
						len(g.Data), w.Shape)
				}
			}
		})
	}
}
