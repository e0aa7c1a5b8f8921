package clip

import "github.com/unimos/unimos/tensor"

// visionTransformer is CLIP's ViT image tower.
type visionTransformer struct {
	cfg        VisionConfig
	grid       int            // patches per side
	patch      *tensor.Matrix // [W, 3·p·p]: conv1 weights, columns ordered (channel, ky, kx)
	class      []float32      // [W]
	positional *tensor.Matrix // [grid²+1, W]
	lnPre      layerNorm
	blocks     transformer
	lnPost     layerNorm
	projection *tensor.Matrix // [W, E]
}

func readVisionTransformer(r *reader, c VisionConfig, embedDim int) *visionTransformer {
	p, w := c.PatchSize, c.Width
	grid := c.ImageResolution / p
	return &visionTransformer{
		cfg:        c,
		grid:       grid,
		patch:      r.matrix("visual.conv1.weight", w, 3*p*p, w, 3, p, p),
		class:      r.floats("visual.class_embedding", w),
		positional: r.matrix("visual.positional_embedding", grid*grid+1, w),
		lnPre:      r.layerNorm("visual.ln_pre", w, c.LayerNormEps),
		blocks:     readTransformer(r, "visual.transformer.resblocks.", c.Layers, w, c.Heads, c.MLPWidth, c.Activation, c.LayerNormEps),
		lnPost:     r.layerNorm("visual.ln_post", w, c.LayerNormEps),
		projection: r.matrix("visual.proj", w, embedDim),
	}
}

// encode returns the features [B, E] of images, each [3, n, n].
func (v *visionTransformer) encode(images [][]float32, probe probe) *tensor.Matrix {
	n, p, g := v.cfg.ImageResolution, v.cfg.PatchSize, v.grid
	width := v.cfg.Width
	patches := g * g
	tokens := patches + 1

	// conv1 has stride = kernel = p, so its im2col is a rearrangement:
	// row (image, gy, gx), column (channel, ky, kx).
	cols := tensor.New(len(images)*patches, 3*p*p)
	for b, img := range images {
		for c := range 3 {
			plane := img[c*n*n : (c+1)*n*n]
			for gy := range g {
				for ky := range p {
					src := plane[(gy*p+ky)*n:]
					for gx := range g {
						copy(cols.Row(b*patches + gy*g + gx)[(c*p+ky)*p:][:p], src[gx*p:])
					}
				}
			}
		}
	}
	emb := tensor.New(len(images)*patches, width) // [B·g², W]
	tensor.Gemm(false, true, 1, cols, v.patch, 0, emb)
	probe.see("img_conv1", emb)

	x := tensor.New(len(images)*tokens, width) // [B·T, W]
	for b := range images {
		for t := range tokens {
			src := v.class
			if t > 0 {
				src = emb.Row(b*patches + t - 1)
			}
			dst, pos := x.Row(b*tokens+t), v.positional.Row(t)
			for j := range dst {
				dst[j] = src[j] + pos[j]
			}
		}
	}
	v.lnPre.apply(x, x)
	probe.see("img_ln_pre", x)

	seqs := fullSequences(len(images), tokens)
	classRows := make([]int, len(images)) // the class token, position 0
	var y *tensor.Matrix                  // [B, W]
	if probe == nil {
		y = v.blocks.forward(x, seqs, classRows, false, nil)
	} else {
		x = v.blocks.forward(x, seqs, nil, false, probe.prefixed("img_"))
		probe.see("img_transformer_out", x)
		y = tensor.New(len(images), width)
		gatherQueries(y, x, pooledSequences(seqs, classRows))
	}
	v.lnPost.apply(y, y)
	probe.see("img_ln_post_cls", y)

	out := tensor.New(len(images), v.projection.Cols)
	tensor.Gemm(false, false, 1, y, v.projection, 0, out)
	return out
}
