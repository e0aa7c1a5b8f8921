package synth

import (
	"math"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/unimos/unimos/features"
	"github.com/unimos/unimos/internal/shareddata"
	"github.com/unimos/unimos/interop"
	"github.com/unimos/unimos/tensor"
)

// officeHome generates the office-home preset once for all tests that
// measure its statistics (seed 2023, the CLI default).
var officeHome = sync.OnceValues(func() (*Result, error) {
	p, err := PresetByName("office-home")
	if err != nil {
		return nil, err
	}
	return Generate(p, 2023)
})

func mustOfficeHome(t *testing.T) *Result {
	t.Helper()
	r, err := officeHome()
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func TestGenerateIsDeterministic(t *testing.T) {
	p, err := PresetByName("tiny")
	if err != nil {
		t.Fatal(err)
	}
	a, err := Generate(p, 7)
	if err != nil {
		t.Fatal(err)
	}
	b, err := Generate(p, 7)
	if err != nil {
		t.Fatal(err)
	}
	for i := range a.Domains {
		if !slices.Equal(a.Domains[i].Labels, b.Domains[i].Labels) {
			t.Errorf("domain %s: labels differ between two runs with the same seed", a.Domains[i].Name)
		}
		if !sameBits(a.Domains[i].Features, b.Domains[i].Features) {
			t.Errorf("domain %s: features differ between two runs with the same seed", a.Domains[i].Name)
		}
		if !sameBits(a.Text[i], b.Text[i]) {
			t.Errorf("domain %s: text features differ between two runs with the same seed", a.Domains[i].Name)
		}
	}

	c, err := Generate(p, 8)
	if err != nil {
		t.Fatal(err)
	}
	for i := range a.Domains {
		if sameBits(a.Domains[i].Features, c.Domains[i].Features) || sameBits(a.Text[i], c.Text[i]) {
			t.Errorf("domain %s: seeds 7 and 8 give the same features", a.Domains[i].Name)
		}
	}
}

func TestDomainsDoNotDependOnEachOther(t *testing.T) {
	// Each domain draws from its own stream, so resizing one domain leaves
	// the others' labels unchanged.
	p, err := PresetByName("tiny")
	if err != nil {
		t.Fatal(err)
	}
	a, err := Generate(p, 3)
	if err != nil {
		t.Fatal(err)
	}
	p.Domains[0].Size *= 2
	b, err := Generate(p, 3)
	if err != nil {
		t.Fatal(err)
	}
	if len(b.Domains[0].Labels) != 2*len(a.Domains[0].Labels) {
		t.Fatalf("resized domain has %d rows, want %d", len(b.Domains[0].Labels), 2*len(a.Domains[0].Labels))
	}
	for i := 1; i < len(a.Domains); i++ {
		if !slices.Equal(a.Domains[i].Labels, b.Domains[i].Labels) || !sameBits(a.Domains[i].Features, b.Domains[i].Features) {
			t.Errorf("domain %s changed when domain %s was resized", a.Domains[i].Name, a.Domains[0].Name)
		}
	}
}

func TestEveryPresetIsWellFormed(t *testing.T) {
	for _, p := range Presets() {
		t.Run(p.Name, func(t *testing.T) {
			// A small copy of the preset: the shape checks do not need the
			// real sizes.
			small, err := p.Scaled(0.02)
			if err != nil {
				t.Fatal(err)
			}
			r, err := Generate(small, 1)
			if err != nil {
				t.Fatal(err)
			}
			k := len(p.Classes)
			if r.Meta.Name != p.Name || r.Meta.Dim != p.Dim || !slices.Equal(r.Meta.Classes, p.Classes) || len(r.Meta.Domains) != len(p.Domains) {
				t.Fatalf("meta %+v does not describe preset %s", r.Meta, p.Name)
			}
			for i, d := range r.Domains {
				spec := small.Domains[i]
				if d.Name != spec.Name || r.Meta.Domains[i] != spec.Name {
					t.Errorf("domain %d is named %q, want %q", i, d.Name, spec.Name)
				}
				if d.DType != features.F16 {
					t.Errorf("domain %s: dtype %s, want F16", d.Name, d.DType)
				}
				if d.Features.Rows != spec.Size || d.Features.Cols != p.Dim || len(d.Labels) != spec.Size {
					t.Errorf("domain %s: features %dx%d with %d labels, want %dx%d", d.Name, d.Features.Rows, d.Features.Cols, len(d.Labels), spec.Size, p.Dim)
				}
				checkUnitRows(t, d.Name+" images", d.Features)
				checkUnitRows(t, d.Name+" text", r.Text[i])
				if r.Text[i].Rows != k || r.Text[i].Cols != p.Dim {
					t.Errorf("domain %s: text %dx%d, want %dx%d", d.Name, r.Text[i].Rows, r.Text[i].Cols, k, p.Dim)
				}
				counts := classCounts(d.Labels, k)
				for c, n := range counts {
					if n == 0 {
						t.Errorf("domain %s: class %d has no image", d.Name, c)
					}
				}
				if got := sum(counts); got != len(d.Labels) {
					t.Errorf("domain %s: %d of %d labels are in [0, %d)", d.Name, got, len(d.Labels), k)
				}
			}
		})
	}
}

func TestClassImbalance(t *testing.T) {
	r := mustOfficeHome(t)
	p, _ := PresetByName("office-home")
	for i, d := range r.Domains {
		counts := classCounts(d.Labels, len(r.Meta.Classes))
		lo, hi := slices.Min(counts), slices.Max(counts)
		// Zipf with exponent a over K = 65 ranks: largest/smallest share is
		// 65^a, about 3.5 for a = 0.3; the floor of one image per class
		// only narrows it slightly.
		want := 0.8 * math.Pow(float64(len(counts)), p.Domains[i].Imbalance)
		t.Logf("%-10s class counts %d..%d (ratio %.1f, Zipf exponent %.1f)", d.Name, lo, hi, float64(hi)/float64(lo), p.Domains[i].Imbalance)
		if float64(hi)/float64(lo) < want {
			t.Errorf("domain %s: class counts %d..%d, ratio below %.1f", d.Name, lo, hi, want)
		}
	}
}

func TestZipfLabels(t *testing.T) {
	rng := newRand(1, "test")
	for _, tc := range []struct {
		n, k     int
		exponent float64
	}{{100, 8, 0}, {103, 8, 0}, {1000, 10, 1}, {65, 65, 0.5}, {2427, 65, 0.5}} {
		labels := zipfLabels(tc.n, tc.k, tc.exponent, rng)
		counts := classCounts(labels, tc.k)
		if sum(counts) != tc.n || len(labels) != tc.n {
			t.Errorf("n=%d k=%d: %d labels, %d in range", tc.n, tc.k, len(labels), sum(counts))
			continue
		}
		// Independent reference: each class gets 1 + (n-k)·w_c/Σw up to
		// rounding, with w = rank^-exponent; the ranks are a permutation,
		// so the sorted counts must match the sorted ideal shares.
		ideal := make([]float64, tc.k)
		var total float64
		for rank := range ideal {
			ideal[rank] = math.Pow(float64(rank+1), -tc.exponent)
			total += ideal[rank]
		}
		slices.Sort(counts)
		slices.Sort(ideal)
		for i := range ideal {
			want := 1 + float64(tc.n-tc.k)*ideal[i]/total
			if math.Abs(float64(counts[i])-want) >= 1 {
				t.Errorf("n=%d k=%d a=%v: sorted count %d is %d, ideal %.2f", tc.n, tc.k, tc.exponent, i, counts[i], want)
			}
		}
	}
}

func TestOrthonormalFrame(t *testing.T) {
	frame := orthonormalFrame(40, 48, newRand(5, "test"))
	for i := range frame {
		for j := range frame {
			want := 0.0
			if i == j {
				want = 1
			}
			if got := dot(frame[i], frame[j]); math.Abs(got-want) > 1e-12 {
				t.Fatalf("frame[%d]·frame[%d] = %g, want %g", i, j, got, want)
			}
		}
	}
}

// TestCalibrationAgainstRealCLIP compares the geometry of the synthetic
// office-home store with real CLIP ViT-B/16 embeddings of 500 COCO
// image-caption pairs. Measured (seed 2023): real gap 0.851, matched cosine
// 0.310, image-image cosine 0.531; synthetic per domain gap 0.850-0.863,
// matched (image, own-class prompt) 0.288-0.342, image-image 0.523-0.563.
func TestCalibrationAgainstRealCLIP(t *testing.T) {
	path := filepath.Join(shareddata.Dir(t, "clip_coco500_modality_gap"), "features_clip.npy")
	pairs, err := interop.ReadNPY(path) // (2, N, D): images, then their captions
	if err != nil {
		t.Fatal(err)
	}
	if len(pairs.Shape) != 3 || pairs.Shape[0] != 2 || pairs.Float32 == nil {
		t.Fatalf("%s: shape %v, want float (2, N, D)", path, pairs.Shape)
	}
	n, d := pairs.Shape[1], pairs.Shape[2]
	images := tensor.FromSlice(n, d, pairs.Float32[:n*d])
	captions := tensor.FromSlice(n, d, pairs.Float32[n*d:])
	pairLabels := make([]int, images.Rows) // caption i matches image i
	for i := range pairLabels {
		pairLabels[i] = i
	}
	real := measureGeometry(images, captions, pairLabels)
	t.Logf("real CLIP (COCO 500): gap %.3f, matched cos %.3f, image-image cos %.3f", real.gap, real.matched, real.imageImage)

	// Tolerances: the synthetic prompts are "a {domain} photo of a {class}."
	// templates, which CLIP embeds closer together than free captions, and
	// domains differ on purpose; these bands still rule out a store without
	// a modality gap (gap near 0 or near 1.1 for random init) or with
	// cosines far from CLIP's.
	const gapTol, matchedTol, imageTol = 0.06, 0.06, 0.06
	r := mustOfficeHome(t)
	for i, d := range r.Domains {
		syn := measureGeometry(d.Features, r.Text[i], d.Labels)
		t.Logf("synthetic office-home %-10s: gap %.3f, matched cos %.3f, image-image cos %.3f", d.Name, syn.gap, syn.matched, syn.imageImage)
		if math.Abs(syn.gap-real.gap) > gapTol {
			t.Errorf("%s: modality gap %.3f, real CLIP %.3f (tolerance %.2f)", d.Name, syn.gap, real.gap, gapTol)
		}
		if math.Abs(syn.matched-real.matched) > matchedTol {
			t.Errorf("%s: matched cosine %.3f, real CLIP %.3f (tolerance %.2f)", d.Name, syn.matched, real.matched, matchedTol)
		}
		if math.Abs(syn.imageImage-real.imageImage) > imageTol {
			t.Errorf("%s: image-image cosine %.3f, real CLIP %.3f (tolerance %.2f)", d.Name, syn.imageImage, real.imageImage, imageTol)
		}
	}
}

// TestZeroShotAccuracyVariesByDomain checks that zero-shot CLIP accuracy on
// the synthetic office-home domains is plausible and domain-dependent, as
// on the real benchmark (CLIP RN50: roughly 72 / 52 / 82 / 83 on Art /
// Clipart / Product / Real_World). Measured (seed 2023): 71.7 / 47.0 / 82.0 /
// 83.4.
func TestZeroShotAccuracyVariesByDomain(t *testing.T) {
	r := mustOfficeHome(t)
	var accs []float64
	for i, d := range r.Domains {
		acc := accuracy(d.Features, d.Labels, r.Text[i])
		t.Logf("%-10s zero-shot accuracy %.1f%%", d.Name, acc)
		if acc < 35 || acc > 92 {
			t.Errorf("%s: zero-shot accuracy %.1f%% outside the plausible band [35, 92]", d.Name, acc)
		}
		accs = append(accs, acc)
	}
	if spread := slices.Max(accs) - slices.Min(accs); spread < 20 {
		t.Errorf("zero-shot accuracy spans only %.1f points across domains, want at least 20", spread)
	}
}

// TestRoomForAdaptation checks that labels carry information that zero-shot
// CLIP misses, so that adaptation has something to gain:
//   - an oracle nearest-class-centroid classifier built from the target's own
//     labels beats zero-shot by at least 8 points on every domain (measured,
//     seed 2023: +12 to +34);
//   - adding the cosine to source class centroids (source labels only) to the
//     zero-shot cosine beats zero-shot on the target by at least 4 points on
//     average (measured: +8).
func TestRoomForAdaptation(t *testing.T) {
	r := mustOfficeHome(t)
	k := len(r.Meta.Classes)
	zeroShot := make([]float64, len(r.Domains))
	centroids := make([]*tensor.Matrix, len(r.Domains))
	for i, d := range r.Domains {
		zeroShot[i] = accuracy(d.Features, d.Labels, r.Text[i])
		centroids[i] = classCentroids(d.Features, d.Labels, k)
		oracle := accuracy(d.Features, d.Labels, centroids[i])
		t.Logf("%-10s zero-shot %.1f%%, oracle nearest centroid %.1f%% (+%.1f)", d.Name, zeroShot[i], oracle, oracle-zeroShot[i])
		if oracle < zeroShot[i]+8 {
			t.Errorf("%s: oracle nearest-centroid accuracy %.1f%% is not 8 points above zero-shot %.1f%%", d.Name, oracle, zeroShot[i])
		}
	}
	// Each domain as target once, with the next domain as source, to keep
	// the test fast.
	var gain float64
	for tgt, d := range r.Domains {
		src := (tgt + 1) % len(r.Domains)
		both := tensor.New(k, r.Meta.Dim)
		for c := 0; c < k; c++ {
			row := both.Row(c)
			for j := range row {
				row[j] = r.Text[tgt].At(c, j) + centroids[src].At(c, j)
			}
		}
		mixed := accuracy(d.Features, d.Labels, both)
		t.Logf("%s -> %s: zero-shot %.1f%%, zero-shot + source centroids %.1f%%", r.Domains[src].Name, d.Name, zeroShot[tgt], mixed)
		gain += (mixed - zeroShot[tgt]) / float64(len(r.Domains))
	}
	if gain < 4 {
		t.Errorf("zero-shot + source centroids gains %.1f points on average over zero-shot, want at least 4", gain)
	}
}

func TestVisionOnlyPartIsInvisibleToText(t *testing.T) {
	// The class information outside the span of the prompts is what zero-shot
	// CLIP cannot use and a trained classifier can: check that a sizeable
	// share of the class centroids' spread lies there.
	r := mustOfficeHome(t)
	k := len(r.Meta.Classes)
	for i, d := range r.Domains {
		span := gramSchmidt(r.Text[i])
		cent := classCentroids(d.Features, d.Labels, k)
		mean := make([]float64, r.Meta.Dim)
		for c := 0; c < k; c++ {
			axpy(mean, 1/float64(k), row64(cent, c))
		}
		var inside, total float64
		for c := 0; c < k; c++ {
			dev := row64(cent, c)
			axpy(dev, -1, mean)
			total += dot(dev, dev)
			for _, u := range span {
				p := dot(dev, u)
				inside += p * p
			}
		}
		outside := 1 - inside/total
		t.Logf("%-10s share of class-centroid spread outside the prompts' span: %.2f", d.Name, outside)
		if outside < 0.3 || outside > 0.9 {
			t.Errorf("%s: %.2f of the class spread lies outside the prompts' span, want 0.3..0.9", d.Name, outside)
		}
	}
}

func TestWriteRoundTrips(t *testing.T) {
	p, err := PresetByName("tiny")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if err := Write(dir, p, 11); err != nil {
		t.Fatal(err)
	}
	want, err := Generate(p, 11)
	if err != nil {
		t.Fatal(err)
	}
	store, err := features.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	if store.Meta.Name != p.Name || store.Meta.Backbone != p.Backbone || store.Meta.Dim != p.Dim ||
		!slices.Equal(store.Meta.Classes, p.Classes) || !slices.Equal(store.Meta.Domains, want.Meta.Domains) {
		t.Fatalf("dataset.json %+v, want %+v", store.Meta, want.Meta)
	}
	for i, name := range store.Meta.Domains {
		d, err := store.Domain(name)
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(d.Labels, want.Domains[i].Labels) {
			t.Errorf("%s: labels read back differ from the generated ones", name)
		}
		// float16 keeps 11 significant bits: |error| <= 2^-11 for |x| <= 1.
		if diff := maxAbsDiff(d.Features, want.Domains[i].Features); diff > 1.0/2048 {
			t.Errorf("%s: features read back differ by up to %g", name, diff)
		}
		text, err := store.Text(name)
		if err != nil {
			t.Fatal(err)
		}
		if !sameBits(text, want.Text[i]) {
			t.Errorf("%s: text features read back differ from the generated ones", name)
		}
	}
}

func TestPresetByName(t *testing.T) {
	names := PresetNames()
	for _, want := range []string{"office-home", "visda", "visda-small", "domainnet126", "domainnet", "tiny"} {
		p, err := PresetByName(want)
		if err != nil {
			t.Errorf("PresetByName(%q): %v", want, err)
			continue
		}
		if p.Name != want || !slices.Contains(names, want) {
			t.Errorf("PresetByName(%q) gave %q; PresetNames %v", want, p.Name, names)
		}
		if err := p.Validate(); err != nil {
			t.Errorf("preset %s does not validate: %v", want, err)
		}
	}
	_, err := PresetByName("office_home")
	if err == nil || !strings.Contains(err.Error(), "office_home") || !strings.Contains(err.Error(), strings.Join(names, ", ")) {
		t.Errorf("unknown preset: error %v should name it and list %v", err, names)
	}
	// Presets returns copies: editing one must not change the next call's.
	a, _ := PresetByName("office-home")
	a.Classes[0] = "changed"
	a.Domains[0].Size = 1
	if b, _ := PresetByName("office-home"); b.Classes[0] != "Drill" || b.Domains[0].Size != 2427 {
		t.Errorf("editing a preset changed the built-in one: %q, %d", b.Classes[0], b.Domains[0].Size)
	}
}

func TestValidateRejectsBadPresets(t *testing.T) {
	base, err := PresetByName("tiny")
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		edit func(p *Preset)
		want string
	}{
		{"no name", func(p *Preset) { p.Name = "" }, "no name"},
		{"one class", func(p *Preset) { p.Classes = p.Classes[:1] }, "need at least 2"},
		{"no domain", func(p *Preset) { p.Domains = nil }, "no domains"},
		{"dim too small", func(p *Preset) { p.Dim = 16 }, "dim 16 too small"},
		{"duplicate class", func(p *Preset) { p.Classes[1] = p.Classes[0] }, `"cat" appears twice`},
		{"duplicate domain", func(p *Preset) { p.Domains[1].Name = p.Domains[0].Name }, `"photo" appears twice`},
		{"path in domain name", func(p *Preset) { p.Domains[0].Name = "a/b" }, "path separator"},
		{"too few images", func(p *Preset) { p.Domains[2].Size = 3 }, "fewer than its 8 classes"},
		{"negative noise", func(p *Preset) { p.Domains[0].Noise = -1 }, "noise -1"},
		{"NaN confusion", func(p *Preset) { p.Domains[0].Confusion = math.NaN() }, "confusion NaN"},
		{"gap cosine above 1", func(p *Preset) { p.Geometry.GapCos = 1.5 }, "GapCos 1.5"},
		{"class rank 1", func(p *Preset) { p.Geometry.ClassRank = 1 }, "ClassRank 1"},
	} {
		p := base
		p.Classes = slices.Clone(base.Classes)
		p.Domains = slices.Clone(base.Domains)
		tc.edit(&p)
		err := p.Validate()
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: error %v, want one containing %q", tc.name, err, tc.want)
		}
		if _, genErr := Generate(p, 1); genErr == nil {
			t.Errorf("%s: Generate accepted an invalid preset", tc.name)
		}
	}
}

func TestScaled(t *testing.T) {
	p, err := PresetByName("office-home")
	if err != nil {
		t.Fatal(err)
	}
	half, err := p.Scaled(0.5)
	if err != nil {
		t.Fatal(err)
	}
	for i, d := range half.Domains {
		if want := int(math.Round(float64(p.Domains[i].Size) / 2)); d.Size != want {
			t.Errorf("%s: scaled size %d, want %d", d.Name, d.Size, want)
		}
	}
	tiny, err := p.Scaled(1e-6)
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range tiny.Domains {
		if d.Size != len(p.Classes) {
			t.Errorf("%s: size %d after scaling to nothing, want one image per class (%d)", d.Name, d.Size, len(p.Classes))
		}
	}
	for _, f := range []float64{0, -1, math.NaN(), math.Inf(1)} {
		if _, err := p.Scaled(f); err == nil {
			t.Errorf("Scaled(%v) accepted a bad factor", f)
		}
	}
}

func BenchmarkGenerateOfficeHome(b *testing.B) {
	p, err := PresetByName("office-home")
	if err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		if _, err := Generate(p, 2023); err != nil {
			b.Fatal(err)
		}
	}
}

// geometry holds the statistics compared with real CLIP.
type geometry struct {
	gap        float64 // ‖mean image − mean text‖
	matched    float64 // mean cosine of each image with its own text row
	imageImage float64 // mean cosine between two different images
}

// measureGeometry computes the statistics of unit-norm images [N, D] and
// texts [T, D], where image i matches text row match[i].
func measureGeometry(images, texts *tensor.Matrix, match []int) geometry {
	mi, mt := meanRow(images), meanRow(texts)
	diff := slices.Clone(mi)
	axpy(diff, -1, mt)
	var matched float64
	for i, j := range match {
		matched += dot(row64(images, i), row64(texts, j))
	}
	// Σ_{i≠j} x_i·x_j = ‖Σ x_i‖² − Σ ‖x_i‖², with unit rows.
	n := float64(images.Rows)
	return geometry{
		gap:        math.Sqrt(dot(diff, diff)),
		matched:    matched / n,
		imageImage: (n*n*dot(mi, mi) - n) / (n * (n - 1)),
	}
}

// accuracy is the percentage of rows of x [N, D] whose highest-dot row of
// protos [K, D] is their label.
func accuracy(x *tensor.Matrix, labels []int, protos *tensor.Matrix) float64 {
	hits := 0
	for i, y := range labels {
		xi := x.Row(i)
		best, bestScore := 0, math.Inf(-1)
		for c := 0; c < protos.Rows; c++ {
			var s float32
			for j, v := range protos.Row(c) {
				s += v * xi[j]
			}
			if float64(s) > bestScore {
				best, bestScore = c, float64(s)
			}
		}
		if best == y {
			hits++
		}
	}
	return 100 * float64(hits) / float64(len(labels))
}

// classCentroids returns the L2-normalised mean of each class's rows [K, D].
func classCentroids(x *tensor.Matrix, labels []int, k int) *tensor.Matrix {
	sums := make([][]float64, k)
	for c := range sums {
		sums[c] = make([]float64, x.Cols)
	}
	for i, y := range labels {
		axpy(sums[y], 1, row64(x, i))
	}
	out := tensor.New(k, x.Cols)
	for c, s := range sums {
		normalize(s)
		storeRow(out.Row(c), s)
	}
	return out
}

// gramSchmidt returns an orthonormal basis of the span of m's rows.
func gramSchmidt(m *tensor.Matrix) [][]float64 {
	var basis [][]float64
	for i := 0; i < m.Rows; i++ {
		v := row64(m, i)
		for _, u := range basis {
			axpy(v, -dot(v, u), u)
		}
		if dot(v, v) > 1e-10 {
			normalize(v)
			basis = append(basis, v)
		}
	}
	return basis
}

func checkUnitRows(t *testing.T, what string, m *tensor.Matrix) {
	t.Helper()
	for i := 0; i < m.Rows; i++ {
		v := row64(m, i)
		if n := math.Sqrt(dot(v, v)); math.Abs(n-1) > 1e-5 {
			t.Errorf("%s: row %d has norm %v", what, i, n)
			return
		}
	}
}

func classCounts(labels []int, k int) []int {
	counts := make([]int, k)
	for _, y := range labels {
		if y >= 0 && y < k {
			counts[y]++
		}
	}
	return counts
}

func sum(v []int) int {
	s := 0
	for _, x := range v {
		s += x
	}
	return s
}

func row64(m *tensor.Matrix, i int) []float64 {
	row := m.Row(i)
	out := make([]float64, len(row))
	for j, v := range row {
		out[j] = float64(v)
	}
	return out
}

func meanRow(m *tensor.Matrix) []float64 {
	mean := make([]float64, m.Cols)
	for i := 0; i < m.Rows; i++ {
		axpy(mean, 1/float64(m.Rows), row64(m, i))
	}
	return mean
}

func sameBits(a, b *tensor.Matrix) bool {
	if a.Rows != b.Rows || a.Cols != b.Cols {
		return false
	}
	for i := 0; i < a.Rows; i++ {
		ra, rb := a.Row(i), b.Row(i)
		for j := range ra {
			if math.Float32bits(ra[j]) != math.Float32bits(rb[j]) {
				return false
			}
		}
	}
	return true
}

func maxAbsDiff(a, b *tensor.Matrix) float64 {
	if a.Rows != b.Rows || a.Cols != b.Cols {
		return math.Inf(1)
	}
	var worst float64
	for i := 0; i < a.Rows; i++ {
		rb := b.Row(i)
		for j, v := range a.Row(i) {
			worst = max(worst, math.Abs(float64(v-rb[j])))
		}
	}
	return worst
}
