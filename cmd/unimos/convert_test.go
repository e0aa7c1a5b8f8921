package main

import (
	"bytes"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/unimos/unimos/clip"
	"github.com/unimos/unimos/internal/shareddata"
	"github.com/unimos/unimos/internal/testkit"
	"github.com/unimos/unimos/safetensors"
)

// probe returns the embeddings of a fixed image (smooth stripes) and a
// fixed prompt under the weights at path, one slice after the other.
func probe(t *testing.T, path string) []float32 {
	t.Helper()
	m, err := clip.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	n := m.InputResolution()
	img := make([]float32, 3*n*n)
	for i := range img {
		img[i] = float32(math.Sin(0.05*float64(i)) - 0.3*math.Cos(0.11*float64(i%n)))
	}
	vis, err := m.EncodeImages([][]float32{img})
	if err != nil {
		t.Fatal(err)
	}
	tok, err := m.Tokenizer()
	if err != nil {
		t.Fatal(err)
	}
	ids, err := tok.Tokenize([]string{"a product photo of a mug."}, m.ContextLength(), true)
	if err != nil {
		t.Fatal(err)
	}
	txt, err := m.EncodeText(ids)
	if err != nil {
		t.Fatal(err)
	}
	return slices.Concat(vis.Data, txt.Data)
}

// TestConvertRoundTrips converts an OpenAI-naming fixture, the Hugging Face
// copy of the same weights and its sharded form. Kept at their type
// (float32), the converted files give exactly the source's embeddings; with
// --dtype f16 or bf16, every stored weight is the OpenAI fixture's value
// rounded to nearest in that type.
func TestConvertRoundTrips(t *testing.T) {
	models := filepath.Join(shareddata.Dir(t, "clip_reference"), "models")
	openai := filepath.Join(models, "vit_tiny.safetensors")
	sources := []string{openai, filepath.Join(models, "hf_vit_tiny"), filepath.Join(shareddata.Dir(t, "clip_formats"), "hf_sharded")}
	original := fileFloats(t, openai)
	for _, source := range sources {
		want := probe(t, source)
		for _, dtype := range []string{"", "f32", "f16", "bf16"} {
			t.Run(filepath.Base(source)+"/"+dtype, func(t *testing.T) {
				out := filepath.Join(t.TempDir(), "converted.safetensors")
				args := []string{"convert", "--weights", source, "--out", out}
				if dtype != "" {
					args = append(args, "--dtype", dtype)
				}
				code, stdout, stderr := runCLI(t, args...)
				if code != 0 {
					t.Fatalf("status %d: %s", code, stderr)
				}
				stored := map[string]safetensors.DType{"": safetensors.F32, "f32": safetensors.F32, "f16": safetensors.F16, "bf16": safetensors.BF16}[dtype]
				if !strings.HasPrefix(stdout, out+": "+string(stored)+", 1.2M weights") || !strings.Contains(stdout, "ViT patch 8 width 128") {
					t.Errorf("stdout %q", stdout)
				}
				if stored == safetensors.F32 {
					if got := probe(t, out); !slices.Equal(got, want) {
						t.Errorf("embeddings differ from the source's:\n%v\n%v", got, want)
					}
					return
				}
				round := safetensors.BF16ToFloat32
				if stored == safetensors.F16 {
					round = safetensors.F16ToFloat32
				}
				toHalf := map[safetensors.DType]func(float32) uint16{safetensors.F16: safetensors.Float32ToF16, safetensors.BF16: safetensors.Float32ToBF16}[stored]
				got := fileFloats(t, out)
				for name, values := range original {
					for i, v := range values {
						if r := round(toHalf(v)); got[name][i] != r {
							t.Fatalf("%s[%d] = %g, want %g rounded to %g", name, i, got[name][i], v, r)
						}
					}
				}
				if len(got) != len(original) {
					t.Errorf("%d tensors, want the fixture's %d", len(got), len(original))
				}
			})
		}
	}
}

// TestConvertPyTorchRoundTrips converts PyTorch checkpoints (OpenAI's
// TorchScript archive, a legacy torch.save file, an open_clip training
// checkpoint) at their own type: each converted file holds its safetensors
// equivalent's tensors, the same names, types, shapes and bytes, but for
// BatchNorm's step counters, which are no weights; and it loads to the
// equivalent's embeddings.
func TestConvertPyTorchRoundTrips(t *testing.T) {
	formats := shareddata.ReadCheckpointFormats(t)
	for _, checkpoint := range []string{"vit_openai_jit.pt", "rn_legacy.pt", "vit_openclip_epoch_32.pt"} {
		t.Run(checkpoint, func(t *testing.T) {
			equivalent := filepath.Join(formats.Dir, formats.Equivalent[checkpoint])
			out := filepath.Join(t.TempDir(), "converted.safetensors")
			if code, _, stderr := runCLI(t, "convert", "--weights", filepath.Join(formats.Dir, checkpoint), "--out", out); code != 0 {
				t.Fatalf("status %d: %s", code, stderr)
			}
			got, want := openSafetensors(t, out), openSafetensors(t, equivalent)
			var wantNames []string
			for _, name := range want.Names() {
				if !strings.HasSuffix(name, ".num_batches_tracked") {
					wantNames = append(wantNames, name)
				}
			}
			for _, name := range testkit.SameNames(t, got.Names(), wantNames) {
				g, _ := got.Tensor(name)
				w, _ := want.Tensor(name)
				if g.DType != w.DType || !slices.Equal(g.Shape, w.Shape) || !bytes.Equal(g.Data, w.Data) {
					t.Errorf("%s: %s %v, want the equivalent's %s %v (bytes equal: %t)", name, g.DType, g.Shape, w.DType, w.Shape,
						bytes.Equal(g.Data, w.Data))
				}
			}
			if !slices.Equal(probe(t, out), probe(t, equivalent)) {
				t.Error("the converted file's embeddings differ from the equivalent's")
			}
		})
	}
}

// openSafetensors opens a safetensors file, closed when the test ends.
func openSafetensors(t *testing.T, path string) *safetensors.File {
	t.Helper()
	f, err := safetensors.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return f
}

// fileFloats reads every tensor of a safetensors file as float32, checking
// that all have one storage type.
func fileFloats(t *testing.T, path string) map[string][]float32 {
	t.Helper()
	f := openSafetensors(t, path)
	out := map[string][]float32{}
	var dtype safetensors.DType
	for _, name := range f.Names() {
		x, err := f.Tensor(name)
		if err != nil {
			t.Fatal(err)
		}
		if dtype == "" {
			dtype = x.DType
		} else if x.DType != dtype {
			t.Errorf("%s: tensor %s is %s, others %s", path, name, x.DType, dtype)
		}
		if out[name], err = x.Float32(); err != nil {
			t.Fatal(err)
		}
	}
	return out
}

// TestConvertOut: an existing --out is refused (status 2, file untouched)
// unless --force, which replaces it; a folder is never an --out.
func TestConvertOut(t *testing.T) {
	source := filepath.Join(shareddata.Dir(t, "clip_reference"), "models", "vit_tiny.safetensors")
	dir := t.TempDir()
	out := filepath.Join(dir, "model.safetensors")
	testkit.WriteFile(t, out, []byte("keep me"))

	code, _, stderr := runCLI(t, "convert", "--weights", source, "--out", out)
	if code != 2 || !strings.Contains(stderr, out+" exists: choose another --out, or replace it with --force") {
		t.Errorf("status %d, stderr %q", code, stderr)
	}
	if data, _ := os.ReadFile(out); string(data) != "keep me" {
		t.Error("the existing file was changed")
	}
	if code, _, stderr := runCLI(t, "convert", "--weights", source, "--out", out, "--force"); code != 0 {
		t.Fatalf("--force: status %d, %s", code, stderr)
	}
	if got, want := probe(t, out), probe(t, source); !slices.Equal(got, want) {
		t.Error("the replaced file is not the converted model")
	}
	if code, _, stderr := runCLI(t, "convert", "--weights", source, "--out", dir, "--force"); code != 2 || !strings.Contains(stderr, "is a folder: give a file name, such as "+out) {
		t.Errorf("folder: status %d, stderr %q", code, stderr)
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 1 {
		t.Errorf("%d entries in the output folder, want only the file (no temporary files left)", len(entries))
	}
}

// TestConvertUsageErrors: missing flags and an unknown --dtype are usage
// errors.
func TestConvertUsageErrors(t *testing.T) {
	cases := []struct {
		args []string
		want string
	}{
		{[]string{"--out", "x.safetensors"}, "--weights is required"},
		{[]string{"--weights", "ViT-B/16"}, "--out is required"},
		{[]string{"--weights", "ViT-B/16", "--out", "x.safetensors", "--dtype", "f64"}, `--dtype "f64": want f16, bf16 or f32`},
	}
	for _, c := range cases {
		code, _, stderr := runCLI(t, append([]string{"convert"}, c.args...)...)
		if code != 2 || !strings.Contains(stderr, c.want) {
			t.Errorf("%v: status %d, stderr %q, want %q", c.args, code, stderr, c.want)
		}
	}
}

// TestConvertByName converts weights named as clip.load names them, found
// in a fake ~/.cache/clip (a fixture under OpenAI's file name: the checksum
// warning goes to the command's stderr), and reports a name found nowhere.
func TestConvertByName(t *testing.T) {
	home := t.TempDir()
	t.Setenv("HOME", home)
	t.Setenv("XDG_CACHE_HOME", "")
	t.Setenv("HF_HUB_CACHE", filepath.Join(home, "hub"))
	source := filepath.Join(shareddata.Dir(t, "clip_reference"), "models", "vit_tiny.safetensors")
	data, err := os.ReadFile(source)
	if err != nil {
		t.Fatal(err)
	}
	cached := filepath.Join(home, ".cache", "clip", "ViT-B-32.pt")
	if err := os.MkdirAll(filepath.Dir(cached), 0o755); err != nil {
		t.Fatal(err)
	}
	testkit.WriteFile(t, cached, data)

	out := filepath.Join(t.TempDir(), "b32.safetensors")
	code, _, stderr := runCLI(t, "convert", "--weights", "ViT-B/32", "--out", out)
	if code != 0 {
		t.Fatalf("status %d: %s", code, stderr)
	}
	for _, w := range []string{"warning: " + cached + " is not the file OpenAI publishes as ViT-B/32", "ViT-B/32: " + cached + "\n"} {
		if !strings.Contains(stderr, w) {
			t.Errorf("stderr %q does not say %q", stderr, w)
		}
	}
	if got, want := probe(t, out), probe(t, source); !slices.Equal(got, want) {
		t.Error("the converted file is not the cached model")
	}

	code, _, stderr = runCLI(t, "convert", "--weights", "openai/clip-vit-base-patch16", "--out", out+"2")
	if code != 1 || !strings.Contains(stderr, "huggingface-cli download openai/clip-vit-base-patch16") || !strings.Contains(stderr, "unimos downloads nothing") {
		t.Errorf("not cached: status %d, stderr %q", code, stderr)
	}
}

// TestConvertNotWeights runs what issue #19 reports: a text file given as
// --weights is said to be neither format, not a safetensors header of an
// absurd length, and nothing is written.
func TestConvertNotWeights(t *testing.T) {
	dir := t.TempDir()
	junk := filepath.Join(dir, "junk.pt")
	testkit.WriteFile(t, junk, []byte("text\n"))
	out := filepath.Join(dir, "x.safetensors")
	code, _, stderr := runCLI(t, "convert", "--weights", junk, "--out", out)
	if code != 1 || !strings.Contains(stderr, junk+": neither a safetensors file nor a PyTorch checkpoint") ||
		strings.Contains(stderr, "header length") {
		t.Errorf("status %d, stderr %q", code, stderr)
	}
	if _, err := os.Stat(out); err == nil {
		t.Errorf("%s was written", out)
	}
}
