package extract

import (
	"image"
	"image/color"
	"image/png"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/unimos/unimos/clip"
	"github.com/unimos/unimos/internal/shareddata"
	"github.com/unimos/unimos/internal/testkit"
)

// fixtureModels caches the loaded fixture models by file name.
var fixtureModels sync.Map

// fixtureModel loads a tiny random-weight CLIP of the reference fixtures
// (vit_tiny: 32 px input, 32-dimensional embeddings).
func fixtureModel(t testing.TB, name string) *clip.Model {
	t.Helper()
	if m, ok := fixtureModels.Load(name); ok {
		return m.(*clip.Model)
	}
	m, err := clip.Load(filepath.Join(shareddata.Dir(t, "clip_reference"), "models", name))
	if err != nil {
		t.Fatal(err)
	}
	fixtureModels.Store(name, m)
	return m
}

// writeNoisePNG writes a w×h RGB PNG of seeded noise.
func writeNoisePNG(t testing.TB, path string, w, h int, seed uint64) {
	t.Helper()
	rng := rand.New(rand.NewPCG(seed, 7))
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	for y := range h {
		for x := range w {
			img.Set(x, y, color.RGBA{uint8(rng.IntN(256)), uint8(rng.IntN(256)), uint8(rng.IntN(256)), 255})
		}
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := png.Encode(f, img); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
}

// makeFolders writes ROOT/<domain>/<class>/img<i>.png with counts[domain][class]
// images of seeded noise, sizes varying around 40 px.
func makeFolders(t testing.TB, root string, counts map[string]map[string]int) {
	t.Helper()
	seed := uint64(1)
	for dom, classes := range counts {
		for class, n := range classes {
			for i := range n {
				seed++
				path := filepath.Join(root, dom, class, "img"+string(rune('a'+i))+".png")
				writeNoisePNG(t, path, 33+int(seed%11), 29+int(seed%7), seed)
			}
		}
	}
}

// sameTree fails the test unless the two folders hold the same files with
// the same bytes.
func sameTree(t testing.TB, want, got string) {
	t.Helper()
	a, b := testkit.ReadTree(t, want), testkit.ReadTree(t, got)
	for name, data := range a {
		other, ok := b[name]
		switch {
		case !ok:
			t.Errorf("%s: missing (present in %s)", filepath.Join(got, name), want)
		case string(other) != string(data):
			t.Errorf("%s differs from %s", filepath.Join(got, name), filepath.Join(want, name))
		}
	}
	for name := range b {
		if _, ok := a[name]; !ok {
			t.Errorf("%s: unexpected file (absent from %s)", filepath.Join(got, name), want)
		}
	}
}
