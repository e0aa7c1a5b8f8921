package nn

import (
	"fmt"
	"math"

	"github.com/unimos/unimos/tensor"
)

// This file holds the differentiable ops. Each one computes its result, then
// records a closure that maps the result's gradient g to its inputs'
// gradients. Shape mismatches are programmer errors and panic.

// MatMul returns op(a)·op(b), where op transposes when the flag says so, as
// in tensor.Gemm. A linear layer is MatMul(false, true, x, w): [N, in]·[out, in]ᵀ.
func (t *Tape) MatMul(transA, transB bool, a, b *Var) *Var {
	m, n := a.Value.Rows, b.Value.Cols
	if transA {
		m = a.Value.Cols
	}
	if transB {
		n = b.Value.Rows
	}
	out := t.newResult(m, n, false, []*Var{a, b}) // Gemm with beta 0 overwrites every element
	var panels *tensor.Packed
	if transB {
		panels = b.panelsForTransposed()
	}
	if panels != nil {
		// A trained weight, multiplied as x·Wᵀ: the optimizer step packed it.
		tensor.GemmPacked(transA, 1, a.Value, panels, 0, out.Value)
	} else {
		tensor.Gemm(transA, transB, 1, a.Value, b.Value, 0, out.Value)
	}
	t.record(out, func(g *tensor.Matrix) {
		// d op(a) = g·op(b)ᵀ and d op(b) = op(a)ᵀ·g, transposed back where op transposed.
		if ga, beta := t.gradInto(a); ga != nil {
			if transA {
				tensor.Gemm(transB, true, 1, b.Value, g, beta, ga)
			} else {
				tensor.Gemm(false, !transB, 1, g, b.Value, beta, ga)
			}
		}
		if gb, beta := t.gradInto(b); gb != nil {
			if transB {
				tensor.Gemm(true, transA, 1, g, a.Value, beta, gb)
			} else {
				tensor.Gemm(!transA, false, 1, a.Value, g, beta, gb)
			}
		}
	})
	return out
}

// Add returns a + b (same shapes).
func (t *Tape) Add(a, b *Var) *Var { return t.combine("Add", a, b, 1) }

// Sub returns a - b (same shapes).
func (t *Tape) Sub(a, b *Var) *Var { return t.combine("Sub", a, b, -1) }

// combine returns a + sign·b.
func (t *Tape) combine(name string, a, b *Var, sign float32) *Var {
	mustSameShape(name, a, b)
	out := t.result(a.Value.Rows, a.Value.Cols, a, b)
	addScaled(out.Value, a.Value, 1)
	addScaled(out.Value, b.Value, sign)
	t.record(out, func(g *tensor.Matrix) {
		if ga := t.gradOf(a); ga != nil {
			addScaled(ga, g, 1)
		}
		if gb := t.gradOf(b); gb != nil {
			addScaled(gb, g, sign)
		}
	})
	return out
}

// Scale returns c·a for a constant c.
func (t *Tape) Scale(a *Var, c float32) *Var {
	out := t.result(a.Value.Rows, a.Value.Cols, a)
	addScaled(out.Value, a.Value, c)
	t.record(out, func(g *tensor.Matrix) {
		if ga := t.gradOf(a); ga != nil {
			addScaled(ga, g, c)
		}
	})
	return out
}

// MulScalar returns s·a, where s is a 1x1 Var (a learned mixing weight, say).
func (t *Tape) MulScalar(a, s *Var) *Var {
	if s.Value.Rows != 1 || s.Value.Cols != 1 {
		panic(fmt.Sprintf("nn.MulScalar: scalar is %dx%d, not 1x1", s.Value.Rows, s.Value.Cols))
	}
	return t.broadcastMul("MulScalar", a, s)
}

// ScaleRows returns x with row i multiplied by s[i]: x [N, C], s [N, 1].
func (t *Tape) ScaleRows(x, s *Var) *Var {
	if s.Value.Rows != x.Value.Rows || s.Value.Cols != 1 {
		panic(fmt.Sprintf("nn.ScaleRows: scales are %dx%d for %d rows", s.Value.Rows, s.Value.Cols, x.Value.Rows))
	}
	return t.broadcastMul("ScaleRows", x, s)
}

// Mul returns the element-wise product a∘b (same shapes).
func (t *Tape) Mul(a, b *Var) *Var {
	mustSameShape("Mul", a, b)
	return t.broadcastMul("Mul", a, b)
}

// broadcastMul returns a∘b, where b has a's shape or size 1 along a
// dimension (a scalar [1, 1], a column [N, 1]) and is repeated along it.
func (t *Tape) broadcastMul(name string, a, b *Var) *Var {
	av, bv := a.Value, b.Value
	if (bv.Rows != 1 && bv.Rows != av.Rows) || (bv.Cols != 1 && bv.Cols != av.Cols) {
		panic(fmt.Sprintf("nn.%s: cannot broadcast %dx%d to %dx%d", name, bv.Rows, bv.Cols, av.Rows, av.Cols))
	}
	bAt := func(m *tensor.Matrix, i, j int) *float32 {
		return &m.Data[min(i, m.Rows-1)*m.Stride+min(j, m.Cols-1)]
	}
	out := t.result(av.Rows, av.Cols, a, b)
	for i := range av.Rows {
		ar, or := av.Row(i), out.Value.Row(i)
		for j, x := range ar {
			or[j] = x * *bAt(bv, i, j)
		}
	}
	t.record(out, func(g *tensor.Matrix) {
		ga, gb := t.gradOf(a), t.gradOf(b)
		for i := range g.Rows {
			gr := g.Row(i)
			for j, gij := range gr {
				if ga != nil {
					ga.Data[i*ga.Stride+j] += gij * *bAt(bv, i, j)
				}
				if gb != nil {
					*bAt(gb, i, j) += gij * av.At(i, j)
				}
			}
		}
	})
	return out
}

// AddRow returns x with the row vector b added to every row: x [N, C], b [1, C].
func (t *Tape) AddRow(x, b *Var) *Var {
	if b.Value.Rows != 1 || b.Value.Cols != x.Value.Cols {
		panic(fmt.Sprintf("nn.AddRow: row is %dx%d for %d columns", b.Value.Rows, b.Value.Cols, x.Value.Cols))
	}
	out := t.result(x.Value.Rows, x.Value.Cols, x, b)
	brow := b.Value.Row(0)
	for i := range x.Value.Rows {
		xr, or := x.Value.Row(i), out.Value.Row(i)
		for j := range or {
			or[j] = xr[j] + brow[j]
		}
	}
	t.record(out, func(g *tensor.Matrix) {
		if gx := t.gradOf(x); gx != nil {
			addScaled(gx, g, 1)
		}
		if gb := t.gradOf(b); gb != nil {
			columnSumInto(gb.Row(0), g, 1)
		}
	})
	return out
}

// ConcatRows stacks its arguments (same column counts) top to bottom.
func (t *Tape) ConcatRows(vs ...*Var) *Var {
	if len(vs) == 0 {
		panic("nn.ConcatRows: nothing to concatenate")
	}
	rows := 0
	for _, v := range vs {
		if v.Value.Cols != vs[0].Value.Cols {
			panic(fmt.Sprintf("nn.ConcatRows: %d columns after %d", v.Value.Cols, vs[0].Value.Cols))
		}
		rows += v.Value.Rows
	}
	out := t.result(rows, vs[0].Value.Cols, vs...)
	r := 0
	for _, v := range vs {
		for i := range v.Value.Rows {
			copy(out.Value.Row(r+i), v.Value.Row(i))
		}
		r += v.Value.Rows
	}
	parts := append([]*Var(nil), vs...) // the caller may reuse its slice
	t.record(out, func(g *tensor.Matrix) {
		r := 0
		for _, v := range parts {
			n := v.Value.Rows
			if gv := t.gradOf(v); gv != nil {
				addScaled(gv, g.Slice(r, r+n, 0, g.Cols), 1)
			}
			r += n
		}
	})
	return out
}

// SliceRows returns rows [r0, r1) of x. The result shares x's storage.
func (t *Tape) SliceRows(x *Var, r0, r1 int) *Var {
	out := &Var{Value: x.Value.Slice(r0, r1, 0, x.Value.Cols), requiresGrad: t.needsGrad(x)}
	t.record(out, func(g *tensor.Matrix) {
		gx := t.gradOf(x)
		addScaled(gx.Slice(r0, r1, 0, gx.Cols), g, 1)
	})
	return out
}

// Sum returns the sum of all elements of x, as a 1x1 Var.
func (t *Tape) Sum(x *Var) *Var { return t.sum(x, true, true, 1) }

// Mean returns the mean of all elements of x, as a 1x1 Var.
func (t *Tape) Mean(x *Var) *Var {
	return t.sum(x, true, true, 1/float32(x.Value.Rows*x.Value.Cols))
}

// ColumnSum returns the per-column sums of x [N, C] over its rows: [1, C].
func (t *Tape) ColumnSum(x *Var) *Var { return t.sum(x, true, false, 1) }

// ColumnMean returns the per-column means of x [N, C] over its rows: [1, C].
func (t *Tape) ColumnMean(x *Var) *Var { return t.sum(x, true, false, 1/float32(x.Value.Rows)) }

// RowSum returns the per-row sums of x [N, C] over its columns: [N, 1].
func (t *Tape) RowSum(x *Var) *Var { return t.sum(x, false, true, 1) }

// sum returns scale times the sum of x over its rows, its columns, or both;
// a summed-over dimension has size 1 in the result.
func (t *Tape) sum(x *Var, overRows, overCols bool, scale float32) *Var {
	rows, cols := x.Value.Rows, x.Value.Cols
	if overRows {
		rows = 1
	}
	if overCols {
		cols = 1
	}
	// outIndex maps element (i, j) of x to its place in the result.
	outIndex := func(i, j int) int {
		if overRows {
			i = 0
		}
		if overCols {
			j = 0
		}
		return i*cols + j
	}
	out := t.result(rows, cols, x)
	acc := make([]float64, rows*cols)
	for i := range x.Value.Rows {
		for j, v := range x.Value.Row(i) {
			acc[outIndex(i, j)] += float64(v)
		}
	}
	for k, s := range acc {
		out.Value.Data[k] = float32(s * float64(scale))
	}
	t.record(out, func(g *tensor.Matrix) {
		gx := t.gradOf(x)
		for i := range gx.Rows {
			gr := gx.Row(i)
			for j := range gr {
				gr[j] += scale * g.Data[outIndex(i, j)]
			}
		}
	})
	return out
}

// ReLU returns max(x, 0) element-wise.
func (t *Tape) ReLU(x *Var) *Var {
	return t.pointwise(x, relu, func(g, y float32) float32 {
		return math.Float32frombits(math.Float32bits(g) & nonzeroMask(y))
	})
}

// pointwise returns f applied to every element of x. grad maps the
// gradient g reaching one output element and that element's value y to the
// gradient of its input: both ops that use it have derivatives best written
// in terms of their output.
func (t *Tape) pointwise(x *Var, f func(float32) float32, grad func(g, y float32) float32) *Var {
	out := t.result(x.Value.Rows, x.Value.Cols, x)
	for i := range x.Value.Rows {
		xr, or := x.Value.Row(i), out.Value.Row(i)
		for j, v := range xr {
			or[j] = f(v)
		}
	}
	t.record(out, func(g *tensor.Matrix) {
		gx := t.gradOf(x)
		for i := range g.Rows {
			gr, gxr, or := g.Row(i), gx.Row(i), out.Value.Row(i)
			for j, y := range or {
				gxr[j] += grad(gr[j], y)
			}
		}
	})
	return out
}

// ReLU's inputs have random signs, so branching on them mispredicts about
// half the time; on a batch of activations that costs several times the
// arithmetic. relu and nonzeroMask work on the bits instead.

// relu returns max(v, 0), as +0 for v ≤ 0: the sign bit, spread over the
// word by an arithmetic shift, masks v out.
func relu(v float32) float32 {
	u := math.Float32bits(v)
	return math.Float32frombits(u & uint32(int32(^u)>>31))
}

// nonzeroMask returns all ones when y, a non-negative float such as a relu
// output, is nonzero, and zero when y is +0: -u has its sign bit set exactly
// when u > 0.
func nonzeroMask(y float32) uint32 {
	return uint32(int32(-math.Float32bits(y)) >> 31)
}

// Sigmoid returns 1/(1+exp(-x)) element-wise.
func (t *Tape) Sigmoid(x *Var) *Var {
	return t.pointwise(x, sigmoid, func(g, y float32) float32 { return g * y * (1 - y) })
}

// Dropout zeroes each element of x with probability p and multiplies the
// survivors by 1/(1-p) (inverted dropout, as PyTorch), drawing the mask from
// rng. Use it in training only; in evaluation dropout is the identity.
func (t *Tape) Dropout(x *Var, p float32, rng *RNG) *Var {
	if p < 0 || p > 1 {
		panic(fmt.Sprintf("nn.Dropout: probability %v outside [0, 1]", p))
	}
	keepScale := float32(0)
	if p < 1 {
		keepScale = 1 / (1 - p)
	}
	mask := t.buffer(x.Value.Rows, x.Value.Cols) // 0 or keepScale
	out := t.result(x.Value.Rows, x.Value.Cols, x)
	for i := range x.Value.Rows {
		xr, mr, or := x.Value.Row(i), mask.Row(i), out.Value.Row(i)
		for j, v := range xr {
			if rng.Float32() >= p {
				mr[j] = keepScale
			}
			or[j] = v * mr[j]
		}
	}
	t.record(out, func(g *tensor.Matrix) {
		gx := t.gradOf(x)
		for i := range g.Rows {
			gr, gxr, mr := g.Row(i), gx.Row(i), mask.Row(i)
			for j, m := range mr {
				gxr[j] += gr[j] * m
			}
		}
	})
	return out
}

// normalizeEps bounds the norm NormalizeRows divides by, as F.normalize's eps.
const normalizeEps = 1e-12

// NormalizeRows divides each row of x by its L2 norm (at least 1e-12, as
// torch.nn.functional.normalize), so that products of normalized rows are
// cosine similarities.
func (t *Tape) NormalizeRows(x *Var) *Var {
	out := t.result(x.Value.Rows, x.Value.Cols, x)
	norms := t.buffer(x.Value.Rows, 1) // the divisor of each row
	for i := range x.Value.Rows {
		xr, or := x.Value.Row(i), out.Value.Row(i)
		n := float32(math.Max(norm2(xr), normalizeEps))
		norms.Data[i] = n
		for j, v := range xr {
			or[j] = v / n
		}
	}
	t.record(out, func(g *tensor.Matrix) {
		gx := t.gradOf(x)
		for i := range g.Rows {
			gr, gxr, yr, n := g.Row(i), gx.Row(i), out.Value.Row(i), norms.Data[i]
			// Below eps the divisor is a constant and the projection term vanishes.
			var yg float32
			if n > normalizeEps {
				yg = dot(yr, gr)
			}
			for j := range gr {
				gxr[j] += (gr[j] - yr[j]*yg) / n
			}
		}
	})
	return out
}

// LogSoftmax returns the row-wise log-softmax of x (tensor.LogSoftmax).
func (t *Tape) LogSoftmax(x *Var) *Var {
	out := t.result(x.Value.Rows, x.Value.Cols, x)
	tensor.LogSoftmax(out.Value, x.Value)
	t.record(out, func(g *tensor.Matrix) {
		// d/dx of log softmax: g - softmax(x)·Σg, with softmax = e^out.
		p := t.take(out.Value.Rows, out.Value.Cols, false)
		tensor.Exp(p, out.Value)
		gx := t.gradOf(x)
		for i := range g.Rows {
			gr, gxr, pr := g.Row(i), gx.Row(i), p.Row(i)
			var gsum float32
			for _, v := range gr {
				gsum += v
			}
			for j, pj := range pr {
				gxr[j] += gr[j] - pj*gsum
			}
		}
	})
	return out
}

// Softmax returns the row-wise softmax of x (tensor.Softmax).
func (t *Tape) Softmax(x *Var) *Var {
	out := t.result(x.Value.Rows, x.Value.Cols, x)
	tensor.Softmax(out.Value, x.Value)
	t.record(out, func(g *tensor.Matrix) {
		gx := t.gradOf(x)
		for i := range g.Rows {
			gr, gxr, yr := g.Row(i), gx.Row(i), out.Value.Row(i)
			yg := dot(yr, gr)
			for j, y := range yr {
				gxr[j] += y * (gr[j] - yg)
			}
		}
	})
	return out
}

// XLogX returns x·log(x+eps) element-wise, the summand of an entropy (eps
// keeps the logarithm finite at 0).
func (t *Tape) XLogX(x *Var, eps float32) *Var {
	out := t.result(x.Value.Rows, x.Value.Cols, x)
	for i := range x.Value.Rows {
		xr, or := x.Value.Row(i), out.Value.Row(i)
		for j, v := range xr {
			or[j] = v * float32(math.Log(float64(v+eps)))
		}
	}
	t.record(out, func(g *tensor.Matrix) {
		gx := t.gradOf(x)
		for i := range g.Rows {
			gr, gxr, xr := g.Row(i), gx.Row(i), x.Value.Row(i)
			for j, v := range xr {
				gxr[j] += gr[j] * (float32(math.Log(float64(v+eps))) + v/(v+eps))
			}
		}
	})
	return out
}

// mustSameShape panics unless a and b have the same shape.
func mustSameShape(op string, a, b *Var) {
	if a.Value.Rows != b.Value.Rows || a.Value.Cols != b.Value.Cols {
		panic(fmt.Sprintf("nn.%s: shapes %dx%d and %dx%d differ", op, a.Value.Rows, a.Value.Cols, b.Value.Rows, b.Value.Cols))
	}
}

// addScaled adds alpha·src to dst (same shapes).
func addScaled(dst, src *tensor.Matrix, alpha float32) {
	for i := range dst.Rows {
		d, s := dst.Row(i), src.Row(i)
		for j, v := range s {
			d[j] += alpha * v
		}
	}
}

// fill sets every element of m to v.
func fill(m *tensor.Matrix, v float32) {
	for i := range m.Rows {
		r := m.Row(i)
		if v == 0 {
			clear(r) // much faster than the loop
			continue
		}
		for j := range r {
			r[j] = v
		}
	}
}

// columnSumInto adds alpha times the column sums of m to dst [m.Cols].
func columnSumInto(dst []float32, m *tensor.Matrix, alpha float32) {
	for i := range m.Rows {
		for j, v := range m.Row(i) {
			dst[j] += alpha * v
		}
	}
}

func dot(a, b []float32) float32 {
	var s float32
	for j, v := range a {
		s += v * b[j]
	}
	return s
}

// norm2 returns the Euclidean norm of v, accumulated in float64.
func norm2(v []float32) float64 {
	var s float64
	for _, x := range v {
		s += float64(x) * float64(x)
	}
	return math.Sqrt(s)
}

// sigmoid is the logistic function, in a form that does not overflow.
func sigmoid(x float32) float32 {
	if x >= 0 {
		return 1 / (1 + float32(math.Exp(float64(-x))))
	}
	e := float32(math.Exp(float64(x)))
	return e / (1 + e)
}
