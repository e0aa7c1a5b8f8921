package clip

import (
	"bytes"
	"fmt"
	"os"
	"runtime"
	"runtime/debug"
	"slices"
	"strconv"
	"testing"

	"github.com/unimos/unimos/safetensors"
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
	encodeBatches(b, randomModel(b, cfg))
}

// encodeBatches times m encoding a batch of 8 random images and reports the
// images per second and the milliseconds per image.
func encodeBatches(b *testing.B, m *Model) {
	rng := newTestRand(2)
	n := m.InputResolution()
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
	perImage := b.Elapsed().Seconds() / float64(len(images)*b.N)
	b.ReportMetric(1/perImage, "images/s")
	b.ReportMetric(1000*perImage, "ms/image")
}

// BenchmarkEncodeImagesViTB16 encodes a batch of 8 images at 224 px.
func BenchmarkEncodeImagesViTB16(b *testing.B) { benchmarkImages(b, benchViTB16) }

// BenchmarkEncodeImagesRN50 encodes a batch of 8 images at 224 px.
func BenchmarkEncodeImagesRN50(b *testing.B) { benchmarkImages(b, benchRN50) }

// BenchmarkEncodeImagesViTB16FromF16 loads a ViT-B/16 checkpoint stored in
// F16, as the released ones are, and encodes batches of 8 images at 224 px.
// On Linux it also reports the process's peak resident memory from the
// start of Load to the last batch: the mapped file, the float32 weights of
// both towers and the activations.
func BenchmarkEncodeImagesViTB16FromF16(b *testing.B) {
	i := slices.IndexFunc(releasedModels, func(r releasedModel) bool { return r.name == "ViT-B/16" })
	path := writeRandomCheckpoint(b, releasedModels[i], safetensors.F16)
	peak := resetPeakRSS()
	m, err := Load(path)
	if err != nil {
		b.Fatal(err)
	}
	encodeBatches(b, m)
	if peak {
		b.ReportMetric(peakRSSMiB(b), "peak-RSS-MiB")
	}
}

// writeRandomCheckpoint writes random weights of the released model r in
// OpenAI naming and the given dtype, and returns the file's path.
func writeRandomCheckpoint(b *testing.B, r releasedModel, dtype safetensors.DType) string {
	b.Helper()
	src := randomSource{newTestRand(3)}
	var ts []*safetensors.Tensor
	for name, shape := range r.shapes() {
		if bookkeeping(name) {
			continue
		}
		v, _ := src.read(name, shape)
		t, err := safetensors.FromFloat32(name, dtype, shape, v)
		if err != nil {
			b.Fatal(err)
		}
		ts = append(ts, t)
	}
	slices.SortFunc(ts, func(x, y *safetensors.Tensor) int { return bytes.Compare([]byte(x.Name), []byte(y.Name)) })
	return writeModel(b, "model.safetensors", ts, nil, nil)
}

// resetPeakRSS returns the memory the process has freed to the kernel and
// resets the kernel's peak resident set size (VmHWM), so that the peak
// measures what comes next. It reports whether the kernel allowed the reset.
func resetPeakRSS() bool {
	runtime.GC()
	debug.FreeOSMemory()
	return os.WriteFile("/proc/self/clear_refs", []byte("5"), 0) == nil
}

// peakRSSMiB returns VmHWM from /proc/self/status, in MiB.
func peakRSSMiB(b *testing.B) float64 {
	status, err := os.ReadFile("/proc/self/status")
	if err != nil {
		b.Fatal(err)
	}
	for line := range bytes.Lines(status) {
		if rest, ok := bytes.CutPrefix(line, []byte("VmHWM:")); ok {
			kb, err := strconv.Atoi(string(bytes.TrimSuffix(bytes.TrimSpace(rest), []byte(" kB"))))
			if err != nil {
				b.Fatal(err)
			}
			return float64(kb) / 1024
		}
	}
	b.Fatal("no VmHWM in /proc/self/status")
	return 0
}

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

// BenchmarkConv3x3 times the 3×3, stride-1 convolutions of RN50 on a batch
// of 8 images, through im2col and GEMM and through Winograd's F(4×4, 3×3),
// reporting GFLOP/s of the direct convolution (2·Cout·Cin·9 per output).
func BenchmarkConv3x3(b *testing.B) {
	rng := newTestRand(5)
	for _, shape := range []struct{ channels, side int }{{32, 112}, {64, 56}, {128, 28}, {256, 14}, {512, 7}} {
		for _, method := range []string{"im2col", "winograd"} {
			b.Run(fmt.Sprintf("%d@%d/%s", shape.channels, shape.side, method), func(b *testing.B) {
				const batch = 8
				c, n := shape.channels, shape.side*shape.side
				x := featureMap{m: randomMatrix(rng, c, batch*n), batch: batch, height: shape.side, width: shape.side}
				conv := conv2d{w: randomMatrix(rng, c, c*9), b: make([]float32, c), kernel: 3, stride: 1, padding: 1}
				if method == "winograd" {
					conv.winograd = winogradFilters(conv.w)
				}
				var ws workspace
				for b.Loop() {
					ws.release(conv.apply(x, true, &ws))
				}
				b.ReportMetric(2*float64(c*c*9*batch*n)*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
			})
		}
	}
}
