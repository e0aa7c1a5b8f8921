package clip

import (
	"fmt"
	"math"
	"strconv"

	"github.com/unimos/unimos/tensor"
)

// This file holds the blocks of OpenAI's clip/model.py that the text tower,
// the ViT and the ResNet's attention pool share: LayerNorm, Linear, the
// activation, nn.MultiheadAttention, ResidualAttentionBlock and Transformer.
//
// The towers pack the token sequences of a batch one after another into the
// rows of a single matrix [N, W] (model.py's x is [L, B, W], padded), so
// that text rows cut after their end-of-text token cost nothing past it.
// Each block's forward pass takes its temporaries from a scratch, which
// hands the same storage to every block of a pass.

// linear is torch.nn.Linear: y = x·Wᵀ + b.
type linear struct {
	w *tensor.Matrix // [out, in]
	b []float32      // [out]
}

// forward returns the layer applied to x [N, in]: [N, out], from s.
func (l linear) forward(x *tensor.Matrix, s *scratch) *tensor.Matrix {
	y := s.matrix(x.Rows, l.w.Rows)
	tensor.Gemm(false, true, 1, x, l.w, 0, y)
	tensor.AddBias(y, y, l.b)
	return y
}

// rows returns the layer restricted to outputs [r0, r1).
func (l linear) rows(r0, r1 int) linear {
	return linear{w: l.w.Slice(r0, r1, 0, l.w.Cols), b: l.b[r0:r1]}
}

// layerNorm is model.py's LayerNorm: torch.nn.LayerNorm over the last
// dimension, computed in float32.
type layerNorm struct {
	gamma, beta []float32
	eps         float32
}

// apply sets dst to x normalised row by row; dst may be x.
func (n layerNorm) apply(dst, x *tensor.Matrix) { tensor.LayerNorm(dst, x, n.gamma, n.beta, n.eps) }

// forward returns x normalised row by row, from s.
func (n layerNorm) forward(x *tensor.Matrix, s *scratch) *tensor.Matrix {
	y := s.matrix(x.Rows, x.Cols)
	n.apply(y, x)
	return y
}

// activate applies act (model.py's QuickGELU, or open_clip's nn.GELU) to m
// in place.
func activate(m *tensor.Matrix, act Activation) {
	if act == GELU {
		tensor.GELU(m, m)
		return
	}
	tensor.QuickGELU(m, m)
}

// matmul returns x @ w, for the towers' final projections: x [B, W] times
// w [W, E], stored [in, out] as model.py uses it.
func matmul(x, w *tensor.Matrix) *tensor.Matrix {
	y := tensor.New(x.Rows, w.Cols)
	tensor.Gemm(false, false, 1, x, w, 0, y)
	return y
}

// rowsOf returns rows [r0, r1) of m, a view.
func rowsOf(m *tensor.Matrix, r0, r1 int) *tensor.Matrix { return m.Slice(r0, r1, 0, m.Cols) }

// colsOf returns columns [c0, c1) of m, a view.
func colsOf(m *tensor.Matrix, c0, c1 int) *tensor.Matrix { return m.Slice(0, m.Rows, c0, c1) }

// sequence locates one input of a packed batch: its tokens are rows
// [start, start+length) of the token matrix, and the outputs wanted are
// those of its positions [query, query+queries).
type sequence struct{ start, length, query, queries int }

// fullSequences describes n sequences of the given length stacked in order,
// every position a query.
func fullSequences(n, length int) []sequence {
	seqs := make([]sequence, n)
	for i := range seqs {
		seqs[i] = sequence{start: i * length, length: length, queries: length}
	}
	return seqs
}

// pooledSequences returns seqs with pooled[i] as the only query of
// sequence i.
func pooledSequences(seqs []sequence, pooled []int) []sequence {
	out := make([]sequence, len(seqs))
	for i, s := range seqs {
		s.query, s.queries = pooled[i], 1
		out[i] = s
	}
	return out
}

// countQueries returns the number of query rows of seqs and whether they
// are all the rows of a matrix of the given rows, in order (every position
// of every sequence a query).
func countQueries(seqs []sequence, rows int) (n int, all bool) {
	all = true
	next := 0
	for _, s := range seqs {
		n += s.queries
		all = all && s.start == next && s.query == 0 && s.queries == s.length
		next = s.start + s.length
	}
	return n, all && next == rows
}

// gatherQueries copies the query rows of seqs out of x into dst [Q, W].
func gatherQueries(dst, x *tensor.Matrix, seqs []sequence) {
	r := 0
	for _, s := range seqs {
		for i := range s.queries {
			copy(dst.Row(r), x.Row(s.start+s.query+i))
			r++
		}
	}
}

// queryRows returns the query rows of seqs in x, [Q, W]: x itself when
// every row is a query, a new matrix otherwise.
func queryRows(x *tensor.Matrix, seqs []sequence) *tensor.Matrix {
	n, all := countQueries(seqs, x.Rows)
	if all {
		return x
	}
	y := tensor.New(n, x.Cols)
	gatherQueries(y, x, seqs)
	return y
}

// attention is torch.nn.MultiheadAttention (and the functional form that
// ModifiedResNet's attention pool calls) on packed sequences, with
// model.py's causal attn_mask when causal is set.
type attention struct {
	heads  int
	in     linear // [3W, W]: in_proj, the query, key and value projections stacked
	out    linear // [Wout, W]: out_proj
	causal bool   // position p sees positions 0..p of its sequence only
}

// forward is attn(x, x, x) for the query rows of every sequence, attending
// to all rows of that sequence: x [N, W] -> [Q, Wout], in query order,
// from s.
func (a *attention) forward(x *tensor.Matrix, seqs []sequence, s *scratch) *tensor.Matrix {
	q, k, v := a.project(x, seqs, s)                    // [Q, W], [N, W], [N, W]
	heads := s.matrix(q.Rows, x.Cols)                   // [Q, W]: the heads' outputs side by side
	scores := s.matrix(1, a.heads*maxScores(seqs)).Data // room for the scores of any one sequence
	r := 0
	for _, sq := range seqs {
		end := sq.start + sq.length
		a.attend(rowsOf(heads, r, r+sq.queries), rowsOf(q, r, r+sq.queries), rowsOf(k, sq.start, end), rowsOf(v, sq.start, end),
			sq.query, scores)
		r += sq.queries
	}
	return a.out.forward(heads, s) // [Q, Wout]
}

// maxScores returns the largest queries·length of seqs: the scores of one
// head on one sequence.
func maxScores(seqs []sequence) int {
	n := 0
	for _, sq := range seqs {
		n = max(n, sq.queries*sq.length)
	}
	return n
}

// project returns the query projections of the query rows of seqs, [Q, W],
// and the key and value projections of all rows, [N, W] each. When every row
// is a query, one product computes all three.
func (a *attention) project(x *tensor.Matrix, seqs []sequence, s *scratch) (q, k, v *tensor.Matrix) {
	n, w := x.Rows, x.Cols
	nq, all := countQueries(seqs, n)
	if all {
		qkv := a.in.forward(x, s) // [N, 3W]
		return colsOf(qkv, 0, w), colsOf(qkv, w, 2*w), colsOf(qkv, 2*w, 3*w)
	}
	kv := a.in.rows(w, 3*w).forward(x, s) // [N, 2W]
	xq := s.matrix(nq, w)                 // [Q, W]
	gatherQueries(xq, x, seqs)
	q = a.in.rows(0, w).forward(xq, s) // [Q, W]
	return q, colsOf(kv, 0, w), colsOf(kv, w, 2*w)
}

// attend sets dst [q, W] to the outputs of all heads for one sequence:
// head h reads columns h·d to (h+1)·d of the queries q [q, W], the keys k
// and the values v [L, W], and writes softmax(q_h·k_hᵀ/√d)·v_h into the same
// columns of dst. The queries are positions first, first+1, ... of the
// sequence, which the causal mask needs; buf holds the scores.
func (a *attention) attend(dst, q, k, v *tensor.Matrix, first int, buf []float32) {
	d := q.Cols / a.heads
	scale := float32(1 / math.Sqrt(float64(d)))
	// The scores of all heads, [heads·q, L], so that one Softmax call covers
	// the sequence.
	scores := tensor.FromSlice(a.heads*q.Rows, k.Rows, buf[:a.heads*q.Rows*k.Rows])
	headScores := func(h int) *tensor.Matrix { return rowsOf(scores, h*q.Rows, (h+1)*q.Rows) }
	for h := range a.heads {
		tensor.Gemm(false, true, scale, colsOf(q, h*d, (h+1)*d), colsOf(k, h*d, (h+1)*d), 0, headScores(h))
	}
	if a.causal {
		negInf := float32(math.Inf(-1))
		for i := range scores.Rows {
			row := scores.Row(i)
			for j := first + i%q.Rows + 1; j < len(row); j++ {
				row[j] = negInf
			}
		}
	}
	tensor.Softmax(scores, scores)
	for h := range a.heads {
		tensor.Gemm(false, false, 1, headScores(h), colsOf(v, h*d, (h+1)*d), 0, colsOf(dst, h*d, (h+1)*d))
	}
}

// residualAttentionBlock is model.py's ResidualAttentionBlock, a
// pre-LayerNorm transformer block.
type residualAttentionBlock struct {
	ln1, ln2 layerNorm
	attn     attention
	cFc      linear // mlp.c_fc [M, W]
	cProj    linear // mlp.c_proj [W, M]
	act      Activation
}

// forward runs the block on x [N, W] and returns the outputs of the query
// rows of seqs, [Q, W]: x itself, updated, when every row is a query.
func (b *residualAttentionBlock) forward(x *tensor.Matrix, seqs []sequence, s *scratch) *tensor.Matrix {
	attended := b.attn.forward(b.ln1.forward(x, s), seqs, s) // [Q, W]: attention(ln_1(x))
	x = queryRows(x, seqs)                                   // [Q, W]
	s.addBranch(x, attended)                                 // x = x + attention(ln_1(x))
	s.addBranch(x, b.mlp(b.ln2.forward(x, s), s))            // x = x + mlp(ln_2(x))
	return x
}

// mlp is the block's nn.Sequential(c_fc, QuickGELU, c_proj): [Q, W] ->
// [Q, W], from s.
func (b *residualAttentionBlock) mlp(x *tensor.Matrix, s *scratch) *tensor.Matrix {
	h := b.cFc.forward(x, s)     // [Q, M]
	activate(h, b.act)           // [Q, M]
	return b.cProj.forward(h, s) // [Q, W]
}

// transformer is model.py's Transformer: a stack of residual blocks.
type transformer struct {
	resblocks []residualAttentionBlock
}

// readTransformer reads the blocks prefix.{0..layers-1} of the given width,
// heads and MLP width; causal sets the text tower's attention mask.
func readTransformer(r *reader, prefix string, layers, width, heads, mlpWidth int, act Activation, eps float32, causal bool) transformer {
	t := transformer{resblocks: make([]residualAttentionBlock, layers)}
	for i := range t.resblocks {
		p := fmt.Sprintf("%s%d.", prefix, i)
		t.resblocks[i] = residualAttentionBlock{
			ln1: r.layerNorm(p+"ln_1", width, eps),
			attn: attention{
				heads:  heads,
				in:     linear{w: r.matrix(p+"attn.in_proj_weight", 3*width, width), b: r.floats(p+"attn.in_proj_bias", 3*width)},
				out:    r.linear(p+"attn.out_proj", width, width),
				causal: causal,
			},
			ln2:   r.layerNorm(p+"ln_2", width, eps),
			cFc:   r.linear(p+"mlp.c_fc", mlpWidth, width),
			cProj: r.linear(p+"mlp.c_proj", width, mlpWidth),
			act:   act,
		}
	}
	return t
}

// forward is Transformer.forward followed by the tower's pooling: it runs
// every block on the packed sequences x [N, W] and returns the outputs at
// position pooled[i] of sequence i, [len(seqs), W]. Nothing reads the last
// block's other outputs, so that block computes just these rows. probe
// sees the output of every block, "block0" on.
func (t *transformer) forward(x *tensor.Matrix, seqs []sequence, pooled []int, probe probe) *tensor.Matrix {
	if len(t.resblocks) == 0 {
		return queryRows(x, pooledSequences(seqs, pooled))
	}
	s := getScratch()
	defer scratches.Put(s)
	for i := range t.resblocks {
		if i == len(t.resblocks)-1 {
			seqs = pooledSequences(seqs, pooled)
		}
		x = t.resblocks[i].forward(x, seqs, s) // [N, W]; [len(seqs), W] after the last block
		probe.see("block"+strconv.Itoa(i), x)
	}
	return x
}
