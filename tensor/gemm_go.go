package tensor

import (
	"fmt"
	"sync"
)

// goBackend is the GEMM written in Go: the operands are packed into cache-sized
// blocks laid out for a register-tile micro-kernel (the BLIS/GotoBLAS
// scheme), and large products are split across threads by blocks of C.
type goBackend struct{ mk *microKernel }

// goParallelMinFlops is where two goroutines start to beat one for the Go
// backend (BenchmarkGemmThreads; docs/benchmarks.md): each thread packs the
// shared operand itself, so the split pays off later than OpenBLAS's, at
// about 32×512×512 (16.8 MFLOP).
const goParallelMinFlops = 16 << 20

func (g goBackend) describe(threads int) string {
	return fmt.Sprintf("go (%s kernel, %d threads)", g.mk.name, threads)
}

func (goBackend) parallelMinFlops() int { return goParallelMinFlops }

func (g goBackend) gemm(transA, transB bool, alpha float32, a, b *Matrix, beta float32, c *Matrix, threads int) {
	gemmBlocked(g.mk, c.Rows, c.Cols, kOf(a, transA), alpha, operandA(a, transA), operandB(b, transB),
		beta, c.Data, c.Stride, threads)
}

// kOf returns the inner dimension of a product whose left factor is op(a).
func kOf(a *Matrix, transA bool) int {
	if transA {
		return a.Rows
	}
	return a.Cols
}

// microKernel is a register-tile kernel and the cache blocking tuned for it.
type microKernel struct {
	name string
	// mr×nr is the register tile of C; kc, mc and nc are the block sizes of
	// the k, m and n loops: a kc×nr micro-panel of B stays in L1 or L2
	// while the kernel sweeps an mc×kc block of A held in L2, and a kc×nc
	// panel of B stays in L3. Tuned on the benchmark machine.
	mr, nr, kc, mc, nc int
	// run sets the mr×nr tile c (row stride ldc) to alpha·a·b + beta·c,
	// where a is a packed mr-wide panel and b a packed nr-wide panel, both
	// kc steps long. beta == 0 must not read c.
	run func(kc int, a, b, c []float32, ldc int, alpha, beta float32)
	// bf16Pairs marks the bf16 kernel, whose panels hold pairs of steps in
	// each 32-bit slot (see microKernel.panels); run's kc then counts pairs.
	bf16Pairs bool
}

// newGoBackend returns the Go backend with the fastest micro-kernel this CPU
// supports, the first entry of kernels.
func newGoBackend() goBackend { return goBackend{kernels[0]} }

// operand describes op(X) for packing. Each packed panel runs along
// "lanes" (rows of op(A), columns of op(B)) and "steps" (the k dimension).
// Element (lane l, step s) is data[l*stride+s], or data[s*stride+l] when
// lanesContiguous.
type operand struct {
	data            []float32
	stride          int
	lanesContiguous bool
	// packed, when not nil, already holds this operand in panels, lane l0
	// and step s0 of it being this operand's lane 0 and step 0 (a weight's
	// Packed, see GemmPacked).
	packed *Packed
	l0, s0 int
}

func operandA(a *Matrix, transA bool) operand {
	return operand{data: a.Data, stride: a.Stride, lanesContiguous: transA}
}

func operandB(b *Matrix, transB bool) operand {
	return operand{data: b.Data, stride: b.Stride, lanesContiguous: !transB}
}

// shift returns the operand whose lane 0 and step 0 are lane l and step s.
func (o operand) shift(l, s int) operand {
	if o.packed != nil {
		o.l0, o.s0 = o.l0+l, o.s0+s
		return o
	}
	if o.lanesContiguous {
		l, s = s, l
	}
	o.data = o.data[l*o.stride+s:]
	return o
}

// panels returns lanes×steps of o in this kernel's micro-panels of width w,
// and the number of steps they hold (pairs of steps for the bf16 kernel):
// packed into dst, or, for an operand kept packed (f32 panels, see
// GemmPacked), its panels themselves.
func (mk *microKernel) panels(o operand, dst []float32, lanes, steps, w int) ([]float32, int) {
	switch {
	case o.packed != nil:
		return o.packed.panels(o.l0, o.s0, lanes, steps), steps
	case mk.bf16Pairs:
		return dst, o.packBF16Pairs(dst, lanes, steps, w)
	}
	o.pack(dst, lanes, steps, w)
	return dst, steps
}

// pack copies lanes×steps of o into consecutive micro-panels of width w:
// panel q holds lanes [q·w, q·w+w) step by step, dst[q·w·steps + s·w + l].
// Lanes past the end are zero, so the micro-kernel always computes whole
// tiles.
func (o operand) pack(dst []float32, lanes, steps, w int) {
	for l0 := 0; l0 < lanes; l0 += w {
		nl := min(w, lanes-l0)
		panel := dst[l0*steps : (l0+w)*steps]
		if o.lanesContiguous {
			for s := range steps {
				d := panel[s*w : s*w+w]
				copy(d, o.data[s*o.stride+l0:][:nl])
				clear(d[nl:])
			}
			continue
		}
		// Each lane is a contiguous row of the source: transpose them eight
		// at a time, so that every step writes eight adjacent floats (the
		// vector kernel takes the leading steps of all whole groups of
		// eight lanes at once).
		done := transposeBlocks8(panel, w, o.data[l0*o.stride:], o.stride, nl&^7, steps)
		l := 0
		for ; l+8 <= nl; l += 8 {
			row := func(i int) []float32 { return o.data[(l0+l+i)*o.stride:][:steps] }
			r0, r1, r2, r3, r4, r5, r6, r7 := row(0), row(1), row(2), row(3), row(4), row(5), row(6), row(7)
			for s := done; s < steps; s++ {
				p := panel[s*w+l:][:8]
				p[0], p[1], p[2], p[3] = r0[s], r1[s], r2[s], r3[s]
				p[4], p[5], p[6], p[7] = r4[s], r5[s], r6[s], r7[s]
			}
		}
		for ; l < nl; l++ {
			for s, v := range o.data[(l0+l)*o.stride:][:steps] {
				panel[s*w+l] = v
			}
		}
		for l := nl; l < w; l++ {
			for s := range steps {
				panel[s*w+l] = 0
			}
		}
	}
}

// gemmBlocked sets C[m, n] (row stride ldc) to alpha·op(A)·op(B) + beta·C
// with k > 0. With more than one thread it splits the larger of m and n into
// one chunk per thread, aligned to the register tile, and solves each chunk
// as an independent product with its own packing buffers: the other operand
// is packed once per thread, which costs O(k·min(m, n)) against the
// O(m·n·k) work and needs no synchronisation.
func gemmBlocked(mk *microKernel, m, n, k int, alpha float32, a, b operand, beta float32, c []float32, ldc, threads int) {
	if threads > 1 && n >= m {
		chunk := roundUp((n+threads-1)/threads, mk.nr)
		parallel(threads, func(t int) {
			j0 := t * chunk
			if j0 < n {
				gemmSerial(mk, m, min(chunk, n-j0), k, alpha, a, b.shift(j0, 0), beta, c[j0:], ldc)
			}
		})
		return
	}
	if threads > 1 {
		chunk := roundUp((m+threads-1)/threads, mk.mr)
		parallel(threads, func(t int) {
			i0 := t * chunk
			if i0 < m {
				gemmSerial(mk, min(chunk, m-i0), n, k, alpha, a.shift(i0, 0), b, beta, c[i0*ldc:], ldc)
			}
		})
		return
	}
	gemmSerial(mk, m, n, k, alpha, a, b, beta, c, ldc)
}

func roundUp(x, multiple int) int { return (x + multiple - 1) / multiple * multiple }

// packBuffers holds one goroutine's packed blocks of A and B and an edge tile.
type packBuffers struct{ a, b, tile []float32 }

var packPool sync.Pool // of *packBuffers

// getPackBuffers returns buffers with room for an mc×kc block of A, a kc×nc
// panel of B and an mr×nr tile.
func getPackBuffers(mk *microKernel, mc, kc, nc int) *packBuffers {
	buf, _ := packPool.Get().(*packBuffers)
	if buf == nil {
		buf = new(packBuffers)
	}
	grow := func(s []float32, n int) []float32 {
		if cap(s) < n {
			return make([]float32, n)
		}
		return s[:n]
	}
	buf.a = grow(buf.a, roundUp(mc, mk.mr)*kc)
	buf.b = grow(buf.b, roundUp(nc, mk.nr)*kc)
	buf.tile = grow(buf.tile, mk.mr*mk.nr)
	return buf
}

// gemmSerial is the blocked product on the calling goroutine: loops over
// kc×nc panels of op(B) and mc×kc blocks of op(A), each packed once, and the
// register tiles of C within them.
func gemmSerial(mk *microKernel, m, n, k int, alpha float32, a, b operand, beta float32, c []float32, ldc int) {
	buf := getPackBuffers(mk, min(m, mk.mc), min(k, mk.kc), min(n, mk.nc))
	defer packPool.Put(buf)
	for jc := 0; jc < n; jc += mk.nc {
		nc := min(mk.nc, n-jc)
		for pc := 0; pc < k; pc += mk.kc {
			kc := min(mk.kc, k-pc)
			bp, ks := mk.panels(b.shift(jc, pc), buf.b, nc, kc, mk.nr) // ks: packed steps
			// C is scaled by beta once, with the first slice of k; later
			// slices accumulate.
			betaPC := beta
			if pc > 0 {
				betaPC = 1
			}
			for ic := 0; ic < m; ic += mk.mc {
				mc := min(mk.mc, m-ic)
				ap, _ := mk.panels(a.shift(ic, pc), buf.a, mc, kc, mk.mr)
				macroKernel(mk, mc, nc, ks, alpha, ap, bp, buf.tile, betaPC, c[ic*ldc+jc:], ldc)
			}
		}
	}
}

// macroKernel updates the mc×nc block c from the panels of A and B, one
// register tile at a time. Tiles cut by the block's edge are computed into
// tile and merged, so the kernel never writes outside C.
func macroKernel(mk *microKernel, mc, nc, kc int, alpha float32, aPanels, bPanels, tile []float32, beta float32, c []float32, ldc int) {
	mr, nr := mk.mr, mk.nr
	for jr := 0; jr < nc; jr += nr {
		bp := bPanels[jr*kc : (jr+nr)*kc]
		nEdge := min(nr, nc-jr)
		for ir := 0; ir < mc; ir += mr {
			ap := aPanels[ir*kc : (ir+mr)*kc]
			mEdge := min(mr, mc-ir)
			ct := c[ir*ldc+jr:]
			if mEdge == mr && nEdge == nr {
				mk.run(kc, ap, bp, ct, ldc, alpha, beta)
				continue
			}
			mk.run(kc, ap, bp, tile, nr, alpha, 0)
			for i := range mEdge {
				dst := ct[i*ldc : i*ldc+nEdge]
				src := tile[i*nr : i*nr+nEdge]
				if beta == 0 {
					copy(dst, src)
					continue
				}
				for j, v := range src {
					dst[j] = v + beta*dst[j]
				}
			}
		}
	}
}
