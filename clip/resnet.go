package clip

import (
	"fmt"

	"github.com/unimos/unimos/tensor"
)

// modifiedResNet is CLIP's ResNet image tower: a three-convolution stem
// with a 2×2 average pool, four stages of bottleneck blocks, and attention
// pooling.
type modifiedResNet struct {
	cfg    VisionConfig
	stem   [3]conv2d
	stages [4][]bottleneck
	pool   attentionPool
}

// bottleneck is a ResNet bottleneck block (expansion 4) whose stride is an
// average pool before conv3 and before the downsampling convolution.
type bottleneck struct {
	conv1, conv2, conv3 conv2d
	downsample          *conv2d // nil: the identity shortcut
	stride              int
	// outBias is the bias of the block's output: conv3's, plus the
	// downsampling convolution's when there is one, added once to the sum
	// of the two products.
	outBias []float32
}

// attentionPool is multi-head attention from the mean token to all tokens
// of the final feature map.
type attentionPool struct {
	positional *tensor.Matrix // [H·W+1, C]
	attn       attention      // q, k, v stacked in attn.in; c_proj as attn.out
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
	m := &modifiedResNet{cfg: c}
	m.stem = [3]conv2d{
		readConvBN(r, "visual.conv1.weight", "visual.bn1", 3, w/2, 3, 2, 1),
		readConvBN(r, "visual.conv2.weight", "visual.bn2", w/2, w/2, 3, 1, 1),
		readConvBN(r, "visual.conv3.weight", "visual.bn3", w/2, w, 3, 1, 1),
	}
	side := resNetStemSide(c.ImageResolution)
	m.stem[1].useWinogradFor(side)
	m.stem[2].useWinogradFor(side)
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
			m.stages[s] = append(m.stages[s], b)
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
	m.pool = attentionPool{
		positional: r.matrix("visual.attnpool.positional_embedding", side*side+1, dim),
		attn:       attention{heads: c.Heads, in: in, out: r.linear("visual.attnpool.c_proj", embedDim, dim)},
	}
	return m
}

// encode returns the features [B, E] of images, each [3, n, n].
func (m *modifiedResNet) encode(images [][]float32, probe probe) *tensor.Matrix {
	ws := workspaces.Get().(*workspace)
	defer workspaces.Put(ws)
	x := imagesToFeatureMap(images, 3, m.cfg.ImageResolution, ws)
	x = m.stem[0].applyReleasing(x, false, ws)
	probe.see("img_stem_conv1", x.m) // BatchNorm included: it is folded into the convolution
	tensor.ReLU(x.m, x.m)
	x = m.stem[1].applyReleasing(x, true, ws)
	x = m.stem[2].applyReleasing(x, true, ws)
	pooled := avgPool(x, 2, ws)
	ws.release(x)
	x = pooled
	probe.see("img_stem", x.m)
	for s, blocks := range m.stages {
		for i := range blocks {
			x = blocks[i].forward(x, ws)
		}
		probe.see(fmt.Sprintf("img_layer%d", s+1), x.m)
	}
	out := m.pool.forward(x)
	ws.release(x)
	return out
}

// applyReleasing is apply followed by releasing x.
func (c *conv2d) applyReleasing(x featureMap, relu bool, ws *workspace) featureMap {
	out := c.apply(x, relu, ws)
	ws.release(x)
	return out
}

// forward runs the block on x, which it consumes: the result may be x's
// storage updated in place. Both products of the residual sum accumulate
// into one map, so the sum, its bias and the ReLU take a single pass.
func (b *bottleneck) forward(x featureMap, ws *workspace) featureMap {
	mid := b.conv1.apply(x, true, ws)
	mid = b.conv2.applyReleasing(mid, true, ws)
	if b.stride > 1 {
		pooled := avgPool(mid, b.stride, ws)
		ws.release(mid)
		mid = pooled
	}
	sum := x // the identity shortcut: x is not needed after this block
	if b.downsample != nil {
		shortcut := x
		if b.stride > 1 {
			shortcut = avgPool(x, b.stride, ws)
		}
		sum = ws.featureMap(b.downsample.w.Rows, mid.batch, mid.height, mid.width)
		b.downsample.product(sum, shortcut, 0, ws)
		if b.stride > 1 {
			ws.release(shortcut)
		}
		ws.release(x)
	}
	b.conv3.product(sum, mid, 1, ws)
	ws.release(mid)
	addChannelBias(sum.m, b.outBias, true)
	return sum
}

// forward pools x [C, B·H·W] into [B, E]: per image, the tokens are the
// mean of the H·W positions followed by the positions, plus the positional
// embedding, and the mean token alone queries them.
func (p *attentionPool) forward(x featureMap) *tensor.Matrix {
	hw := x.height * x.width
	tokens := hw + 1
	channels := x.m.Rows
	t := tensor.New(x.batch*tokens, channels) // [B·T, C]
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
		rows := t.Slice(b*tokens, (b+1)*tokens, 0, channels)
		tensor.Add(rows, rows, p.positional)
	}
	seqs := make([]sequence, x.batch)
	for b := range seqs {
		seqs[b] = sequence{start: b * tokens, length: tokens, queries: 1}
	}
	s := getScratch()
	defer scratches.Put(s)
	return p.attn.forward(t, seqs, s).Clone() // the result lives in s, which goes back to the pool
}
