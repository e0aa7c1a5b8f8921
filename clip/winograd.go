package clip

import (
	"sync"

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
	// tiles (4 MiB), so that the chunks of two workers, transforms and
	// products, share the last-level cache.
	winogradFloats = 1 << 20
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
		c.w = nil // applyWinograd needs only U
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
// most budget floats each (or one tile row). The chunks go round-robin to
// one goroutine per thread, each of which transforms and multiplies its own
// on one thread (GemmSerial): a chunk's 36 products are too small to keep
// two of the backend's threads busy, and split finer the transforms would
// wait for each product.
func (c *conv2d) applyWinogradChunked(x featureMap, relu bool, ws *workspace, budget int) featureMap {
	cin, cout := x.m.Rows, c.winograd.Rows/winogradPoints
	out := ws.featureMap(cout, x.batch, x.height, x.width)
	tilesHigh := (x.height + winogradTile - 1) / winogradTile
	tilesWide := (x.width + winogradTile - 1) / winogradTile
	tileRows := x.batch * tilesHigh                          // (image, tile row) pairs
	rowFloats := winogradPoints * max(cin, cout) * tilesWide // of V or M per tile row
	workers := min(tensor.Threads(), tileRows)
	perChunk := max(1, budget/rowFloats) // tile rows, by the budget alone
	chunks := (tileRows + perChunk - 1) / perChunk
	chunks = min(tileRows, (chunks+workers-1)/workers*workers) // a whole number per worker where possible
	perChunk = (tileRows + chunks - 1) / chunks                // no more than before
	chunks = (tileRows + perChunk - 1) / perChunk
	size := perChunk * rowFloats
	v, m := ws.winogradBuffers(workers * size)
	var wg sync.WaitGroup
	for w := range workers {
		v, m := v[w*size:(w+1)*size], m[w*size:(w+1)*size]
		wg.Go(func() {
			for k := w; k < chunks; k += workers {
				r0 := k * perChunk
				r1 := min(tileRows, r0+perChunk)
				n := (r1 - r0) * tilesWide
				input := tensor.FromSlice(winogradPoints*cin, n, v[:winogradPoints*cin*n])
				products := tensor.FromSlice(winogradPoints*cout, n, m[:winogradPoints*cout*n])
				winogradInputTransform(input, x, r0, r1, tilesHigh, tilesWide)
				for xi := range winogradPoints {
					tensor.GemmSerial(false, false, 1,
						c.winograd.Slice(xi*cout, (xi+1)*cout, 0, cin),
						input.Slice(xi*cin, (xi+1)*cin, 0, n),
						0, products.Slice(xi*cout, (xi+1)*cout, 0, n))
				}
				winogradOutputTransform(out, products, c.b, relu, r0, r1, tilesHigh, tilesWide)
			}
		})
	}
	wg.Wait()
	return out
}

// winogradBuffers returns the V and M buffers, each of at least n floats.
func (w *workspace) winogradBuffers(n int) (v, m []float32) {
	if cap(w.winogradV) < n {
		w.winogradV, w.winogradM = make([]float32, n), make([]float32, n)
	}
	return w.winogradV[:n], w.winogradM[:n]
}

// winogradInputTransform writes V = Bᵀ·d·B for the tile rows [r0, r1) of x into v [36·Cin, n]: row ξ·Cin + c, column
// (r − r0)·tilesWide + tx holds point ξ of channel c's tile tx in tile
// row r (image r / tilesHigh, tile row r % tilesHigh). Input outside the
// map is zero (the padding).
//
// Both passes run down whole slices (btSlices), eight columns at a time:
// Bᵀ down the six input rows of a tile row, then B across, after gathering
// each tile's six columns of Bᵀ·d into taps, one slice per column offset,
// for all the chunk's tiles at once.
func winogradInputTransform(v *tensor.Matrix, x featureMap, r0, r1, tilesHigh, tilesWide int) {
	cin := x.m.Rows
	n := (r1 - r0) * tilesWide
	padded := tilesWide*winogradTile + 2 // columns −1 … 4·tilesWide of a row of Bᵀ·d
	scratch := make([]float32, winogradInput*padded+winogradPoints*n+x.width)
	var columns [winogradInput][]float32 // Bᵀ·d of one tile row, padded: input column j at j + 1
	var inside [winogradInput][]float32  // the part of columns the input covers; the rest stays zero
	for k := range columns {
		columns[k] = scratch[k*padded : (k+1)*padded]
		inside[k] = columns[k][1 : 1+x.width]
	}
	scratch = scratch[winogradInput*padded:]
	var taps [winogradInput][winogradInput][]float32 // taps[k][j][t]: column 4·tx + j of row k of Bᵀ·d, tile t
	for k := range taps {
		for j := range taps[k] {
			taps[k][j], scratch = scratch[:n], scratch[n:]
		}
	}
	zero := scratch[:x.width]
	for ch := range cin {
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
			btSlices(&inside, &d, x.width)
			t0 := (r - r0) * tilesWide
			for k, row := range columns {
				tk := &taps[k]
				for tx := range tilesWide {
					e := row[tx*winogradTile : tx*winogradTile+winogradInput]
					tk[0][t0+tx], tk[1][t0+tx], tk[2][t0+tx] = e[0], e[1], e[2]
					tk[3][t0+tx], tk[4][t0+tx], tk[5][t0+tx] = e[3], e[4], e[5]
				}
			}
		}
		for k := range taps {
			var dst [winogradInput][]float32 // points 6·k … 6·k + 5
			for j := range dst {
				dst[j] = v.Row((k*winogradInput+j)*cin + ch)[:n]
			}
			btSlices(&dst, &taps[k], n)
		}
	}
}

// btSlices sets t[k][i] = (Bᵀ·d)[k] for the columns d[0][i] … d[5][i],
// i < n.
func btSlices(t, d *[winogradInput][]float32, n int) {
	for i := btLanes(t, d, n); i < n; i++ {
		bt(d[0][i], d[1][i], d[2][i], d[3][i], d[4][i], d[5][i],
			&t[0][i], &t[1][i], &t[2][i], &t[3][i], &t[4][i], &t[5][i])
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

// winogradOutputTransform computes Y = Aᵀ·M·A for the tile rows [r0, r1) from m [36·Cout, n] (laid out as
// winogradInputTransform's v), adds the bias, applies the ReLU when relu is
// set and writes the blocks that lie inside out. Both passes run down whole
// slices of the chunk's tiles (atSlices); only the final scatter into the
// map goes value by value.
func winogradOutputTransform(out featureMap, m *tensor.Matrix, bias []float32, relu bool, r0, r1, tilesHigh, tilesWide int) {
	cout := out.m.Rows
	n := (r1 - r0) * tilesWide
	scratch := make([]float32, winogradTile*(winogradInput+winogradTile)*n)
	var partial [winogradTile][winogradInput][]float32 // Aᵀ·M: partial[i][j][t] for tile t
	var block [winogradTile][winogradTile][]float32    // Aᵀ·M·A
	for i := range winogradTile {
		for j := range winogradInput {
			partial[i][j], scratch = scratch[:n], scratch[n:]
		}
		for j := range winogradTile {
			block[i][j], scratch = scratch[:n], scratch[n:]
		}
	}
	for o := range cout {
		for j := range winogradInput {
			var column [winogradInput][]float32 // points j, 6 + j, … 30 + j
			for k := range column {
				column[k] = m.Row((k*winogradInput+j)*cout + o)[:n]
			}
			rows := [winogradTile][]float32{partial[0][j], partial[1][j], partial[2][j], partial[3][j]}
			atSlices(&rows, &column, n)
		}
		for i := range winogradTile {
			atSlices(&block[i], &partial[i], n)
		}
		b := bias[o]
		for r := r0; r < r1; r++ {
			plane := out.plane(o, r/tilesHigh)
			top := r % tilesHigh * winogradTile
			t0 := (r - r0) * tilesWide
			for i := range min(winogradTile, out.height-top) {
				line := plane[(top+i)*out.width : (top+i+1)*out.width]
				for j := range winogradTile {
					for tx, v := range block[i][j][t0 : t0+tilesWide] {
						x := tx*winogradTile + j
						if x >= out.width {
							break
						}
						v += b
						if relu {
							v = max(v, 0)
						}
						line[x] = v
					}
				}
			}
		}
	}
}

// atSlices sets y[k][i] = (Aᵀ·m)[k] for the columns m[0][i] … m[5][i],
// i < n.
func atSlices(y *[winogradTile][]float32, m *[winogradInput][]float32, n int) {
	for i := atLanes(y, m, n); i < n; i++ {
		at(m[0][i], m[1][i], m[2][i], m[3][i], m[4][i], m[5][i], &y[0][i], &y[1][i], &y[2][i], &y[3][i])
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
