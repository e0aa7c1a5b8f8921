package clip

import (
	"errors"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/unimos/unimos/internal/shareddata"
	"github.com/unimos/unimos/internal/testkit"
	"github.com/unimos/unimos/interop"
	"github.com/unimos/unimos/tensor"
)

// isPyTorchCheckpoint reports whether path is a PyTorch file, or a folder
// whose weights are one (Hugging Face's pytorch_model.bin).
func isPyTorchCheckpoint(t *testing.T, path string) bool {
	t.Helper()
	if st, err := os.Stat(path); err == nil && st.IsDir() {
		path = filepath.Join(path, "pytorch_model.bin")
	}
	head, err := fileHead(path, interop.PyTorchHeadLen)
	return err == nil && interop.IsPyTorch(head)
}

// embeddings returns the image embedding of a fixed synthetic image and the
// text embedding of a fixed sentence.
func embeddings(t *testing.T, m *Model) (image, text *tensor.Matrix) {
	t.Helper()
	n := m.InputResolution()
	img := make([]float32, 3*n*n)
	for i := range img {
		img[i] = float32(math.Sin(0.013*float64(i)) - 0.3*math.Cos(0.29*float64(i%n)))
	}
	image, err := m.EncodeImages([][]float32{img})
	if err != nil {
		t.Fatal(err)
	}
	tok, err := m.Tokenizer()
	if err != nil {
		t.Fatal(err)
	}
	ids, err := tok.Tokenize([]string{"a sketch of a bicycle."}, m.ContextLength(), true)
	if err != nil {
		t.Fatal(err)
	}
	if text, err = m.EncodeText(ids); err != nil {
		t.Fatal(err)
	}
	return image, text
}

// TestCheckpointFormatsMatchSafetensors loads every PyTorch checkpoint of
// the manifest and its safetensors equivalent: the two models are the same,
// weight for weight, and give bit-identical image and text embeddings.
func TestCheckpointFormatsMatchSafetensors(t *testing.T) {
	formats := shareddata.ReadCheckpointFormats(t)
	dir := formats.Dir
	checked := 0
	for name, eq := range formats.Equivalent {
		ckpt := filepath.Join(dir, name)
		if !isPyTorchCheckpoint(t, ckpt) {
			continue // Hugging Face shards are safetensors
		}
		checked++
		t.Run(name, func(t *testing.T) {
			got, err := Load(ckpt)
			if err != nil {
				t.Fatal(err)
			}
			want, err := Load(filepath.Join(dir, eq))
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got.Config, want.Config) {
				t.Fatalf("configs differ:\n got %+v\nwant %+v", got.Config, want.Config)
			}
			if !reflect.DeepEqual(got, want) {
				t.Error("weights differ")
			}
			gotImage, gotText := embeddings(t, got)
			wantImage, wantText := embeddings(t, want)
			if !reflect.DeepEqual(gotImage.Data, wantImage.Data) || !reflect.DeepEqual(gotText.Data, wantText.Data) {
				t.Errorf("embeddings differ:\n image %v\n  want %v\n text %v\n want %v",
					gotImage.Data[:4], wantImage.Data[:4], gotText.Data[:4], wantText.Data[:4])
			}
		})
	}
	if checked != 8 {
		t.Errorf("loaded %d PyTorch checkpoints, want the manifest's 8 (7 files and hf_bin)", checked)
	}
}

// TestLoadRefusesMaliciousCheckpoints loads the two pickles that would run
// os.system: each is refused with an error naming the file and the global,
// and the command did not run.
func TestLoadRefusesMaliciousCheckpoints(t *testing.T) {
	formats := shareddata.ReadCheckpointFormats(t)
	dir := formats.Dir
	const marker = "/tmp/unimos-pwned-marker"
	os.Remove(marker)
	for _, name := range formats.Refuse {
		path := filepath.Join(dir, name)
		_, err := Load(path)
		if !errors.Is(err, interop.ErrUnsafePickle) {
			t.Errorf("%s: got %v, want a refusal", name, err)
			continue
		}
		for _, want := range []string{"clip: ", path, "posix.system", "refused for safety"} {
			if !strings.Contains(err.Error(), want) {
				t.Errorf("%s: error %q does not mention %q", name, err, want)
			}
		}
	}
	if _, err := os.Stat(marker); err == nil {
		t.Errorf("%s exists: a malicious pickle ran", marker)
	}
}

// TestLoadCheckpointByContent loads PyTorch files whatever their names, and
// reports a damaged one with its path.
func TestLoadCheckpointByContent(t *testing.T) {
	dir := formatsDir(t)
	data, err := os.ReadFile(filepath.Join(dir, "vit_openai_jit.pt"))
	if err != nil {
		t.Fatal(err)
	}
	tmp := t.TempDir()
	renamed := filepath.Join(tmp, "weights.safetensors")
	if err := os.WriteFile(renamed, data, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := Load(renamed); err != nil {
		t.Errorf("a TorchScript archive named .safetensors: %v", err)
	}
	truncated := filepath.Join(tmp, "truncated.pt")
	if err := os.WriteFile(truncated, data[:len(data)/2], 0o644); err != nil {
		t.Fatal(err)
	}
	wantLoadError(t, truncated, "clip: ", truncated, "not a zip archive, or a truncated one")
	// A folder found by its PyTorch file.
	folder := filepath.Join(tmp, "open_clip")
	if err := os.Mkdir(folder, 0o755); err != nil {
		t.Fatal(err)
	}
	bin, err := os.ReadFile(filepath.Join(dir, "vit_open_clip_pytorch_model.bin"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(folder, "open_clip_pytorch_model.bin"), bin, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := Load(folder); err != nil {
		t.Errorf("a folder holding open_clip_pytorch_model.bin: %v", err)
	}
}

// TestLoadNeitherSafetensorsNorPyTorch: a file that starts neither as a
// PyTorch file nor as a safetensors file, whatever its name, is refused
// with an error naming it and the formats that are read, not with what a
// safetensors reader makes of its first bytes; a damaged file that starts
// as safetensors keeps that reader's account, and a named pipe is refused
// without waiting for a writer.
func TestLoadNeitherSafetensorsNorPyTorch(t *testing.T) {
	neither := []string{"neither a safetensors file nor a PyTorch checkpoint", "TorchScript archive", "torch.save file",
		"open_clip training checkpoint", shardIndexName}
	cases := []struct {
		name, content string
		neither       bool     // the error is the one for neither format
		wants         []string // what else it says
	}{
		{"junk.pt", "text\n", true, []string{"(the file is 5 bytes long)"}},
		{"notes.safetensors", "these are not CLIP weights\n", true, nil},
		{"empty.bin", "", true, []string{"(the file is 0 bytes long)"}},
		{"zeros.pt", strings.Repeat("\x00", 64), true, nil},
		{"truncated.safetensors", "\x40\x00\x00\x00\x00\x00\x00\x00{\"a\":", false, []string{"safetensors: ", "header length 64 runs past the end"}},
	}
	dir := t.TempDir()
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			path := filepath.Join(dir, c.name)
			testkit.WriteFile(t, path, []byte(c.content))
			_, err := Load(path)
			if err == nil {
				t.Fatal("loaded")
			}
			wants := c.wants
			if c.neither {
				wants = append(wants, neither...)
			}
			for _, w := range append([]string{"clip: ", path + ": "}, wants...) {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not say %q", err, w)
				}
			}
			if c.neither && strings.Contains(err.Error(), "header") {
				t.Errorf("error %q speaks of a safetensors header", err)
			}
		})
	}
	pipe := filepath.Join(dir, "pipe.pt")
	testkit.MakeFIFO(t, pipe)
	testkit.Within(t, 10*time.Second, func() { wantLoadError(t, pipe, pipe, "is a named pipe, not a CLIP weights file") })
}
