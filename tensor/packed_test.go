package tensor

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"golang.org/x/sys/cpu"
)

// TestGemmPackedMatchesGemm checks that products with a Packed weight give
// Gemm's bits on the Go backend (on one and two threads, both op(A)), that
// Repack brings changed rows into the panels, and that on OpenBLAS, or after
// a switch of backend, GemmPacked falls back to Gemm.
func TestGemmPackedMatchesGemm(t *testing.T) {
	defer UseBackend(envBackendName())
	defer SetThreads(0)
	if err := UseBackend(BackendGo); err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(3, 4))
	// (m, n, k): W is n×k; k past one k-block (kc 384) and n past a panel
	// edge exercise the block offsets and the zero lanes.
	for _, shape := range [][3]int{{1, 1, 1}, {64, 1024, 1024}, {5, 37, 400}, {13, 70, 769}, {100, 33, 385}, {7, 65, 256}} {
		m, n, k := shape[0], shape[1], shape[2]
		w := randomMatrix(rng, n, k, 3).view // strided: panels must follow W's stride
		packed := Pack(w)
		if packed.data == nil {
			t.Fatal("Pack kept no panels on the Go backend")
		}
		for _, transA := range []bool{false, true} {
			a := randomCompact(rng, m, k)
			if transA {
				a = randomCompact(rng, k, m)
			}
			for _, threads := range []int{1, 2} {
				SetThreads(threads)
				where := fmt.Sprintf("m %d n %d k %d transA %v, %d threads", m, n, k, transA, threads)
				samePacked(t, where, transA, a, packed)

				// Change a panel-aligned band of rows, as an optimizer step
				// does, and repack only those.
				r0 := min(packed.RowAlign(), n-1) / packed.RowAlign() * packed.RowAlign()
				r1 := min(r0+packed.RowAlign(), n)
				for i := r0; i < r1; i++ {
					for j := range k {
						w.Set(i, j, float32(rng.Float64()*2-1))
					}
				}
				packed.Repack(r0, r1)
				samePacked(t, where+", after Repack", transA, a, packed)
			}
		}
	}

	t.Run("products read the panels", func(t *testing.T) {
		w := randomCompact(rng, 40, 50)
		packed := Pack(w)
		packed.data[0]++ // W[0][0] as the panels hold it
		a, want, got := randomCompact(rng, 3, 50), New(3, 40), New(3, 40)
		Gemm(false, true, 1, a, w, 0, want)
		GemmPacked(false, 1, a, packed, 0, got)
		if got.At(0, 0) == want.At(0, 0) || got.At(0, 1) != want.At(0, 1) {
			t.Errorf("C[0][0], C[0][1] = %v, %v from changed panels; Gemm gives %v, %v", got.At(0, 0), got.At(0, 1), want.At(0, 0), want.At(0, 1))
		}
	})

	t.Run("bf16 products", func(t *testing.T) {
		if !cpu.X86.HasAVX512BF16 {
			t.Skip("no AVX512_BF16: products are f32 whatever the precision")
		}
		w := randomCompact(rng, 40, 50)
		packed := Pack(w) // f32 panels
		defer SetPrecision(PrecisionBF16)()
		samePacked(t, "f32 panels under bf16 precision", false, randomCompact(rng, 9, 50), packed)
	})

	t.Run("misaligned Repack", func(t *testing.T) {
		defer func() {
			if recover() == nil {
				t.Error("Repack(1, 33) of a 64-row weight did not panic")
			}
		}()
		Pack(randomCompact(rng, 64, 8)).Repack(1, 33)
	})

	t.Run("openblas", func(t *testing.T) {
		w := randomCompact(rng, 40, 50)
		packedOnGo := Pack(w)
		if err := UseBackend(BackendOpenBLAS); err != nil {
			t.Skipf("OpenBLAS half skipped: %v", err)
		}
		if packed := Pack(w); packed.data != nil {
			t.Error("Pack kept panels on OpenBLAS, which packs by itself")
		}
		a := randomCompact(rng, 9, 50)
		samePacked(t, "packed on OpenBLAS", false, a, Pack(w))
		samePacked(t, "packed on Go, multiplied on OpenBLAS", false, a, packedOnGo)
	})
}

// samePacked requires GemmPacked(transA, …, w) to equal Gemm(transA, true,
// …, w.W) bit for bit, on a C holding values (beta 0.5 reads them).
func samePacked(t *testing.T, where string, transA bool, a *Matrix, w *Packed) {
	t.Helper()
	m := a.Rows
	if transA {
		m = a.Cols
	}
	want, got := New(m, w.W.Rows), New(m, w.W.Rows)
	for i := range want.Data {
		want.Data[i] = float32(i%7) - 3
		got.Data[i] = want.Data[i]
	}
	Gemm(transA, true, 1.5, a, w.W, 0.5, want)
	GemmPacked(transA, 1.5, a, w, 0.5, got)
	for i := range want.Data {
		if math.Float32bits(want.Data[i]) != math.Float32bits(got.Data[i]) {
			t.Fatalf("%s: element %d is %v, Gemm gives %v", where, i, got.Data[i], want.Data[i])
		}
	}
}

// TestTransposeBlocks8 checks the vector transposing copy against its
// definition, dst[s·dstStride+i] = src[i·srcStride+s], for step counts
// around its 8-step blocks and one to four groups of eight lanes, leaving
// the rest of dst untouched.
func TestTransposeBlocks8(t *testing.T) {
	for _, c := range []struct{ lanes, steps, srcStride, dstStride int }{
		{8, 7, 9, 8}, {8, 8, 8, 8}, {8, 9, 11, 12}, {16, 24, 30, 32}, {24, 31, 33, 32}, {32, 384, 1024, 32}, {8, 385, 400, 12},
	} {
		src := make([]float32, (c.lanes-1)*c.srcStride+c.steps)
		for i := range src {
			src[i] = float32(i)
		}
		dst := make([]float32, (c.steps-1)*c.dstStride+c.lanes)
		for i := range dst {
			dst[i] = -1
		}
		done := transposeBlocks8(dst, c.dstStride, src, c.srcStride, c.lanes, c.steps)
		if cpu.X86.HasAVX2 && cpu.X86.HasFMA && done != c.steps&^7 {
			t.Errorf("%+v: wrote %d steps, want %d", c, done, c.steps&^7)
		}
		for s := range c.steps {
			for i := range c.lanes {
				want := float32(-1)
				if s < done {
					want = src[i*c.srcStride+s]
				}
				if got := dst[s*c.dstStride+i]; got != want {
					t.Fatalf("%+v: dst[step %d, lane %d] = %v, want %v", c, s, i, got, want)
				}
			}
		}
	}
}

// TestGemmFlops checks the product counter: 2·m·n·k per product, packed
// ones included, nothing for products with nothing to multiply.
func TestGemmFlops(t *testing.T) {
	a, w, c := New(3, 5), New(7, 5), New(3, 7)
	before := GemmFlops()
	Gemm(false, true, 1, a, w, 0, c)
	GemmPacked(false, 1, a, Pack(w), 0, c)
	Gemm(false, true, 0, a, w, 1, c) // alpha 0: C scaled, no product
	if got, want := GemmFlops()-before, uint64(2*2*3*7*5); got != want {
		t.Errorf("GemmFlops rose by %d, want %d", got, want)
	}
}

// BenchmarkRepack times repacking a 1024×1024 weight (a UniMoS separator's
// share of an optimizer step), in ns per element.
func BenchmarkRepack(b *testing.B) {
	defer UseBackend(envBackendName())
	if err := UseBackend(BackendGo); err != nil {
		b.Fatal(err)
	}
	p := Pack(randomCompact(rand.New(rand.NewPCG(1, 1)), 1024, 1024))
	for b.Loop() {
		p.Repack(0, 1024)
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/(1024*1024), "ns/element")
}
