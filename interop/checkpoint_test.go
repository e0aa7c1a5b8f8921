package interop

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/unimos/unimos/internal/shareddata"
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
			gotNames, wantNames := c.Names(), f.Names()
			slices.Sort(gotNames)
			slices.Sort(wantNames)
			if !slices.Equal(gotNames, wantNames) {
				t.Fatalf("names differ:\n got %v\nwant %v", gotNames, wantNames)
			}
			for _, n := range wantNames {
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
