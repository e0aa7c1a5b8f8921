package clip

import (
	"fmt"

	"github.com/unimos/unimos/tensor"
)

// textEncoder is CLIP's text tower: token and positional embeddings, a
// causal transformer, ln_final, and the projection of the end-of-text
// position.
type textEncoder struct {
	cfg                 TextConfig
	tokenEmbedding      *tensor.Matrix // [V, W]
	positionalEmbedding *tensor.Matrix // [C, W]
	transformer         transformer    // causal
	lnFinal             layerNorm
	textProjection      *tensor.Matrix // [W, E]
}

func readTextEncoder(r *reader, c TextConfig, embedDim int) *textEncoder {
	return &textEncoder{
		cfg:                 c,
		tokenEmbedding:      r.matrix("token_embedding.weight", c.VocabSize, c.Width),
		positionalEmbedding: r.matrix("positional_embedding", c.ContextLength, c.Width),
		transformer:         readTransformer(r, "transformer.resblocks.", c.Layers, c.Width, c.Heads, c.MLPWidth, c.Activation, c.LayerNormEps, true),
		lnFinal:             r.layerNorm("ln_final", c.Width, c.LayerNormEps),
		textProjection:      r.matrix("text_projection", c.Width, embedDim),
	}
}

// check returns an error unless every row of ids can be encoded: 1 to
// ContextLength ids, each inside the vocabulary.
func (t *textEncoder) check(ids [][]int32) error {
	for i, row := range ids {
		if len(row) == 0 || len(row) > t.cfg.ContextLength {
			return fmt.Errorf("clip: token row %d has %d ids, want 1 to %d", i, len(row), t.cfg.ContextLength)
		}
		for j, id := range row {
			if id < 0 || int(id) >= t.cfg.VocabSize {
				return fmt.Errorf("clip: token row %d, position %d: id %d outside the vocabulary [0, %d)", i, j, id, t.cfg.VocabSize)
			}
		}
	}
	return nil
}

// poolPosition is OpenAI's text.argmax(dim=-1): the first position of the
// largest id, the end-of-text token in tokenizer output.
func poolPosition(row []int32) int {
	best := 0
	for j, id := range row {
		if id > row[best] {
			best = j
		}
	}
	return best
}

// encode is CLIP.encode_text: the features [len(ids), E] of valid token
// rows.
//
// Under the causal mask a position never sees later ones, so the pooled
// position's output does not depend on the ids after it: each row is cut
// after its pooled position and the rows are packed without padding, which
// for short prompts skips most of the 77 positions.
func (t *textEncoder) encode(ids [][]int32, probe probe) *tensor.Matrix {
	seqs, pooled := packTokens(ids)
	x := t.embed(ids, seqs) // [N, W]: token_embedding(ids) + positional_embedding
	probe.see("txt_embed", x)
	x = t.transformer.forward(x, seqs, pooled, probe.prefixed("txt_")) // [B, W]: the outputs at the end-of-text positions
	t.lnFinal.apply(x, x)                                              // [B, W]: ln_final, a row-wise map, after the pooling
	probe.see("txt_eot_pooled", x)
	return matmul(x, t.textProjection) // [B, E]
}

// packTokens describes the rows of ids, each cut after its pooled position
// (poolPosition), stacked in order, and returns those positions.
func packTokens(ids [][]int32) (seqs []sequence, pooled []int) {
	seqs, pooled = make([]sequence, len(ids)), make([]int, len(ids))
	rows := 0
	for i, row := range ids {
		pooled[i] = poolPosition(row)
		n := pooled[i] + 1
		seqs[i] = sequence{start: rows, length: n, queries: n}
		rows += n
	}
	return seqs, pooled
}

// embed returns the token embeddings of the packed rows plus their
// positional embeddings, [N, W].
func (t *textEncoder) embed(ids [][]int32, seqs []sequence) *tensor.Matrix {
	last := seqs[len(seqs)-1]
	x := tensor.New(last.start+last.length, t.cfg.Width)
	for i, s := range seqs {
		for p := range s.length {
			dst, tok, pos := x.Row(s.start+p), t.tokenEmbedding.Row(int(ids[i][p])), t.positionalEmbedding.Row(p)
			for j := range dst {
				dst[j] = tok[j] + pos[j]
			}
		}
	}
	return x
}
