package main

import (
	"path/filepath"
	"testing"

	"github.com/unimos/unimos/internal/shareddata"
	"github.com/unimos/unimos/internal/testkit"
)

// TestExtractFromCheckpointsMatchesSafetensors extracts the same photographs
// with PyTorch checkpoints and with their safetensors equivalents: every
// file of the two feature stores is the same, byte for byte.
func TestExtractFromCheckpointsMatchesSafetensors(t *testing.T) {
	formats := shareddata.Dir(t, "clip_formats")
	root, _ := officeSubset(t, 1)
	for _, tc := range []struct{ checkpoint, equivalent string }{
		{"vit_openai_jit.pt", "vit_f16.safetensors"},
		{"rn_legacy.pt", "rn_f16.safetensors"},
		{"vit_openclip_epoch_32.pt", "vit_f32.safetensors"},
		{"hf_bin", filepath.Join("..", "clip_reference", "models", "hf_vit_tiny")},
	} {
		t.Run(tc.checkpoint, func(t *testing.T) {
			stores := map[string]string{}
			for _, weights := range []string{tc.checkpoint, tc.equivalent} {
				out := filepath.Join(t.TempDir(), "store")
				err, _, stderr := callCommand(runExtract, "--weights", filepath.Join(formats, weights), "--images", root,
					"--out", out, "--dtype", "f32", "--workers", "2")
				if err != nil {
					t.Fatalf("extract --weights %s: %v\n%s", weights, err, stderr)
				}
				stores[weights] = out
			}
			got, want := testkit.ReadTree(t, stores[tc.checkpoint]), testkit.ReadTree(t, stores[tc.equivalent])
			if len(got) != len(want) || len(want) < 4 {
				t.Fatalf("stores hold %d and %d files", len(got), len(want))
			}
			for name, w := range want {
				if got[name] != w {
					t.Errorf("%s differs from the store extracted with %s", name, tc.equivalent)
				}
			}
		})
	}
}
