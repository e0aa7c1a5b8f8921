package clip

import (
	"fmt"

	"github.com/unimos/unimos/tensor"
)

// textEncoder is CLIP's text tower: token and positional embeddings, a
// causal transformer, ln_final, and the projection of the end-of-text
// position.
type textEncoder struct {
	cfg            TextConfig
	tokenEmbedding *tensor.Matrix // [V, W]
	positional     *tensor.Matrix // [C, W]
	transformer    transformer
	lnFinal        layerNorm
	projection     *tensor.Matrix // [W, E]
}

func readTextEncoder(r *reader, c TextConfig, embedDim int) *textEncoder {
	return &textEncoder{
		cfg:            c,
		tokenEmbedding: r.matrix("token_embedding.weight", c.VocabSize, c.Width),
		positional:     r.matrix("positional_embedding", c.ContextLength, c.Width),
		transformer:    readTransformer(r, "transformer.resblocks.", c.Layers, c.Width, c.Heads, c.MLPWidth, c.Activation, c.LayerNormEps),
		lnFinal:        r.layerNorm("ln_final", c.Width, c.LayerNormEps),
		projection:     r.matrix("text_projection", c.Width, embedDim),
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

// encode returns the features [len(ids), E] of valid token rows.
//
// Under the causal mask a position never sees later ones, so the pooled
// position's output does not depend on the ids after it: each row is cut
// after its pooled position and the rows are packed without padding, which
// for short prompts skips most of the 77 positions. With a probe every
// given position is computed, as the reference does.
func (t *textEncoder) encode(ids [][]int32, probe probe) *tensor.Matrix {
	width := t.cfg.Width
	seqs := make([]sequence, len(ids))
	pooled := make([]int, len(ids))
	rows := 0
	for i, row := range ids {
		pooled[i] = poolPosition(row)
		n := pooled[i] + 1
		if probe != nil {
			n = len(row)
		}
		seqs[i] = sequence{start: rows, length: n, queries: n}
		rows += n
	}

	x := tensor.New(rows, width) // [N, W]
	for i, s := range seqs {
		for p := range s.length {
			dst, tok, pos := x.Row(s.start+p), t.tokenEmbedding.Row(int(ids[i][p])), t.positional.Row(p)
			for j := range dst {
				dst[j] = tok[j] + pos[j]
			}
		}
	}
	probe.see("txt_embed", x)

	var y *tensor.Matrix // [len(ids), W]: the pooled rows
	if probe == nil {
		y = t.transformer.forward(x, seqs, pooled, true, nil)
		t.lnFinal.apply(y, y)
	} else {
		x = t.transformer.forward(x, seqs, nil, true, probe.prefixed("txt_"))
		t.lnFinal.apply(x, x)
		probe.see("txt_ln_final", x)
		seqs = pooledSequences(seqs, pooled)
		y = tensor.New(len(seqs), width)
		gatherQueries(y, x, seqs)
	}
	probe.see("txt_eot_pooled", y)

	out := tensor.New(len(ids), t.projection.Cols)
	tensor.Gemm(false, false, 1, y, t.projection, 0, out)
	return out
}
