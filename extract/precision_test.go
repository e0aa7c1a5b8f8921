package extract

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"testing"

	"github.com/unimos/unimos/features"
	"github.com/unimos/unimos/internal/testkit"
	"github.com/unimos/unimos/tensor"
)

// TestRunRecordsPrecision checks the precision dataset.json records: what
// ChoosePrecision resolves the request to, f32 when none is given.
func TestRunRecordsPrecision(t *testing.T) {
	m := fixtureModel(t, "vit_tiny.safetensors")
	_, ds := smallDataset(t)
	for _, ask := range []tensor.Precision{"", tensor.PrecisionF32, tensor.PrecisionBF16, tensor.PrecisionAuto} {
		want := tensor.PrecisionF32
		if ask != "" {
			want, _, _ = tensor.ChoosePrecision(ask)
		}
		out := filepath.Join(t.TempDir(), "store")
		mustRun(t, m, ds, Options{Out: out, Batch: 8, Precision: ask})
		store, err := features.Open(out)
		if err != nil {
			t.Fatal(err)
		}
		if got := store.Meta.Precision; got != string(want) {
			t.Errorf("precision %q: dataset.json records %q, want %q", ask, got, want)
		}
		if p := tensor.CurrentPrecision(); p != tensor.PrecisionF32 {
			t.Fatalf("precision %q: after Run, products run in %s; want f32 restored", ask, p)
		}
	}
}

// TestRunBF16NearF32 extracts the same images with f32 and with bf16
// products on the tiny fixture models and compares every image and text
// row: within cosine 0.9995, and not identical. A run interrupted in bf16
// does not resume in f32.
func TestRunBF16NearF32(t *testing.T) {
	if _, why, _ := tensor.ChoosePrecision(tensor.PrecisionBF16); why != "requested" {
		t.Skipf("no bf16 products here: %s", why)
	}
	_, ds := smallDataset(t)
	for _, model := range []string{"vit_tiny.safetensors", "rn_tiny.safetensors"} {
		t.Run(model, func(t *testing.T) {
			m := fixtureModel(t, model)
			stores := map[tensor.Precision]*features.Store{}
			for _, p := range []tensor.Precision{tensor.PrecisionF32, tensor.PrecisionBF16} {
				out := filepath.Join(t.TempDir(), string(p))
				mustRun(t, m, ds, Options{Out: out, Batch: 8, DType: features.F32, Precision: p})
				s, err := features.Open(out)
				if err != nil {
					t.Fatal(err)
				}
				stores[p] = s
			}
			for _, name := range stores[tensor.PrecisionF32].Meta.Domains {
				for what, read := range map[string]func(*features.Store) *tensor.Matrix{
					"image": func(s *features.Store) *tensor.Matrix {
						d, err := s.Domain(name)
						if err != nil {
							t.Fatal(err)
						}
						return d.Features
					},
					"text": func(s *features.Store) *tensor.Matrix {
						x, err := s.Text(name)
						if err != nil {
							t.Fatal(err)
						}
						return x
					},
				} {
					testkit.CheckBF16Rows(t, name+" "+what, read(stores[tensor.PrecisionBF16]), read(stores[tensor.PrecisionF32]))
				}
			}
		})
	}

	m := fixtureModel(t, "vit_tiny.safetensors")
	out := t.TempDir()
	ctx, cancel := context.WithCancel(context.Background())
	if _, err := run(t, ctx, m, ds, Options{Out: out, Batch: 4, Precision: tensor.PrecisionBF16, Progress: interruptAfter(1, cancel)}); !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want an interruption", err)
	}
	_, err := run(t, context.Background(), m, ds, Options{Out: out, Batch: 4, Precision: tensor.PrecisionF32})
	if err == nil || !strings.Contains(err.Error(), "product precision: bf16 vs f32") {
		t.Errorf("resuming a bf16 run in f32: err = %v", err)
	}
}
