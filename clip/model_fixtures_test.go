package clip

import (
	"fmt"
	"math"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/unimos/unimos/safetensors"
	"github.com/unimos/unimos/tensor"
)

// Tolerances suggested by the fixtures' README: their float32 outputs differ
// from a float64 run by at most 8e-6 (intermediates), 2e-6 (features) and
// 2e-5 (logits).
const (
	featureTol = 1e-4
	logitTol   = 1e-3
)

// fixtureModel describes one reference model and its inputs.
type fixtureModel struct {
	name       string // folder under outputs/
	weights    string // path under models/
	resolution int    // pixels_<n>.npy
}

var fixtureModels = []fixtureModel{
	{"vit_tiny", "vit_tiny.safetensors", 32},
	{"rn_tiny", "rn_tiny.safetensors", 64},
	{"vit224_tiny", "vit224_tiny.safetensors", 224},
	{"vit_tiny", "hf_vit_tiny", 32}, // Hugging Face copy of vit_tiny
}

// Row selections of the reference outputs (README, "Expected outputs").
var (
	intermediateImageRows = []int{0, 1}
	intermediateTextRows  = []int{0, 1, 2, 3, 4, 5, 6, 7, 37, 39}
	logitImageRows        = []int{0, 1, 5, 6}
	logitTextRows         = []int{4, 5, 6, 7, 8}
)

func loadFixture(t testing.TB, fm fixtureModel) *Model {
	t.Helper()
	m, err := Load(filepath.Join(referenceDir(t), "models", fm.weights))
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// fixturePixels returns the preprocessed reference images at resolution n.
func fixturePixels(t testing.TB, n int) [][]float32 {
	t.Helper()
	data, shape := readNpyFloat32(t, filepath.Join(referenceDir(t), "preprocess", fmt.Sprintf("pixels_%d.npy", n)))
	if len(shape) != 4 || shape[1] != 3 || shape[2] != n || shape[3] != n {
		t.Fatalf("pixels_%d.npy has shape %v", n, shape)
	}
	images := make([][]float32, shape[0])
	for i := range images {
		images[i] = data[i*3*n*n : (i+1)*3*n*n]
	}
	return images
}

// fixtureTokens returns the 40 reference token rows.
func fixtureTokens(t testing.TB) [][]int32 {
	t.Helper()
	data, shape := readNpyInt64(t, filepath.Join(referenceDir(t), "tokenizer", "tokens.npy"))
	ids := make([][]int32, shape[0])
	for i := range ids {
		ids[i] = make([]int32, shape[1])
		for j := range ids[i] {
			ids[i][j] = int32(data[i*shape[1]+j])
		}
	}
	return ids
}

func pick[T any](all []T, rows []int) []T {
	out := make([]T, len(rows))
	for i, r := range rows {
		out[i] = all[r]
	}
	return out
}

// expected reads outputs/<model>/<file>.npy.
func expected(t testing.TB, model, file string) ([]float32, []int) {
	t.Helper()
	return readNpyFloat32(t, filepath.Join(referenceDir(t), "outputs", model, file+".npy"))
}

// compareOutput fails unless got and want (flattened the same way) agree
// within tol, and logs the largest deviation.
func compareOutput(t *testing.T, what string, got, want []float32, tol float64) {
	t.Helper()
	if len(got) != len(want) {
		t.Errorf("%s: %d values, want %d", what, len(got), len(want))
		return
	}
	worst, at := 0.0, 0
	for i := range got {
		d := math.Abs(float64(got[i]) - float64(want[i]))
		if d > worst || math.IsNaN(d) {
			worst, at = d, i
		}
	}
	if worst > tol || math.IsNaN(worst) {
		t.Errorf("%s: max |diff| %.3g at %d (got %g, want %g), tolerance %g", what, worst, at, got[at], want[at], tol)
		return
	}
	t.Logf("%-28s max |diff| %.2e", what, worst)
}

// flat returns m's elements row-major.
func flat(m *tensor.Matrix) []float32 { return m.Clone().Data }

// channelMajorToNCHW turns a feature map [C, B·H·W] into [B, C, H·W] order.
func channelMajorToNCHW(m *tensor.Matrix, batch int) []float32 {
	hw := m.Cols / batch
	out := make([]float32, 0, m.Rows*m.Cols)
	for b := range batch {
		for c := range m.Rows {
			out = append(out, m.Row(c)[b*hw:(b+1)*hw]...)
		}
	}
	return out
}

// tokensToNCHW turns patch embeddings [B·P, W] into [B, W, P] order.
func tokensToNCHW(m *tensor.Matrix, batch int) []float32 {
	p := m.Rows / batch
	out := make([]float32, 0, m.Rows*m.Cols)
	for b := range batch {
		for c := range m.Cols {
			for i := range p {
				out = append(out, m.At(b*p+i, c))
			}
		}
	}
	return out
}

// recorder returns a probe that keeps a copy of every stage it sees.
func recorder(stages map[string]*tensor.Matrix) probe {
	return func(stage string, m *tensor.Matrix) { stages[stage] = m.Clone() }
}

func TestFixtureFeaturesAndLogits(t *testing.T) {
	tokens := fixtureTokens(t)
	for _, fm := range fixtureModels {
		t.Run(fm.weights, func(t *testing.T) {
			m := loadFixture(t, fm)
			images := fixturePixels(t, fm.resolution)
			img, err := m.EncodeImages(images)
			if err != nil {
				t.Fatal(err)
			}
			txt, err := m.EncodeText(tokens)
			if err != nil {
				t.Fatal(err)
			}
			want, _ := expected(t, fm.name, "image_features")
			compareOutput(t, "image_features", flat(img), want, featureTol)
			want, _ = expected(t, fm.name, "text_features")
			compareOutput(t, "text_features", flat(txt), want, featureTol)

			imgN, txtN := img.Clone(), txt.Clone()
			tensor.NormalizeRows(imgN, 0)
			tensor.NormalizeRows(txtN, 0)
			want, _ = expected(t, fm.name, "image_features_normalized")
			compareOutput(t, "image_features_normalized", flat(imgN), want, featureTol)
			want, _ = expected(t, fm.name, "text_features_normalized")
			compareOutput(t, "text_features_normalized", flat(txtN), want, featureTol)

			// Logits from features of the selected rows, encoded afresh.
			li, err := m.EncodeImages(pick(images, logitImageRows))
			if err != nil {
				t.Fatal(err)
			}
			lt, err := m.EncodeText(pick(tokens, logitTextRows))
			if err != nil {
				t.Fatal(err)
			}
			perImage := m.Logits(li, lt)
			want, _ = expected(t, fm.name, "logits_per_image")
			compareOutput(t, "logits_per_image", flat(perImage), want, logitTol)
			perText := m.Logits(lt, li)
			want, _ = expected(t, fm.name, "logits_per_text")
			compareOutput(t, "logits_per_text", flat(perText), want, logitTol)
		})
	}
}

// referenceRows returns the given rows of a reference output whose last
// dimension is width, flattened.
func referenceRows(all []float32, width int, rows []int) []float32 {
	out := make([]float32, 0, len(rows)*width)
	for _, r := range rows {
		out = append(out, all[r*width:(r+1)*width]...)
	}
	return out
}

// TestFixtureTextIntermediates compares the stages of the text tower with
// the reference's. The tower computes each token row up to its end-of-text
// token only, and ln_final only there (a row-wise map, after the pooling),
// so the reference stages [rows, 77, W] are compared on those positions.
func TestFixtureTextIntermediates(t *testing.T) {
	ids := pick(fixtureTokens(t), intermediateTextRows)
	var packed, eot []int // rows of the reference's [len(ids)·77, W] stages
	for i, row := range ids {
		for p := range poolPosition(row) + 1 {
			packed = append(packed, i*len(row)+p)
		}
		eot = append(eot, i*len(row)+poolPosition(row))
	}
	for _, fm := range fixtureModels {
		t.Run(fm.weights, func(t *testing.T) {
			m := loadFixture(t, fm)
			stages := map[string]*tensor.Matrix{}
			feats, err := m.encodeText(ids, recorder(stages))
			if err != nil {
				t.Fatal(err)
			}
			for _, c := range []struct {
				stage, reference string
				rows             []int // nil: all
			}{
				{"txt_embed", "txt_embed", packed},
				{"txt_block0", "txt_block0", packed},
				{"txt_eot_pooled", "txt_ln_final", eot},
				{"txt_eot_pooled", "txt_eot_pooled", nil},
			} {
				got, ok := stages[c.stage]
				if !ok {
					t.Errorf("no %s stage", c.stage)
					continue
				}
				want, _ := expected(t, fm.name, c.reference)
				if c.rows != nil {
					want = referenceRows(want, got.Cols, c.rows)
				}
				compareOutput(t, c.stage+" ~ "+c.reference, flat(got), want, featureTol)
			}
			plain, err := m.EncodeText(ids)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(feats, plain) {
				t.Error("the features differ with and without the probe")
			}
		})
	}
}

// TestFixtureImageIntermediates compares the stages of the image towers
// with the reference's. The ViT's last block computes the class token only,
// so the reference's img_transformer_out [B, T, W] is compared on position
// 0.
func TestFixtureImageIntermediates(t *testing.T) {
	for _, fm := range fixtureModels {
		t.Run(fm.weights, func(t *testing.T) {
			m := loadFixture(t, fm)
			images := pick(fixturePixels(t, fm.resolution), intermediateImageRows)
			stages := map[string]*tensor.Matrix{}
			feats, err := m.encodeImages(images, recorder(stages))
			if err != nil {
				t.Fatal(err)
			}
			batch := len(images)
			check := func(stage string, got []float32) {
				want, _ := expected(t, fm.name, stage)
				compareOutput(t, stage, got, want, featureTol)
			}
			if m.vit != nil {
				check("img_conv1", tokensToNCHW(stages["img_conv1"], batch))
				for _, stage := range []string{"img_ln_pre", "img_block0", "img_ln_post_cls"} {
					check(stage, flat(stages[stage]))
				}
				tokens := m.vit.grid*m.vit.grid + 1
				classRows := make([]int, batch)
				for b := range classRows {
					classRows[b] = b * tokens
				}
				got := stages["img_transformer_out"]
				want, _ := expected(t, fm.name, "img_transformer_out")
				compareOutput(t, "img_transformer_out (class token)", flat(got), referenceRows(want, got.Cols, classRows), featureTol)
			} else {
				// img_stem_conv1: see TestFixtureResNetStemBatchNorm.
				for _, stage := range []string{"img_stem", "img_layer1", "img_layer2", "img_layer4"} {
					check(stage, channelMajorToNCHW(stages[stage], batch))
				}
			}
			all, _ := expected(t, fm.name, "image_features")
			compareOutput(t, "image_features", flat(feats), all[:batch*m.EmbedDim()], featureTol)
			plain, err := m.EncodeImages(images)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(feats, plain) {
				t.Error("the features differ with and without the probe")
			}
		})
	}
}

// TestFixtureResNetStemBatchNorm checks the folded stem convolution against
// the reference convolution output followed by the file's BatchNorm.
func TestFixtureResNetStemBatchNorm(t *testing.T) {
	fm := fixtureModels[1]
	m := loadFixture(t, fm)
	images := pick(fixturePixels(t, fm.resolution), intermediateImageRows)
	stages := map[string]*tensor.Matrix{}
	if _, err := m.encodeImages(images, recorder(stages)); err != nil {
		t.Fatal(err)
	}
	f, err := safetensors.Open(filepath.Join(referenceDir(t), "models", fm.weights))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	bn := map[string][]float32{}
	for _, p := range []string{"weight", "bias", "running_mean", "running_var"} {
		tt, err := f.Tensor("visual.bn1." + p)
		if err != nil {
			t.Fatal(err)
		}
		if bn[p], err = tt.Float32(); err != nil {
			t.Fatal(err)
		}
	}
	conv, shape := expected(t, fm.name, "img_stem_conv1") // [B, C, H, W], before bn1
	channels, hw := shape[1], shape[2]*shape[3]
	want := make([]float32, len(conv))
	for i, v := range conv {
		c := i / hw % channels
		x := (float64(v) - float64(bn["running_mean"][c])) / math.Sqrt(float64(bn["running_var"][c])+1e-5)
		want[i] = float32(x*float64(bn["weight"][c]) + float64(bn["bias"][c]))
	}
	compareOutput(t, "stem conv1 + bn1", channelMajorToNCHW(stages["img_stem_conv1"], len(images)), want, featureTol)
}

// TestHFLoadEqualsOpenAILoad checks that the Hugging Face copy of vit_tiny
// loads to exactly the same configuration and weights.
func TestHFLoadEqualsOpenAILoad(t *testing.T) {
	openai := loadFixture(t, fixtureModels[0])
	hf := loadFixture(t, fixtureModels[3])
	if !reflect.DeepEqual(openai.Config, hf.Config) {
		t.Fatalf("configs differ:\nOpenAI %+v\nHF     %+v", openai.Config, hf.Config)
	}
	if !reflect.DeepEqual(openai, hf) {
		t.Fatal("weights differ between the OpenAI and Hugging Face loads")
	}
	// Also via the file path, with config.json found beside it.
	byFile, err := Load(filepath.Join(referenceDir(t), "models", "hf_vit_tiny", "model.safetensors"))
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(openai, byFile) {
		t.Fatal("loading model.safetensors by path differs from loading its directory")
	}
}

func TestFixtureConfigs(t *testing.T) {
	text := TextConfig{ContextLength: 77, VocabSize: 49408, Width: 16, Heads: 2, Layers: 2, MLPWidth: 64,
		Activation: QuickGELU, LayerNormEps: 1e-5}
	vit := func(res, patch int) VisionConfig {
		return VisionConfig{Architecture: ViT, ImageResolution: res, Width: 128, Heads: 2, Layers: 2,
			PatchSize: patch, MLPWidth: 512, Activation: QuickGELU, LayerNormEps: 1e-5}
	}
	want := map[string]Config{
		"vit_tiny.safetensors":    {EmbedDim: 32, Vision: vit(32, 8), Text: text},
		"vit224_tiny.safetensors": {EmbedDim: 32, Vision: vit(224, 16), Text: text},
		"hf_vit_tiny":             {EmbedDim: 32, Vision: vit(32, 8), Text: text},
		"rn_tiny.safetensors": {EmbedDim: 32, Text: text, Vision: VisionConfig{Architecture: ModifiedResNet,
			ImageResolution: 64, Width: 8, Heads: 4, ResNetLayers: [4]int{2, 1, 1, 1},
			Activation: QuickGELU, LayerNormEps: 1e-5}},
	}
	for _, fm := range fixtureModels {
		m := loadFixture(t, fm)
		if m.Config != want[fm.weights] {
			t.Errorf("%s: config\n%+v, want\n%+v", fm.weights, m.Config, want[fm.weights])
		}
	}
	m := loadFixture(t, fixtureModels[0])
	if got, want := m.LogitScale(), float32(math.Exp(4.3)); math.Abs(float64(got-want)) > 1e-4 {
		t.Errorf("LogitScale() = %g, want exp(4.3) = %g", got, want)
	}
	if m.InputResolution() != 32 || m.EmbedDim() != 32 || m.ContextLength() != 77 {
		t.Errorf("InputResolution, EmbedDim, ContextLength = %d, %d, %d", m.InputResolution(), m.EmbedDim(), m.ContextLength())
	}
}

// TestFixtureGroupedBatches encodes with tiny group bounds, so that batches
// are split into many groups, and with rows cut right after the end-of-text
// token, which must not change any feature.
func TestFixtureGroupedBatches(t *testing.T) {
	tokens := fixtureTokens(t)
	for _, fm := range fixtureModels[:3] {
		t.Run(fm.weights, func(t *testing.T) {
			m := loadFixture(t, fm)
			m.maxTokenRows, m.maxMapFloats = 40, 1
			img, err := m.EncodeImages(fixturePixels(t, fm.resolution))
			if err != nil {
				t.Fatal(err)
			}
			want, _ := expected(t, fm.name, "image_features")
			compareOutput(t, "image_features (grouped)", flat(img), want, featureTol)

			cut := make([][]int32, len(tokens))
			for i, row := range tokens {
				cut[i] = row[:poolPosition(row)+1]
			}
			txt, err := m.EncodeText(cut)
			if err != nil {
				t.Fatal(err)
			}
			want, _ = expected(t, fm.name, "text_features")
			compareOutput(t, "text_features (grouped, cut)", flat(txt), want, featureTol)
		})
	}
}

// TestEncodeConcurrently checks that one model serves several goroutines at
// once with the results of sequential calls (run with -race).
func TestEncodeConcurrently(t *testing.T) {
	for _, fm := range fixtureModels[:2] {
		m := loadFixture(t, fm)
		images := fixturePixels(t, fm.resolution)
		tokens := fixtureTokens(t)
		wantImg, err := m.EncodeImages(images)
		if err != nil {
			t.Fatal(err)
		}
		wantTxt, err := m.EncodeText(tokens)
		if err != nil {
			t.Fatal(err)
		}
		errs := make(chan error, 4)
		for range cap(errs) {
			go func() {
				img, err := m.EncodeImages(images)
				if err == nil && !reflect.DeepEqual(img, wantImg) {
					err = fmt.Errorf("%s: concurrent image features differ", fm.weights)
				}
				if err == nil {
					var txt *tensor.Matrix
					txt, err = m.EncodeText(tokens)
					if err == nil && !reflect.DeepEqual(txt, wantTxt) {
						err = fmt.Errorf("%s: concurrent text features differ", fm.weights)
					}
				}
				errs <- err
			}()
		}
		for range cap(errs) {
			if err := <-errs; err != nil {
				t.Error(err)
			}
		}
	}
}
