package clip

import "github.com/unimos/unimos/tensor"

// visionTransformer is model.py's VisionTransformer, CLIP's ViT image
// tower.
type visionTransformer struct {
	cfg                 VisionConfig
	grid                int            // patches per side
	conv1               *tensor.Matrix // [W, 3·p·p]: the patch embedding's weights, columns ordered (channel, ky, kx)
	classEmbedding      []float32      // [W]
	positionalEmbedding *tensor.Matrix // [grid²+1, W]
	lnPre               layerNorm
	transformer         transformer
	lnPost              layerNorm
	proj                *tensor.Matrix // [W, E]
}

func readVisionTransformer(r *reader, c VisionConfig, embedDim int) *visionTransformer {
	p, w := c.PatchSize, c.Width
	grid := c.ImageResolution / p
	return &visionTransformer{
		cfg:                 c,
		grid:                grid,
		conv1:               r.matrix("visual.conv1.weight", w, 3*p*p, w, 3, p, p),
		classEmbedding:      r.floats("visual.class_embedding", w),
		positionalEmbedding: r.matrix("visual.positional_embedding", grid*grid+1, w),
		lnPre:               r.layerNorm("visual.ln_pre", w, c.LayerNormEps),
		transformer:         readTransformer(r, "visual.transformer.resblocks.", c.Layers, w, c.Heads, c.MLPWidth, c.Activation, c.LayerNormEps, false),
		lnPost:              r.layerNorm("visual.ln_post", w, c.LayerNormEps),
		proj:                r.matrix("visual.proj", w, embedDim),
	}
}

// encode is VisionTransformer.forward: the features [B, E] of images, each
// [3, n, n]. With T = grid²+1 tokens per image:
func (v *visionTransformer) encode(images [][]float32, probe probe) *tensor.Matrix {
	x := v.patchEmbedding(images) // [B·grid², W]: conv1, one row per patch
	probe.see("img_conv1", x)
	x = v.tokens(x, len(images)) // [B·T, W]: class_embedding prepended, positional_embedding added
	v.lnPre.apply(x, x)          // [B·T, W]
	probe.see("img_ln_pre", x)
	// One sequence of T tokens per image, pooled at the class token,
	// position 0.
	seqs, classToken := fullSequences(len(images), v.grid*v.grid+1), make([]int, len(images))
	x = v.transformer.forward(x, seqs, classToken, probe.prefixed("img_")) // [B, W]
	probe.see("img_transformer_out", x)
	v.lnPost.apply(x, x) // [B, W]: ln_post(x[:, 0, :])
	probe.see("img_ln_post_cls", x)
	return matmul(x, v.proj) // [B, E]
}

// patchEmbedding is conv1 (kernel and stride p, no bias) followed by
// model.py's reshape and permute: [B·grid², W], row (image, gy, gx). With
// stride = kernel the convolution's im2col is a rearrangement of the pixels
// into rows (image, gy, gx), columns (channel, ky, kx), and one product does
// the rest.
func (v *visionTransformer) patchEmbedding(images [][]float32) *tensor.Matrix {
	n, p, g := v.cfg.ImageResolution, v.cfg.PatchSize, v.grid
	patches := g * g
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
	out := tensor.New(cols.Rows, v.cfg.Width)
	tensor.Gemm(false, true, 1, cols, v.conv1, 0, out)
	return out
}

// tokens returns the token sequences [B·T, W] of the patch embeddings
// [B·grid², W]: per image, the class embedding then the patches, plus the
// positional embedding.
func (v *visionTransformer) tokens(patches *tensor.Matrix, batch int) *tensor.Matrix {
	perImage := patches.Rows / batch
	t := perImage + 1
	x := tensor.New(batch*t, patches.Cols)
	for b := range batch {
		for i := range t {
			src := v.classEmbedding
			if i > 0 {
				src = patches.Row(b*perImage + i - 1)
			}
			dst, pos := x.Row(b*t+i), v.positionalEmbedding.Row(i)
			for j := range dst {
				dst[j] = src[j] + pos[j]
			}
		}
	}
	return x
}
