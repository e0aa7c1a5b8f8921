package clip

import (
	"math"

	"github.com/unimos/unimos/tensor"
)

// batchNormEps is torch.nn.BatchNorm2d's default epsilon, which CLIP keeps.
const batchNormEps = 1e-5

// conv2d is a bias-free convolution followed by an inference-mode
// BatchNorm, folded into one affine map at load time: weights scaled per
// output channel by γ/√(var+ε) and a bias β − mean·γ/√(var+ε).
type conv2d struct {
	w                       *tensor.Matrix // [out, in·k·k], columns ordered (in, ky, kx); nil once winograd is set
	b                       []float32      // [out]
	kernel, stride, padding int
	// winograd, when set, holds the filters transformed for applyWinograd,
	// which then replaces im2col and GEMM.
	winograd *tensor.Matrix
}

// readConvBN reads the convolution convName [out, in, k, k] and the
// BatchNorm bnPrefix.{weight,bias,running_mean,running_var} and folds them.
func readConvBN(r *reader, convName, bnPrefix string, in, out, kernel, stride, padding int) conv2d {
	w := r.matrix(convName, out, in*kernel*kernel, out, in, kernel, kernel)
	gamma := r.floats(bnPrefix+".weight", out)
	beta := r.floats(bnPrefix+".bias", out)
	mean := r.floats(bnPrefix+".running_mean", out)
	variance := r.floats(bnPrefix+".running_var", out)
	b := make([]float32, out)
	for o := range out {
		scale := float64(gamma[o]) / math.Sqrt(float64(variance[o])+batchNormEps)
		row := w.Row(o)
		for j := range row {
			row[j] = float32(float64(row[j]) * scale)
		}
		b[o] = float32(float64(beta[o]) - float64(mean[o])*scale)
	}
	return conv2d{w: w, b: b, kernel: kernel, stride: stride, padding: padding}
}

// im2colFloats bounds the im2col buffer of one convolution (16 MiB); larger
// batches are convolved a group of images at a time. Columns read back soon
// after being written cost less than one batch-wide buffer: RN50 at batch 8
// took about 4% less time than with 64 MiB (median of five interleaved runs
// on a busy machine) and 40 MiB less memory.
const im2colFloats = 4 << 20

// outputSize returns the output height and width for an h×w input.
func (c *conv2d) outputSize(h, w int) (int, int) {
	return (h+2*c.padding-c.kernel)/c.stride + 1, (w+2*c.padding-c.kernel)/c.stride + 1
}

// apply returns relu(conv(x) + bias) (the ReLU when relu is set), from ws;
// it consumes x.
func (c *conv2d) apply(x featureMap, relu bool, ws *workspace) featureMap {
	if c.winograd != nil {
		out := c.applyWinograd(x, relu, ws)
		ws.release(x)
		return out
	}
	out := c.applyUnbiased(x, ws)
	addChannelBias(out.m, c.b, relu)
	return out
}

// applyUnbiased returns conv(x) without the bias, from ws; it consumes x.
func (c *conv2d) applyUnbiased(x featureMap, ws *workspace) featureMap {
	ho, wo := c.outputSize(x.height, x.width)
	out := ws.featureMap(c.w.Rows, x.batch, ho, wo)
	c.product(out, x, 0, ws)
	ws.release(x)
	return out
}

// applyOnto returns relu(sum + conv(x) + bias), computed in sum's storage,
// which no other layer may still read; it consumes x. A residual block's
// sum, bias and ReLU take a single pass this way, with the biases of both
// of its branches in bias.
func (c *conv2d) applyOnto(sum, x featureMap, bias []float32, ws *workspace) featureMap {
	if sum.readers != nil && *sum.readers != 1 {
		panic("clip: applyOnto: the sum's feature map has other readers")
	}
	c.product(sum, x, 1, ws)
	ws.release(x)
	addChannelBias(sum.m, bias, true)
	return sum
}

// product sets out to the convolution of x without the bias, plus beta
// times out: out [Cout, B·Ho·Wo] = W [Cout, Cin·k·k] × columns
// [Cin·k·k, B·Ho·Wo] + beta·out. A 1×1 stride-1 convolution multiplies x
// directly; larger kernels go through im2col a group of images at a time,
// so that the columns stay within im2colFloats.
func (c *conv2d) product(out, x featureMap, beta float32, ws *workspace) {
	if c.kernel == 1 && c.stride == 1 && c.padding == 0 {
		tensor.Gemm(false, false, 1, c.w, x.m, beta, out.m)
		return
	}
	per := out.height * out.width
	group := min(x.batch, max(1, im2colFloats/(c.w.Cols*per)))
	buf := ws.columns(c.w.Cols * per * group)
	for b0 := 0; b0 < x.batch; b0 += group {
		b1 := min(x.batch, b0+group)
		cols := tensor.FromSlice(c.w.Cols, (b1-b0)*per, buf[:c.w.Cols*(b1-b0)*per])
		c.im2col(cols, x, b0, b1, out.height, out.width)
		tensor.Gemm(false, false, 1, c.w, cols, beta, out.m.Slice(0, out.m.Rows, b0*per, b1*per))
	}
}

// im2col fills cols [Cin·k·k, (b1-b0)·Ho·Wo] with the input patches of
// images [b0, b1): row (c, ky, kx), column (image, oy, ox) holds input
// pixel (oy·s + ky − pad, ox·s + kx − pad) of channel c, 0 outside.
func (c *conv2d) im2col(cols *tensor.Matrix, x featureMap, b0, b1, ho, wo int) {
	k, s := c.kernel, c.stride
	tensor.ParallelRanges(cols.Rows, cols.Cols, func(r0, r1 int) {
		for r := r0; r < r1; r++ {
			ch, ky, kx := r/(k*k), r/k%k, r%k
			shift := kx - c.padding // ix = ox·s + shift
			// Outputs [lo, hi) read inside the row; the rest is padding.
			lo := min(wo, max(0, (-shift+s-1)/s))
			hi := max(lo, min(wo, (x.width-shift+s-1)/s))
			dst := cols.Row(r)
			for b := b0; b < b1; b++ {
				src := x.plane(ch, b)
				for oy := range ho {
					out := dst[((b-b0)*ho+oy)*wo:][:wo]
					iy := oy*s + ky - c.padding
					if iy < 0 || iy >= x.height {
						clear(out)
						continue
					}
					line := src[iy*x.width : (iy+1)*x.width]
					clear(out[:lo])
					clear(out[hi:])
					if s == 1 {
						copy(out[lo:hi], line[lo+shift:])
						continue
					}
					for ox := lo; ox < hi; ox++ {
						out[ox] = line[ox*s+shift]
					}
				}
			}
		}
	})
}

// addChannelBias adds b[c] to row c of m and, with relu, clamps at zero.
func addChannelBias(m *tensor.Matrix, b []float32, relu bool) {
	tensor.ParallelRanges(m.Rows, m.Cols, func(r0, r1 int) {
		for r := r0; r < r1; r++ {
			row, bias := m.Row(r), b[r]
			if relu {
				for j, v := range row {
					row[j] = max(v+bias, 0)
				}
			} else {
				for j := range row {
					row[j] += bias
				}
			}
		}
	})
}

// avgPool is torch.nn.AvgPool2d(k): the mean of each k×k block, stride k,
// partial blocks at the right and bottom edges dropped; for k = 1 it is x
// itself, as model.py's nn.Identity. The result comes from ws; it consumes
// x.
func avgPool(x featureMap, k int, ws *workspace) featureMap {
	if k == 1 {
		return x
	}
	ho, wo := x.height/k, x.width/k
	out := ws.featureMap(x.m.Rows, x.batch, ho, wo)
	inv := 1 / float32(k*k)
	tensor.ParallelRanges(x.m.Rows, x.m.Cols, func(c0, c1 int) {
		for c := c0; c < c1; c++ {
			for b := range x.batch {
				src, dst := x.plane(c, b), out.plane(c, b)
				for oy := range ho {
					for ox := range wo {
						var sum float32
						for dy := range k {
							line := src[(oy*k+dy)*x.width+ox*k:][:k]
							for _, v := range line {
								sum += v
							}
						}
						dst[oy*wo+ox] = sum * inv
					}
				}
			}
		}
	})
	ws.release(x)
	return out
}
