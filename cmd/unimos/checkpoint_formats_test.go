package main

import (
	"maps"
	"path/filepath"
	"slices"
	"testing"

	"github.com/unimos/unimos/internal/shareddata"
	"github.com/unimos/unimos/internal/testkit"
)

// TestExtractFromCheckpointsMatchesSafetensors extracts the same photographs
// (one per class and domain, to keep it quick) with every checkpoint of
// clip_formats/manifest.json and with its safetensors equivalent: every
// file of the two feature stores is the same, byte for byte.
func TestExtractFromCheckpointsMatchesSafetensors(t *testing.T) {
	formats := shareddata.ReadCheckpointFormats(t)
	root, _ := officeSubset(t, 1)
	// extracted holds each store by its --weights, so that an equivalent
	// shared by several checkpoints is extracted once.
	extracted := map[string]map[string]string{}
	extract := func(t *testing.T, weights string) map[string]string {
		t.Helper()
		if files, ok := extracted[weights]; ok {
			return files
		}
		out := filepath.Join(t.TempDir(), "store")
		err, _, stderr := callCommand(runExtract, "--weights", filepath.Join(formats.Dir, weights), "--images", root,
			"--out", out, "--dtype", "f32", "--workers", "2")
		if err != nil {
			t.Fatalf("extract --weights %s: %v\n%s", weights, err, stderr)
		}
		extracted[weights] = testkit.ReadTree(t, out)
		return extracted[weights]
	}
	checkpoints := slices.Sorted(maps.Keys(formats.Equivalent))
	if len(checkpoints) != 9 {
		t.Errorf("the manifest lists %d checkpoints, want 9 (clip_formats/README.md)", len(checkpoints))
	}
	for _, checkpoint := range checkpoints {
		equivalent := formats.Equivalent[checkpoint]
		t.Run(checkpoint, func(t *testing.T) {
			got, want := extract(t, checkpoint), extract(t, equivalent)
			if len(got) != len(want) || len(want) < 4 {
				t.Fatalf("stores hold %d and %d files", len(got), len(want))
			}
			for name, w := range want {
				if got[name] != w {
					t.Errorf("%s differs from the store extracted with %s", name, equivalent)
				}
			}
		})
	}
}
