package tensor

import (
	"fmt"
	"math/rand/v2"
	"os"
	"testing"
)

// reportPeakFractions adds the fraction of the machine's f32 and bf16 peaks
// to a benchmark that reported GFLOP/s, when UNIMOS_PEAK gives them as
// /work/shared/tools/peak.c prints them ("352 172": f32 FMA and VDPBF16PS
// GFLOP/s on every core).
func reportPeakFractions(b *testing.B, gflops float64) {
	var f32, bf16 float64
	if _, err := fmt.Sscan(os.Getenv("UNIMOS_PEAK"), &f32, &bf16); err != nil || f32 <= 0 || bf16 <= 0 {
		return
	}
	b.ReportMetric(gflops/f32, "of-f32-peak")
	b.ReportMetric(gflops/bf16, "of-bf16-peak")
}

// BenchmarkGemmBF16 compares the bf16 kernel with the Go backend's f32 one
// on the ViT-B/16 shapes of BenchmarkGemm and a large square, M×K×N, on the
// default threads (GOMAXPROCS).
func BenchmarkGemmBF16(b *testing.B) {
	skipWithoutBF16(b)
	shapes := [][3]int{{197, 768, 2304}, {1576, 768, 3072}, {1576, 3072, 768}, {2048, 2048, 2048}}
	for _, s := range shapes {
		for _, gc := range []gemmCase{{name: "f32", be: newGoBackend()}, {name: "bf16", be: goBackend{kernelBF16}}} {
			b.Run(fmt.Sprintf("%dx%dx%d/%s", s[0], s[1], s[2], gc.name), func(b *testing.B) {
				m, k, n := s[0], s[1], s[2]
				rng := rand.New(rand.NewPCG(3, 4))
				x, w, y := randomCompact(rng, m, k), randomCompact(rng, n, k), New(m, n)
				for b.Loop() {
					gemmWith(gc.be, 0, false, true, 1, x, w, 0, y)
				}
				gflops := 2 * float64(m) * float64(n) * float64(k) * float64(b.N) / b.Elapsed().Seconds() / 1e9
				b.ReportMetric(gflops, "GFLOP/s")
				reportPeakFractions(b, gflops)
			})
		}
	}
}

// BenchmarkMicroKernelBF16 times the f32 and bf16 micro-kernels alone, on
// one thread, on the 12×32×256 tile product from L1 that auto's
// calibration times: the ceiling of each kernel, without packing. The peak
// fractions are of one core's share (half the two-core peak here).
func BenchmarkMicroKernelBF16(b *testing.B) {
	skipWithoutBF16(b)
	const k = 256
	for _, kc := range []struct {
		name  string
		mk    *microKernel
		steps int
	}{{"f32", kernels[0], k}, {"bf16", kernelBF16, k / 2}} {
		b.Run(kc.name, func(b *testing.B) {
			mk := kc.mk
			a, bp, c := make([]float32, mk.mr*kc.steps), make([]float32, mk.nr*kc.steps), make([]float32, mk.mr*mk.nr)
			for b.Loop() {
				mk.run(kc.steps, a, bp, c, mk.nr, 1, 0)
			}
			gflops := 2 * float64(mk.mr*mk.nr*k) * float64(b.N) / b.Elapsed().Seconds() / 1e9
			b.ReportMetric(gflops, "GFLOP/s")
			reportPeakFractions(b, gflops*float64(Threads()))
		})
	}
}
