package tensor

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"
)

// benchBackends returns the backends to benchmark by name; OpenBLAS is
// left out, with a note in the log, where it cannot be loaded.
func benchBackends(b *testing.B) []gemmCase {
	cases := []gemmCase{{name: "go", be: newGoBackend()}}
	if ob, err := loadOpenBLAS(); err == nil {
		cases = append(cases, gemmCase{name: "openblas", be: ob})
	} else {
		b.Logf("OpenBLAS not benchmarked: %v", err)
	}
	return cases
}

func randomCompact(rng *rand.Rand, r, c int) *Matrix {
	m := New(r, c)
	for i := range m.Data {
		m.Data[i] = float32(rng.Float64()*2 - 1)
	}
	return m
}

// benchLinear times y[m, n] = x[m, k]·w[n, k]ᵀ, the Linear-layer product,
// and reports GFLOP/s.
func benchLinear(b *testing.B, gc gemmCase, m, k, n int) {
	rng := rand.New(rand.NewPCG(3, 4))
	x, w, y := randomCompact(rng, m, k), randomCompact(rng, n, k), New(m, n)
	for b.Loop() {
		gemmWith(gc.be, gc.threads, false, true, 1, x, w, 0, y)
	}
	b.ReportMetric(2*float64(m)*float64(n)*float64(k)*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
}

// BenchmarkGemm times the training shapes (batch 64 or 32 through 512- and
// 1024-wide layers) and the ViT-B/16 shapes (197 tokens × 768 → QKV 2304;
// a batch of 8 images, 1576 tokens, through the 3072-wide MLP), M×K×N, with
// the default thread policy.
func BenchmarkGemm(b *testing.B) {
	shapes := [][3]int{{64, 1024, 512}, {64, 512, 512}, {32, 512, 512}, {197, 768, 2304}, {1576, 768, 3072}, {1576, 3072, 768}}
	for _, gc := range benchBackends(b) {
		for _, s := range shapes {
			b.Run(fmt.Sprintf("%s/%dx%dx%d", gc.name, s[0], s[1], s[2]), func(b *testing.B) {
				benchLinear(b, gc, s[0], s[1], s[2])
			})
		}
	}
}

// BenchmarkGemmThreads compares one thread with two on square-ish products
// of growing size; it is where the parallelMinFlops thresholds come from.
func BenchmarkGemmThreads(b *testing.B) {
	for _, gc := range benchBackends(b) {
		for _, s := range [][3]int{{16, 64, 64}, {32, 128, 128}, {16, 256, 256}, {32, 256, 256}, {64, 256, 256}, {32, 512, 512}, {64, 512, 512}, {64, 1024, 512}} {
			for _, threads := range []int{1, 2} {
				gc.threads = threads
				b.Run(fmt.Sprintf("%s/%dx%dx%d/threads=%d", gc.name, s[0], s[1], s[2], threads), func(b *testing.B) {
					benchLinear(b, gc, s[0], s[1], s[2])
				})
			}
		}
	}
}

// BenchmarkGemmOverhead times a 1×1×1 product through the public Gemm: the
// per-call cost of validation, dispatch and, for OpenBLAS, the foreign call.
func BenchmarkGemmOverhead(b *testing.B) {
	x, w, y := FromSlice(1, 1, []float32{2}), FromSlice(1, 1, []float32{3}), New(1, 1)
	for _, gc := range benchBackends(b) {
		b.Run(gc.name, func(b *testing.B) {
			for b.Loop() {
				gemmWith(gc.be, 0, false, true, 1, x, w, 0, y)
			}
		})
	}
}

// BenchmarkKernels times the element-wise kernels on ViT-B/16 sized inputs
// (a batch of 8 images: 1576 tokens × 768 features, 1576 × 3072 MLP
// activations, 12 heads × 197 × 197 attention scores).
func BenchmarkKernels(b *testing.B) {
	rng := rand.New(rand.NewPCG(7, 8))
	x768, x3072, scores := randomCompact(rng, 1576, 768), randomCompact(rng, 1576, 3072), randomCompact(rng, 12*197, 197)
	gamma, beta := make([]float32, 768), make([]float32, 768)
	for i := range gamma {
		gamma[i], beta[i] = 1, 0
	}
	for _, bc := range []struct {
		name string
		x    *Matrix
		run  func(dst, x *Matrix)
	}{
		{"LayerNorm/1576x768", x768, func(d, x *Matrix) { LayerNorm(d, x, gamma, beta, 1e-5) }},
		{"Softmax/12x197x197", scores, Softmax},
		{"LogSoftmax/12x197x197", scores, LogSoftmax},
		{"GELU/1576x3072", x3072, GELU},
		{"QuickGELU/1576x3072", x3072, QuickGELU},
		{"Sigmoid/1576x3072", x3072, Sigmoid},
		{"Exp/1576x3072", x3072, Exp},
		{"ReLU/1576x3072", x3072, ReLU},
		{"AddBias/1576x3072", x3072, func(d, x *Matrix) { AddBias(d, x, x.Row(0)) }},
		{"Add/1576x3072", x3072, func(d, x *Matrix) { Add(d, x, x) }},
	} {
		b.Run(bc.name, func(b *testing.B) {
			dst := New(bc.x.Rows, bc.x.Cols)
			for b.Loop() {
				bc.run(dst, bc.x)
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(len(dst.Data)), "ns/elem")
		})
	}
}

// BenchmarkKernelThreads compares one goroutine with two, bypassing the
// elementwiseParallelMin threshold, on growing inputs of a cheap
// memory-bound kernel (Add, cost 1) and of the costliest (GELU, cost 14);
// it is where the threshold comes from.
func BenchmarkKernelThreads(b *testing.B) {
	rng := rand.New(rand.NewPCG(9, 10))
	for _, n := range []int{1 << 12, 1 << 14, 1 << 16, 1 << 18} {
		x, y, dst := randomCompact(rng, 1, n).Data, randomCompact(rng, 1, n).Data, make([]float32, n)
		for _, k := range []struct {
			name string
			run  func(lo, hi int)
		}{
			{"Add", func(lo, hi int) {
				for i := lo; i < hi; i++ {
					dst[i] = x[i] + y[i]
				}
			}},
			{"GELU", func(lo, hi int) { geluSlice(dst[lo:hi], x[lo:hi]) }},
		} {
			for _, threads := range []int{1, 2} {
				b.Run(fmt.Sprintf("%s/n=%d/threads=%d", k.name, n, threads), func(b *testing.B) {
					for b.Loop() {
						parallel(threads, func(p int) { k.run(p*n/threads, (p+1)*n/threads) })
					}
				})
			}
		}
	}
}

// BenchmarkExp compares FastExp's row form with math.Exp.
func BenchmarkExp(b *testing.B) {
	x := make([]float32, 4096)
	for i := range x {
		x[i] = float32(i%200-100) * 0.37
	}
	y := make([]float32, len(x))
	b.Run("expSlice", func(b *testing.B) {
		for b.Loop() {
			expSlice(y, x)
		}
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(x)), "ns/elem")
	})
	b.Run("math.Exp", func(b *testing.B) {
		for b.Loop() {
			for i, v := range x {
				y[i] = float32(math.Exp(float64(v)))
			}
		}
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(x)), "ns/elem")
	})
}

// BenchmarkGemmThenKernel alternates a two-thread GEMM with a two-goroutine
// element-wise kernel on its output, as a transformer MLP does (QKV
// projection shape, then GELU). After a threaded GEMM OpenBLAS's workers
// spin waiting for more work; this measures what that costs the Go kernel
// that follows.
func BenchmarkGemmThenKernel(b *testing.B) {
	rng := rand.New(rand.NewPCG(11, 12))
	x, w, y := randomCompact(rng, 197, 768), randomCompact(rng, 2304, 768), New(197, 2304)
	for _, gc := range benchBackends(b) {
		b.Run(gc.name, func(b *testing.B) {
			for b.Loop() {
				gemmWith(gc.be, 2, false, true, 1, x, w, 0, y)
				GELU(y, y)
			}
		})
	}
}
