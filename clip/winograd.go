package clip

import (
	"github.com/unimos/unimos/tensor"
)

// Winograd's minimal filtering F(4×4, 3×3) (Lavin and Gray, "Fast
// Algorithms for Convolutional Neural Networks", 2016) computes a 4×4 block
// of a 3×3 convolution's output from a 6×6 block of its input with 36
// multiplications per pair of channels instead of 144. Transformed, the
// convolution becomes 36 independent matrix products, one per point ξ of
// the 6×6 transform domain,
//
//	M_ξ [Cout, T] = U_ξ [Cout, Cin] · V_ξ [Cin, T],
//
// over the T tiles of the batch, with U = G·g·Gᵀ the transformed filters
// (computed once at load time), V = Bᵀ·d·B the transformed input tiles and
// the output block Y = Aᵀ·M·A. For the 3×3 convolutions of a ResNet this is
// 4 times fewer multiply-adds than im2col and GEMM, for a few additions per
// value in the transforms, and no im2col matrix 9 times the input's size.
// It applies to 3×3 convolutions with stride 1 and padding 1.
const (
	winogradTile   = 4                             // output tile side
	winogradInput  = winogradTile + 2              // input tile side
	winogradPoints = winogradInput * winogradInput // matrix products per convolution
	// winogradFloats bounds each of the V and M buffers of one chunk of
	// tiles (8 MiB), so that a chunk's transforms and products share the
	// last-level cache.
	winogradFloats = 2 << 20
	// winogradMinSide is the smallest output side that goes through the
	// transform: on a 7×7 map, tiles of 4 would waste 30% of the work.
	winogradMinSide = 8
)

// winogradG is G [6, 3] of F(4×4, 3×3), which transforms a filter row or column.
var winogradG = [winogradInput][3]float64{
	{1.0 / 4, 0, 0},
	{-1.0 / 6, -1.0 / 6, -1.0 / 6},
	{-1.0 / 6, 1.0 / 6, -1.0 / 6},
	{1.0 / 24, 1.0 / 12, 1.0 / 6},
	{1.0 / 24, -1.0 / 12, 1.0 / 6},
	{0, 0, 1},
}

// winogradFilters returns U [36·Cout, Cin] for the 3×3 filters w [Cout,
// Cin·9] (columns (in, ky, kx)): rows ξ·Cout to (ξ+1)·Cout hold U_ξ, with
// U_ξ[o][i] = (G·g·Gᵀ)[ξ/6][ξ%6] for the filter g of output o and input i.
func winogradFilters(w *tensor.Matrix) *tensor.Matrix {
	out, in := w.Rows, w.Cols/9
	u := tensor.New(winogradPoints*out, in)
	for o := range out {
		for i := range in {
			g := w.Row(o)[i*9 : (i+1)*9]
			var gg [winogradInput][3]float64 // G·g
			for a := range winogradInput {
				for kx := range 3 {
					for ky := range 3 {
						gg[a][kx] += winogradG[a][ky] * float64(g[ky*3+kx])
					}
				}
			}
			for a := range winogradInput {
				for b := range winogradInput {
					var v float64 // (G·g·Gᵀ)[a][b]
					for kx := range 3 {
						v += gg[a][kx] * winogradG[b][kx]
					}
					u.Data[((a*winogradInput+b)*out+o)*in+i] = float32(v)
				}
			}
		}
	}
	return u
}

// useWinogradFor switches c to applyWinograd for input maps side×side when
// the transform applies and pays: a 3×3 convolution with stride 1 and
// padding 1, on maps of at least winogradMinSide.
func (c *conv2d) useWinogradFor(side int) {
	if c.kernel == 3 && c.stride == 1 && c.padding == 1 && side >= winogradMinSide {
		c.winograd = winogradFilters(c.w)
	}
}

// applyWinograd is apply for a 3×3, stride-1, padding-1 convolution: the
// result, with the bias added and, when relu is set, clamped at zero, comes
// from ws; x is left to the caller. The tiles are processed in chunks of
// whole tile rows: transform a chunk's input, multiply, transform back into
// the output, which also adds the bias and applies the ReLU.
func (c *conv2d) applyWinograd(x featureMap, relu bool, ws *workspace) featureMap {
	return c.applyWinogradChunked(x, relu, ws, winogradFloats)
}

// applyWinogradChunked is applyWinograd with chunks whose buffers hold at
// most budget floats each (or one tile row).
func (c *conv2d) applyWinogradChunked(x featureMap, relu bool, ws *workspace, budget int) featureMap {
	cin, cout := x.m.Rows, c.w.Rows
	out := ws.featureMap(cout, x.batch, x.height, x.width)
	tilesHigh := (x.height + winogradTile - 1) / winogradTile
	tilesWide := (x.width + winogradTile - 1) / winogradTile
	tileRows := x.batch * tilesHigh // (image, tile row) pairs
	perChunk := max(1, budget/(winogradPoints*max(cin, cout)*tilesWide))
	v, m := ws.winogradBuffers(winogradPoints * max(cin, cout) * min(perChunk, tileRows) * tilesWide)
	for r0 := 0; r0 < tileRows; r0 += perChunk {
		r1 := min(tileRows, r0+perChunk)
		n := (r1 - r0) * tilesWide
		input := tensor.FromSlice(winogradPoints*cin, n, v[:winogradPoints*cin*n])
		products := tensor.FromSlice(winogradPoints*cout, n, m[:winogradPoints*cout*n])
		parallelRanges(cin, n*winogradPoints, func(c0, c1 int) {
			winogradInputTransform(input, x, c0, c1, r0, r1, tilesHigh, tilesWide)
		})
		for xi := range winogradPoints {
			tensor.Gemm(false, false, 1,
				c.winograd.Slice(xi*cout, (xi+1)*cout, 0, cin),
				input.Slice(xi*cin, (xi+1)*cin, 0, n),
				0, products.Slice(xi*cout, (xi+1)*cout, 0, n))
		}
		parallelRanges(cout, n*winogradPoints, func(o0, o1 int) {
			winogradOutputTransform(out, products, c.b, relu, o0, o1, r0, r1, tilesHigh, tilesWide)
		})
	}
	return out
}

// winogradBuffers returns the V and M buffers, each of at least n floats.
func (w *workspace) winogradBuffers(n int) (v, m []float32) {
	if cap(w.winogradV) < n {
		w.winogradV, w.winogradM = make([]float32, n), make([]float32, n)
	}
	return w.winogradV[:n], w.winogradM[:n]
}

// winogradInputTransform writes V = Bᵀ·d·B for channels [c0, c1) of the
// tile rows [r0, r1) of x into v [36·Cin, n]: row ξ·Cin + c, column
// (r − r0)·tilesWide + tx holds point ξ of channel c's tile tx in tile
// row r (image r / tilesHigh, tile row r % tilesHigh). Input outside the
// map is zero (the padding).
func winogradInputTransform(v *tensor.Matrix, x featureMap, c0, c1, r0, r1, tilesHigh, tilesWide int) {
	cin := x.m.Rows
	padded := (tilesWide*winogradTile + 2) // columns −1 … 4·tilesWide of a transformed row
	var rows [winogradInput][]float32      // Bᵀ·d for one tile row, each padded wide
	buf := make([]float32, winogradInput*padded)
	for k := range rows {
		rows[k] = buf[k*padded : (k+1)*padded]
	}
	zero := make([]float32, x.width)
	for ch := c0; ch < c1; ch++ {
		for r := r0; r < r1; r++ {
			plane := x.plane(ch, r/tilesHigh)
			top := r%tilesHigh*winogradTile - 1
			var d [winogradInput][]float32 // the tile row's input rows, zero outside
			for k := range d {
				if y := top + k; y >= 0 && y < x.height {
					d[k] = plane[y*x.width : (y+1)*x.width]
				} else {
					d[k] = zero
				}
			}
			// Bᵀ applied down the columns, into rows shifted by one for the left padding.
			for k := range rows {
				clear(rows[k][:1])
				clear(rows[k][1+x.width:])
			}
			for j := range x.width {
				bt(d[0][j], d[1][j], d[2][j], d[3][j], d[4][j], d[5][j],
					&rows[0][j+1], &rows[1][j+1], &rows[2][j+1], &rows[3][j+1], &rows[4][j+1], &rows[5][j+1])
			}
			// B applied along each row: tile tx covers padded columns 4·tx … 4·tx+5.
			col := (r - r0) * tilesWide
			for k, row := range rows {
				var dst [winogradInput][]float32
				for j := range dst {
					dst[j] = v.Row((k*winogradInput+j)*cin + ch)[col : col+tilesWide]
				}
				for tx := range tilesWide {
					e := row[tx*winogradTile : tx*winogradTile+winogradInput]
					bt(e[0], e[1], e[2], e[3], e[4], e[5],
						&dst[0][tx], &dst[1][tx], &dst[2][tx], &dst[3][tx], &dst[4][tx], &dst[5][tx])
				}
			}
		}
	}
}

// bt computes Bᵀ·d for one column d of six values:
//
//	Bᵀ = [4  0 −5  0 1 0]
//	     [0 −4 −4  1 1 0]
//	     [0  4 −4 −1 1 0]
//	     [0 −2 −1  2 1 0]
//	     [0  2 −1 −2 1 0]
//	     [0  4  0 −5 0 1]
func bt(d0, d1, d2, d3, d4, d5 float32, t0, t1, t2, t3, t4, t5 *float32) {
	p, q := d4-4*d2, d3-4*d1
	r, s := d4-d2, 2*(d3-d1)
	*t0 = 4*d0 - 5*d2 + d4
	*t1 = p + q
	*t2 = p - q
	*t3 = r + s
	*t4 = r - s
	*t5 = 4*d1 - 5*d3 + d5
}

// winogradOutputTransform computes Y = Aᵀ·M·A for output channels [o0, o1)
// of the tile rows [r0, r1) from m [36·Cout, n] (laid out as
// winogradInputTransform's v), adds the bias, applies the ReLU when relu is
// set and writes the blocks that lie inside out.
func winogradOutputTransform(out featureMap, m *tensor.Matrix, bias []float32, relu bool, o0, o1, r0, r1, tilesHigh, tilesWide int) {
	cout := out.m.Rows
	for o := o0; o < o1; o++ {
		b := bias[o]
		for r := r0; r < r1; r++ {
			plane := out.plane(o, r/tilesHigh)
			top := r % tilesHigh * winogradTile
			col := (r - r0) * tilesWide
			var src [winogradPoints][]float32
			for xi := range src {
				src[xi] = m.Row(xi*cout + o)[col : col+tilesWide]
			}
			for tx := range tilesWide {
				var s [winogradTile][winogradInput]float32 // Aᵀ·M
				for j := range winogradInput {
					at(src[j][tx], src[6+j][tx], src[12+j][tx], src[18+j][tx], src[24+j][tx], src[30+j][tx],
						&s[0][j], &s[1][j], &s[2][j], &s[3][j])
				}
				left := tx * winogradTile
				for i := range winogradTile {
					y := top + i
					if y >= out.height {
						break
					}
					var line [winogradTile]float32 // row i of Aᵀ·M·A
					at(s[i][0], s[i][1], s[i][2], s[i][3], s[i][4], s[i][5], &line[0], &line[1], &line[2], &line[3])
					dst := plane[y*out.width+left : y*out.width+min(out.width, left+winogradTile)]
					for j := range dst {
						v := line[j] + b
						if relu {
							v = max(v, 0)
						}
						dst[j] = v
					}
				}
			}
		}
	}
}

// at computes Aᵀ·m for one column m of six values:
//
//	Aᵀ = [1 1  1 1  1 0]
//	     [0 1 −1 2 −2 0]
//	     [0 1  1 4  4 0]
//	     [0 1 −1 8 −8 1]
func at(m0, m1, m2, m3, m4, m5 float32, y0, y1, y2, y3 *float32) {
	a, b := m1+m2, m1-m2
	c, d := m3+m4, m3-m4
	*y0 = m0 + a + c
	*y1 = b + 2*d
	*y2 = a + 4*c
	*y3 = b + 8*d + m5
}
