package clip

import (
	"fmt"
	"math"
	"sync"

	"github.com/unimos/unimos/tensor"
)

// linear is a torch.nn.Linear layer: y = x·Wᵀ + b.
type linear struct {
	w *tensor.Matrix // [out, in]
	b []float32      // [out]
}

// apply sets dst [N, out] to the layer applied to x [N, in].
func (l linear) apply(dst, x *tensor.Matrix) {
	tensor.Gemm(false, true, 1, x, l.w, 0, dst)
	tensor.AddBias(dst, dst, l.b)
}

// rows returns the layer restricted to outputs [r0, r1).
func (l linear) rows(r0, r1 int) linear {
	return linear{w: l.w.Slice(r0, r1, 0, l.w.Cols), b: l.b[r0:r1]}
}

// layerNorm is a torch.nn.LayerNorm over the last dimension.
type layerNorm struct {
	gamma, beta []float32
	eps         float32
}

func (n layerNorm) apply(dst, x *tensor.Matrix) { tensor.LayerNorm(dst, x, n.gamma, n.beta, n.eps) }

// activate applies act to m in place.
func activate(m *tensor.Matrix, act Activation) {
	if act == GELU {
		tensor.GELU(m, m)
		return
	}
	tensor.QuickGELU(m, m)
}

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

// queryRows returns the number of query rows of seqs and whether they are
// all the rows, in order (every position of every sequence a query).
func queryRows(seqs []sequence, rows int) (n int, all bool) {
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

// scratch holds the activations of one forward pass, reused from block to
// block (every block of a tower has the same shapes) so that a pass
// allocates them once.
type scratch struct {
	norm, heads, out, queries, hidden *tensor.Matrix
	proj, q                           *tensor.Matrix // input projections: q, k and v, or k and v with q apart
	scores                            []float32
}

// scratches keeps the activations of finished passes for the next, so that
// encoding batch after batch allocates nothing large.
var scratches = sync.Pool{New: func() any { return new(scratch) }}

// reuse returns *m reshaped to [rows, cols], reallocating it when its
// storage is too small. The contents are undefined.
func reuse(m **tensor.Matrix, rows, cols int) *tensor.Matrix {
	if *m == nil || cap((*m).Data) < rows*cols {
		*m = tensor.New(rows, cols)
	} else {
		*m = tensor.FromSlice(rows, cols, (*m).Data[:rows*cols])
	}
	return *m
}

// attention is torch.nn.MultiheadAttention (and the functional form that
// ModifiedResNet's attention pool calls) on packed sequences.
type attention struct {
	heads int
	in    linear // [3W, W]: query, key and value projections stacked
	out   linear // [Wout, W]
}

// forward attends from the query rows of every sequence to all rows of that
// sequence and returns the projected result, [Q, Wout] in query order,
// stored in s.out. x [N, W] holds the (normalised) inputs. With causal set,
// position p sees positions 0..p of its sequence only.
func (a *attention) forward(x *tensor.Matrix, seqs []sequence, causal bool, s *scratch) *tensor.Matrix {
	n, width := x.Rows, x.Cols
	headDim := width / a.heads
	nq, all := queryRows(seqs, n)

	var q, k, v *tensor.Matrix // [Q, W], [N, W], [N, W]
	if all {
		// Every row is a query: one product for all three projections.
		qkv := reuse(&s.proj, n, 3*width)
		a.in.apply(qkv, x)
		q, k, v = qkv.Slice(0, n, 0, width), qkv.Slice(0, n, width, 2*width), qkv.Slice(0, n, 2*width, 3*width)
	} else {
		kv := reuse(&s.proj, n, 2*width)
		a.in.rows(width, 3*width).apply(kv, x)
		k, v = kv.Slice(0, n, 0, width), kv.Slice(0, n, width, 2*width)
		xq := reuse(&s.queries, nq, width)
		gatherQueries(xq, x, seqs)
		q = reuse(&s.q, nq, width)
		a.in.rows(0, width).apply(q, xq)
	}

	heads := reuse(&s.heads, nq, width) // concatenated head outputs
	scale := float32(1 / math.Sqrt(float64(headDim)))
	negInf := float32(math.Inf(-1))
	r := 0
	for _, sq := range seqs {
		// The scores of all heads, [heads·queries, length], so that one
		// Softmax call covers the sequence.
		need := a.heads * sq.queries * sq.length
		if cap(s.scores) < need {
			s.scores = make([]float32, need)
		}
		scores := tensor.FromSlice(a.heads*sq.queries, sq.length, s.scores[:need])
		headScores := func(h int) *tensor.Matrix {
			return scores.Slice(h*sq.queries, (h+1)*sq.queries, 0, sq.length)
		}
		for h := range a.heads {
			c0, c1 := h*headDim, (h+1)*headDim
			qh := q.Slice(r, r+sq.queries, c0, c1)
			kh := k.Slice(sq.start, sq.start+sq.length, c0, c1)
			tensor.Gemm(false, true, scale, qh, kh, 0, headScores(h))
		}
		if causal {
			for i := range scores.Rows {
				row := scores.Row(i)
				for j := sq.query + i%sq.queries + 1; j < len(row); j++ {
					row[j] = negInf
				}
			}
		}
		tensor.Softmax(scores, scores)
		for h := range a.heads {
			c0, c1 := h*headDim, (h+1)*headDim
			vh := v.Slice(sq.start, sq.start+sq.length, c0, c1)
			tensor.Gemm(false, false, 1, headScores(h), vh, 0, heads.Slice(r, r+sq.queries, c0, c1))
		}
		r += sq.queries
	}
	out := reuse(&s.out, nq, a.out.w.Rows)
	a.out.apply(out, heads)
	return out
}

// residualBlock is CLIP's pre-LayerNorm transformer block:
// x += attn(ln_1(x)); x += mlp(ln_2(x)).
type residualBlock struct {
	ln1, ln2 layerNorm
	attn     attention
	fc, proj linear // MLP: [M, W] and [W, M]
	act      Activation
}

// forward runs the block on x [N, W] and returns the outputs of the query
// rows of seqs, [Q, W]. When every row is a query, x itself is updated and
// returned; otherwise the result is a new matrix.
func (b *residualBlock) forward(x *tensor.Matrix, seqs []sequence, causal bool, s *scratch) *tensor.Matrix {
	norm := reuse(&s.norm, x.Rows, x.Cols)
	b.ln1.apply(norm, x)
	attended := b.attn.forward(norm, seqs, causal, s)
	y := x
	if _, all := queryRows(seqs, x.Rows); !all {
		y = tensor.New(attended.Rows, x.Cols)
		gatherQueries(y, x, seqs)
	}
	tensor.Add(y, y, attended)

	norm = reuse(&s.norm, y.Rows, y.Cols)
	b.ln2.apply(norm, y)
	hidden := reuse(&s.hidden, y.Rows, b.fc.w.Rows)
	b.fc.apply(hidden, norm)
	activate(hidden, b.act)
	mlp := reuse(&s.out, y.Rows, y.Cols)
	b.proj.apply(mlp, hidden)
	tensor.Add(y, y, mlp)
	return y
}

// transformer is a stack of residual blocks.
type transformer struct {
	blocks []residualBlock
}

// readTransformer reads the blocks prefix.{0..layers-1} of the given width,
// heads and MLP width.
func readTransformer(r *reader, prefix string, layers, width, heads, mlpWidth int, act Activation, eps float32) transformer {
	t := transformer{blocks: make([]residualBlock, layers)}
	for i := range t.blocks {
		p := fmt.Sprintf("%s%d.", prefix, i)
		t.blocks[i] = residualBlock{
			ln1: r.layerNorm(p+"ln_1", width, eps),
			attn: attention{
				heads: heads,
				in:    linear{w: r.matrix(p+"attn.in_proj_weight", 3*width, width), b: r.floats(p+"attn.in_proj_bias", 3*width)},
				out:   r.linear(p+"attn.out_proj", width, width),
			},
			ln2:  r.layerNorm(p+"ln_2", width, eps),
			fc:   r.linear(p+"mlp.c_fc", mlpWidth, width),
			proj: r.linear(p+"mlp.c_proj", width, mlpWidth),
			act:  act,
		}
	}
	return t
}

// forward runs every block on x [N, W]. Only the outputs in pooled (one
// entry per sequence: the position whose output the caller pools) are
// needed after the last block, so that block computes just those rows and
// forward returns them, [len(seqs), W]; with pooled nil every row is
// computed and the result is [N, W]. probe, when set, sees the output of
// block 0.
func (t *transformer) forward(x *tensor.Matrix, seqs []sequence, pooled []int, causal bool, probe probe) *tensor.Matrix {
	s := scratches.Get().(*scratch)
	defer scratches.Put(s)
	for i := range t.blocks {
		if i == len(t.blocks)-1 && pooled != nil {
			seqs = pooledSequences(seqs, pooled)
		}
		x = t.blocks[i].forward(x, seqs, causal, s)
		if i == 0 {
			probe.see("block0", x)
		}
	}
	if len(t.blocks) == 0 && pooled != nil {
		seqs = pooledSequences(seqs, pooled)
		y := tensor.New(len(seqs), x.Cols)
		gatherQueries(y, x, seqs)
		x = y
	}
	return x
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

// probe receives intermediate activations, named by stage, so that tests
// can compare them with the reference implementation's. A nil probe
// ignores them. Passing a probe also makes the encoders compute every
// position of their last block instead of just the pooled ones.
type probe func(stage string, m *tensor.Matrix)

func (p probe) see(stage string, m *tensor.Matrix) {
	if p != nil {
		p(stage, m)
	}
}

// prefixed returns a probe that prepends prefix to stage names.
func (p probe) prefixed(prefix string) probe {
	if p == nil {
		return nil
	}
	return func(stage string, m *tensor.Matrix) { p(prefix+stage, m) }
}
