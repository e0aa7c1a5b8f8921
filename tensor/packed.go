package tensor

import "fmt"

// Packed is a weight matrix W [n, k] kept, beside W itself, in the Go GEMM's
// panel layout for products x·Wᵀ (a Linear layer's forward pass). The Go
// backend otherwise packs Wᵀ, a transposing copy, at every product; a
// trained weight changes only once per optimizer step but is multiplied
// several times in between, and a frozen one never changes. The panels are
// exactly what the product would have packed, so GemmPacked gives Gemm's
// bits.
//
// The owner keeps the panels in step with W: after rows of W change, Repack
// those rows. On the OpenBLAS backend, when the backend changed since Pack,
// or while SetPrecision asks for bf16 products, GemmPacked multiplies by W
// itself.
type Packed struct {
	// W is the matrix the panels were packed from.
	W *Matrix
	// mk is the micro-kernel whose panel width and k-blocking data follows;
	// nil when no panels are kept (another backend was active at Pack).
	mk *microKernel
	// data holds, for each block of mk.kc columns of W (steps), the panels of
	// nr rows (lanes) of that block, as operand.pack lays them out; rows past
	// n are zero. Block p starts at p·mk.kc·roundUp(n, nr).
	data []float32
}

// Pack returns w with panels for the active backend (none on OpenBLAS).
// The Packed refers to w; it does not copy it.
func Pack(w *Matrix) *Packed {
	w.mustBeValid("tensor.Pack")
	p := &Packed{W: w}
	if g, ok := (*currentBackend()).(goBackend); ok && w.Rows > 0 && w.Cols > 0 {
		p.mk = g.mk
		p.data = make([]float32, roundUp(w.Rows, p.mk.nr)*w.Cols)
		p.Repack(0, w.Rows)
	}
	return p
}

// RowAlign is the granularity of Repack: ranges of rows start at multiples
// of it (the panel width).
func (p *Packed) RowAlign() int {
	if p.mk == nil {
		return 1
	}
	return p.mk.nr
}

// Repack copies rows [r0, r1) of W into the panels, after they changed. r0
// must be a multiple of RowAlign, and r1 too unless it is W.Rows, so that
// each panel is written by one call (concurrent calls on disjoint ranges are
// safe).
func (p *Packed) Repack(r0, r1 int) {
	if p.mk == nil || r0 >= r1 {
		return
	}
	nr, kc, n, k := p.mk.nr, p.mk.kc, p.W.Rows, p.W.Cols
	if r0%nr != 0 || (r1%nr != 0 && r1 != n) || r0 < 0 || r1 > n {
		panic(fmt.Sprintf("tensor.Packed.Repack: rows [%d, %d) of %d are not aligned to panels of %d", r0, r1, n, nr))
	}
	src := operandB(p.W, true)
	nPad := roundUp(n, nr)
	for pc := 0; pc < k; pc += kc {
		steps := min(kc, k-pc)
		block := p.data[pc*nPad:]
		src.shift(r0, pc).pack(block[r0*steps:roundUp(r1, nr)*steps], r1-r0, steps, nr)
	}
}

// panels returns the packed lanes [l0, l0+lanes) of steps [s0, s0+steps),
// the block operand.pack would have written for them. l0 is a multiple of
// the panel width and s0 of the k-block, as the blocked product asks.
func (p *Packed) panels(l0, s0, lanes, steps int) []float32 {
	nr := p.mk.nr
	block := p.data[s0*roundUp(p.W.Rows, nr):]
	return block[l0*steps : (l0+roundUp(lanes, nr))*steps]
}

// GemmPacked computes C = alpha·op(A)·Wᵀ + beta·C with W's panels: Gemm(transA,
// true, alpha, a, w.W, beta, c), to the bit, without packing W.
func GemmPacked(transA bool, alpha float32, a *Matrix, w *Packed, beta float32, c *Matrix) {
	be := productBackend() // the bf16 kernel when SetPrecision asks for it
	if g, ok := be.(goBackend); !ok || g.mk != w.mk {
		Gemm(transA, true, alpha, a, w.W, beta, c)
		return
	}
	m, n, k, work := prepareGemm(transA, true, alpha, a, w.W, beta, c)
	if !work {
		return
	}
	b := operandB(w.W, true)
	b.packed = w
	gemmBlocked(w.mk, m, n, k, alpha, operandA(a, transA), b, beta, c.Data, c.Stride, threadsFor(be, m, n, k))
}
