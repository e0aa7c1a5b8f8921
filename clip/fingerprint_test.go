package clip

import (
	"path/filepath"
	"testing"

	"github.com/unimos/unimos/internal/shareddata"
	"github.com/unimos/unimos/safetensors"
)

// TestFingerprint checks that one model gives matching fingerprints stored
// as F32, F16 or BF16, and that other models do not match it, nor does the
// same model with one weight matrix perturbed.
func TestFingerprint(t *testing.T) {
	models := filepath.Join(shareddata.Dir(t, "clip_reference"), "models")
	load := func(t *testing.T, file string) Fingerprint {
		if !filepath.IsAbs(file) {
			file = filepath.Join(models, file)
		}
		m, err := Load(file)
		if err != nil {
			t.Fatal(err)
		}
		f, err := m.Fingerprint()
		if err != nil {
			t.Fatal(err)
		}
		if len(f) != 2*FingerprintHalf {
			t.Fatalf("%s: fingerprint of %d elements, want %d", file, len(f), 2*FingerprintHalf)
		}
		return f
	}
	vit := load(t, "vit_tiny.safetensors")
	if !vit.Matches(load(t, "vit_tiny.safetensors")) {
		t.Error("a model does not match itself")
	}
	for _, other := range []string{"vit224_tiny.safetensors", "rn_tiny.safetensors"} {
		if vit.Matches(load(t, other)) {
			t.Errorf("vit_tiny matches %s", other)
		}
	}
	ts, md := fixtureTensors(t, "vit_tiny.safetensors")
	for _, dtype := range []safetensors.DType{safetensors.F16, safetensors.BF16} {
		if f := load(t, writeModel(t, "m.safetensors", converted(t, ts, dtype), md, nil)); !vit.Matches(f) {
			t.Errorf("vit_tiny stored as %s has another fingerprint:\n%v\n%v", dtype, vit, f)
		}
	}
	// Other weights of the same architecture: the visual projection scaled
	// by -1 flips the image half.
	flipped := make([]*safetensors.Tensor, len(ts))
	for i, x := range ts {
		flipped[i] = x
		if x.Name != "visual.proj" {
			continue
		}
		v, err := x.Float32()
		if err != nil {
			t.Fatal(err)
		}
		for j := range v {
			v[j] = -v[j]
		}
		if flipped[i], err = safetensors.FromFloat32(x.Name, safetensors.F32, x.Shape, v); err != nil {
			t.Fatal(err)
		}
	}
	if vit.Matches(load(t, writeModel(t, "m.safetensors", flipped, md, nil))) {
		t.Error("vit_tiny with its visual projection negated matches vit_tiny")
	}
}
