package clip

import (
	"fmt"

	"github.com/unimos/unimos/tensor"
)

// modifiedResNet is model.py's ModifiedResNet, CLIP's ResNet image tower: a
// three-convolution stem with a 2×2 average pool, four stages of bottleneck
// blocks, and attention pooling. Every convolution carries its BatchNorm,
// folded into it at load time (readConvBN).
//
// The feature maps of a pass come from a workspace, which recycles them:
// each layer consumes its input map (see featureMap).
type modifiedResNet struct {
	cfg                 VisionConfig
	conv1, conv2, conv3 conv2d // the stem, with bn1, bn2, bn3
	layers              [4][]bottleneck
	attnpool            attentionPool
}

// bottleneck is model.py's Bottleneck (expansion 4): 1×1, 3×3 and 1×1
// convolutions, with its stride as an average pool before conv3 and before
// the downsampling convolution.
type bottleneck struct {
	conv1, conv2, conv3 conv2d
	downsample          *conv2d // nil: the identity shortcut
	stride              int
	// outBias is the bias of the block's output: bn3's, plus the
	// downsampling BatchNorm's when there is one, added once to the sum of
	// the two convolutions.
	outBias []float32
}

// attentionPool is model.py's AttentionPool2d: multi-head attention from
// the mean token to all tokens of the final feature map.
type attentionPool struct {
	positionalEmbedding *tensor.Matrix // [H·W+1, C]
	attn                attention      // q_proj, k_proj, v_proj stacked in attn.in; c_proj as attn.out
}

// resNetStemSide returns the side of the feature map after the stem's
// first convolution (3×3, stride 2, padding 1) for input side n.
func resNetStemSide(n int) int { return (n-1)/2 + 1 }

// resNetOutputSide returns the side of the final feature map for input
// side n: the stem's stride-2 convolution and 2×2 pool, then a halving in
// each of stages 2 to 4 (readModifiedResNet follows the same steps).
func resNetOutputSide(n int) int {
	side := resNetStemSide(n)
	for range 4 {
		side /= 2
	}
	return side
}

func readModifiedResNet(r *reader, c VisionConfig, embedDim int) *modifiedResNet {
	w := c.Width
	m := &modifiedResNet{
		cfg:   c,
		conv1: readConvBN(r, "visual.conv1.weight", "visual.bn1", 3, w/2, 3, 2, 1),
		conv2: readConvBN(r, "visual.conv2.weight", "visual.bn2", w/2, w/2, 3, 1, 1),
		conv3: readConvBN(r, "visual.conv3.weight", "visual.bn3", w/2, w, 3, 1, 1),
	}
	side := resNetStemSide(c.ImageResolution)
	m.conv2.useWinogradFor(side)
	m.conv3.useWinogradFor(side)
	side /= 2 // the stem's pool
	inplanes := w
	for s, blocks := range c.ResNetLayers {
		planes := w << s
		for j := range blocks {
			stride := 1
			if s > 0 && j == 0 {
				stride = 2
			}
			p := fmt.Sprintf("visual.layer%d.%d.", s+1, j)
			b := bottleneck{
				conv1:  readConvBN(r, p+"conv1.weight", p+"bn1", inplanes, planes, 1, 1, 0),
				conv2:  readConvBN(r, p+"conv2.weight", p+"bn2", planes, planes, 3, 1, 1),
				conv3:  readConvBN(r, p+"conv3.weight", p+"bn3", planes, 4*planes, 1, 1, 0),
				stride: stride,
			}
			b.conv2.useWinogradFor(side) // conv2 runs before the block's pool
			if stride > 1 {
				side /= stride
			}
			b.outBias = b.conv3.b
			if stride > 1 || inplanes != 4*planes {
				d := readConvBN(r, p+"downsample.0.weight", p+"downsample.1", inplanes, 4*planes, 1, 1, 0)
				b.downsample = &d
				b.outBias = make([]float32, 4*planes)
				for o := range b.outBias {
					b.outBias[o] = b.conv3.b[o] + d.b[o]
				}
			}
			m.layers[s] = append(m.layers[s], b)
			inplanes = 4 * planes
		}
	}

	dim := 32 * w // side is now resNetOutputSide(c.ImageResolution), the attention pool's grid
	q := r.linear("visual.attnpool.q_proj", dim, dim)
	k := r.linear("visual.attnpool.k_proj", dim, dim)
	v := r.linear("visual.attnpool.v_proj", dim, dim)
	in := linear{w: tensor.New(3*dim, dim), b: make([]float32, 0, 3*dim)}
	for i, l := range []linear{q, k, v} {
		copy(in.w.Data[i*dim*dim:], l.w.Data)
		in.b = append(in.b, l.b...)
	}
	m.attnpool = attentionPool{
		positionalEmbedding: r.matrix("visual.attnpool.positional_embedding", side*side+1, dim),
		attn:                attention{heads: c.Heads, in: in, out: r.linear("visual.attnpool.c_proj", embedDim, dim)},
	}
	return m
}

// encode is ModifiedResNet.forward: the features [B, E] of images, each
// [3, n, n]. Feature maps are [C, B·H·W] (featureMap).
func (m *modifiedResNet) encode(images [][]float32, probe probe) *tensor.Matrix {
	ws := workspaces.Get().(*workspace)
	defer workspaces.Put(ws)
	x := ws.images(images, m.cfg.ImageResolution) // [3, B·n·n]
	x = m.stem(x, ws, probe)                      // [W, B·(n/4)²]
	probe.see("img_stem", x.m)
	for i, layer := range m.layers {
		for j := range layer {
			x = layer[j].forward(x, ws) // [4·W·2^i, B·(n/2^(i+2))²]
		}
		probe.see(fmt.Sprintf("img_layer%d", i+1), x.m)
	}
	return m.attnpool.forward(x, ws) // [B, E]
}

// stem is the stem function of ModifiedResNet.forward; it consumes x.
func (m *modifiedResNet) stem(x featureMap, ws *workspace, probe probe) featureMap {
	x = m.conv1.apply(x, false, ws) // [W/2, B·(n/2)²]: bn1(conv1(x))
	probe.see("img_stem_conv1", x.m)
	tensor.ReLU(x.m, x.m)          // relu1
	x = m.conv2.apply(x, true, ws) // [W/2, B·(n/2)²]: relu2(bn2(conv2(x)))
	x = m.conv3.apply(x, true, ws) // [W, B·(n/2)²]: relu3(bn3(conv3(x)))
	return avgPool(x, 2, ws)       // [W, B·(n/4)²]
}

// forward is Bottleneck.forward, for x [C, B·H·W]; it consumes x. With P
// the block's planes and H', W' the sides after its stride:
func (b *bottleneck) forward(x featureMap, ws *workspace) featureMap {
	identity := ws.share(x)            // x is read twice: by conv1 and as the shortcut
	out := b.conv1.apply(x, true, ws)  // [P, B·H·W]: relu1(bn1(conv1(x)))
	out = b.conv2.apply(out, true, ws) // [P, B·H·W]: relu2(bn2(conv2(out)))
	out = avgPool(out, b.stride, ws)   // [P, B·H'·W']
	if b.downsample != nil {
		identity = avgPool(identity, b.stride, ws)          // [C, B·H'·W']
		identity = b.downsample.applyUnbiased(identity, ws) // [4P, B·H'·W']: downsample(x), its bias left to outBias
	}
	return b.conv3.applyOnto(identity, out, b.outBias, ws) // [4P, B·H'·W']: relu3(bn3(conv3(out)) + identity)
}

// forward is AttentionPool2d.forward: the pooled features [B, E] of the
// feature maps x [C, B·H·W]; it consumes x.
func (p *attentionPool) forward(x featureMap, ws *workspace) *tensor.Matrix {
	t := p.tokens(x) // [B·T, C], T = H·W + 1: per image, the mean token, then the positions
	ws.release(x)
	s := getScratch()
	defer scratches.Put(s)
	// One sequence of T tokens per image, whose only query is the mean
	// token, position 0.
	seqs := pooledSequences(fullSequences(x.batch, t.Rows/x.batch), make([]int, x.batch))
	y := p.attn.forward(t, seqs, s) // [B, E]
	return y.Clone()                // out of s, which goes back to the pool
}

// tokens returns, per image, the mean of the H·W positions of x followed by
// the positions, plus the positional embedding: [B·(H·W+1), C].
func (p *attentionPool) tokens(x featureMap) *tensor.Matrix {
	hw := x.height * x.width
	tokens := hw + 1
	channels := x.m.Rows
	t := tensor.New(x.batch*tokens, channels)
	for c := range channels {
		for b := range x.batch {
			plane := x.plane(c, b)
			var sum float64
			for i, v := range plane {
				t.Data[(b*tokens+1+i)*channels+c] = v
				sum += float64(v)
			}
			t.Data[b*tokens*channels+c] = float32(sum / float64(hw))
		}
	}
	for b := range x.batch {
		rows := rowsOf(t, b*tokens, (b+1)*tokens)
		tensor.Add(rows, rows, p.positionalEmbedding)
	}
	return t
}
