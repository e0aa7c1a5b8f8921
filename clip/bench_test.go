package clip

import (
	"testing"
)

// Full-size configurations of released OpenAI models (ViT-B/16, RN50).
var (
	benchText = TextConfig{ContextLength: 77, VocabSize: 49408, Width: 512, Heads: 8, Layers: 12, MLPWidth: 2048,
		Activation: QuickGELU, LayerNormEps: 1e-5}
	benchViTB16 = Config{EmbedDim: 512, Text: benchText, Vision: VisionConfig{Architecture: ViT, ImageResolution: 224,
		Width: 768, Heads: 12, Layers: 12, PatchSize: 16, MLPWidth: 3072, Activation: QuickGELU, LayerNormEps: 1e-5}}
	benchRN50 = Config{EmbedDim: 1024, Text: benchText, Vision: VisionConfig{Architecture: ModifiedResNet,
		ImageResolution: 224, Width: 64, Heads: 32, ResNetLayers: [4]int{3, 4, 6, 3}, Activation: QuickGELU, LayerNormEps: 1e-5}}
)

func randomModel(b *testing.B, cfg Config) *Model {
	b.Helper()
	m, err := newModel(cfg, randomSource{newTestRand(1)}, "random")
	if err != nil {
		b.Fatal(err)
	}
	return m
}

func benchmarkImages(b *testing.B, cfg Config) {
	m := randomModel(b, cfg)
	rng := newTestRand(2)
	n := cfg.Vision.ImageResolution
	images := make([][]float32, 8)
	for i := range images {
		images[i] = randomMatrix(rng, 3*n, n).Data
	}
	b.ResetTimer()
	for b.Loop() {
		if _, err := m.EncodeImages(images); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(len(images)*b.N)/b.Elapsed().Seconds(), "images/s")
}

// BenchmarkEncodeImagesViTB16 encodes a batch of 8 images at 224 px.
func BenchmarkEncodeImagesViTB16(b *testing.B) { benchmarkImages(b, benchViTB16) }

// BenchmarkEncodeImagesRN50 encodes a batch of 8 images at 224 px.
func BenchmarkEncodeImagesRN50(b *testing.B) { benchmarkImages(b, benchRN50) }

// officeHomeClasses are the 65 Office-Home categories, for prompts of
// realistic length.
var officeHomeClasses = []string{"Alarm Clock", "Backpack", "Batteries", "Bed", "Bike", "Bottle", "Bucket",
	"Calculator", "Calendar", "Candles", "Chair", "Clipboards", "Computer", "Couch", "Curtains", "Desk Lamp",
	"Drill", "Eraser", "Exit Sign", "Fan", "File Cabinet", "Flipflops", "Flowers", "Folder", "Fork", "Glasses",
	"Hammer", "Helmet", "Kettle", "Keyboard", "Knives", "Lamp Shade", "Laptop", "Marker", "Monitor", "Mop",
	"Mouse", "Mug", "Notebook", "Oven", "Pan", "Paper Clip", "Pen", "Pencil", "Postit Notes", "Printer",
	"Push Pin", "Radio", "Refrigerator", "Ruler", "Scissors", "Screwdriver", "Shelf", "Sink", "Sneakers", "Soda",
	"Speaker", "Spoon", "TV", "Table", "Telephone", "ToothBrush", "Toys", "Trash Can", "Webcam"}

// BenchmarkEncodeText encodes 65 prompts "a clipart photo of a {class}."
// with the text tower of ViT-B/16 (width 512, 12 layers).
func BenchmarkEncodeText(b *testing.B) {
	m := randomModel(b, benchViTB16)
	prompts := make([]string, len(officeHomeClasses))
	for i, c := range officeHomeClasses {
		prompts[i] = "a clipart photo of a " + c + "."
	}
	tok := mustDefaultTokenizer(b)
	ids, err := tok.Tokenize(prompts, m.ContextLength(), true)
	if err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for b.Loop() {
		if _, err := m.EncodeText(ids); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(len(ids)*b.N)/b.Elapsed().Seconds(), "prompts/s")
}
