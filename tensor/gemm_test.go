package tensor

import (
	"fmt"
	"math"
	"math/rand/v2"
	"strings"
	"sync"
	"testing"
)

// gemmNaive is the test oracle: a plain triple loop accumulating in float64.
// Besides C it returns, per element, the magnitude |alpha|·Σ|a·b| + |beta·c|
// that bounds the rounding error of any float32 summation order.
func gemmNaive(transA, transB bool, alpha float32, a, b *Matrix, beta float32, c *Matrix) (want, magnitude [][]float64) {
	k := kOf(a, transA)
	// rowsA[i] is row i of op(A); colsB[j] is column j of op(B).
	rowsA, colsB := make([][]float64, c.Rows), make([][]float64, c.Cols)
	for i := range rowsA {
		rowsA[i] = make([]float64, k)
		for p := range k {
			if transA {
				rowsA[i][p] = float64(a.At(p, i))
			} else {
				rowsA[i][p] = float64(a.At(i, p))
			}
		}
	}
	for j := range colsB {
		colsB[j] = make([]float64, k)
		for p := range k {
			if transB {
				colsB[j][p] = float64(b.At(j, p))
			} else {
				colsB[j][p] = float64(b.At(p, j))
			}
		}
	}
	want, magnitude = make([][]float64, c.Rows), make([][]float64, c.Rows)
	for i := range c.Rows {
		want[i], magnitude[i] = make([]float64, c.Cols), make([]float64, c.Cols)
		for j := range c.Cols {
			var sum, abs float64
			for p, x := range rowsA[i] {
				sum += x * colsB[j][p]
				abs += math.Abs(x * colsB[j][p])
			}
			want[i][j] = float64(alpha) * sum
			magnitude[i][j] = math.Abs(float64(alpha)) * abs
			if beta != 0 {
				want[i][j] += float64(beta) * float64(c.At(i, j))
				magnitude[i][j] += math.Abs(float64(beta) * float64(c.At(i, j)))
			}
		}
	}
	return want, magnitude
}

// gemmCase is one backend configuration under test.
type gemmCase struct {
	name    string
	be      gemmBackend
	threads int
}

// forEachBackend runs test on every Go micro-kernel this CPU supports and on
// OpenBLAS, each on one and on several threads. The OpenBLAS half is
// skipped, saying why, where the library cannot be loaded.
func forEachBackend(t *testing.T, test func(t *testing.T, gc gemmCase)) {
	var cases []gemmCase
	for _, mk := range kernels {
		for _, threads := range []int{1, 2, 3} {
			cases = append(cases, gemmCase{fmt.Sprintf("go-%s-%dthreads", strings.ReplaceAll(mk.name, " ", "-"), threads), goBackend{mk}, threads})
		}
	}
	ob, obErr := loadOpenBLAS()
	for _, threads := range []int{1, 2} {
		cases = append(cases, gemmCase{fmt.Sprintf("openblas-%dthreads", threads), ob, threads})
	}
	for _, gc := range cases {
		t.Run(gc.name, func(t *testing.T) {
			if gc.be == nil {
				t.Skipf("OpenBLAS half skipped: %v", obErr)
			}
			test(t, gc)
		})
	}
}

// padded is a view inside a larger parent matrix.
type padded struct {
	view, parent *Matrix
	r0, c0       int // the view's first row and column in parent
}

// randomMatrix returns an r×c view with random values in [-1, 1), one row
// above and below it and pad extra columns, inside a parent whose other
// elements are NaN, so that a kernel reading or writing outside the view
// shows up.
func randomMatrix(rng *rand.Rand, r, c, pad int) padded {
	p := padded{parent: New(r+2, c+pad), r0: 1, c0: min(1, pad)}
	for i := range p.parent.Data {
		p.parent.Data[i] = float32(math.NaN())
	}
	p.view = p.parent.Slice(p.r0, p.r0+r, p.c0, p.c0+c)
	for i := range r {
		for j := range c {
			p.view.Set(i, j, float32(rng.Float64()*2-1))
		}
	}
	return p
}

// gemmProblem is one product with its oracle result.
type gemmProblem struct {
	where          string
	transA, transB bool
	alpha, beta    float32
	a, b           *Matrix
	c              padded
	want, mag      [][]float64
}

// gemmProblems builds products on every transpose combination, several
// alpha/beta pairs (beta 0 on a NaN-filled C) and strided as well as compact
// views, for each shape (m, k, n).
func gemmProblems(shapes [][3]int) []gemmProblem {
	scalars := [][2]float32{{1, 0}, {-1.5, 0.25}, {0.5, 1}, {0, 0.5}, {0, 0}}
	rng := rand.New(rand.NewPCG(1, 2))
	var problems []gemmProblem
	for _, s := range shapes {
		m, k, n := s[0], s[1], s[2]
		for _, trans := range [][2]bool{{false, false}, {false, true}, {true, false}, {true, true}} {
			for si, sc := range scalars {
				pr := gemmProblem{transA: trans[0], transB: trans[1], alpha: sc[0], beta: sc[1]}
				pad := si % 3 // strided views for most, compact ones too
				ar, ac := m, k
				if pr.transA {
					ar, ac = k, m
				}
				br, bc := k, n
				if pr.transB {
					br, bc = n, k
				}
				pr.a = randomMatrix(rng, ar, ac, pad).view
				pr.b = randomMatrix(rng, br, bc, pad).view
				pr.c = randomMatrix(rng, m, n, pad)
				if pr.beta == 0 {
					for i := range m {
						for j := range n {
							pr.c.view.Set(i, j, float32(math.NaN())) // beta 0 must ignore it
						}
					}
				}
				pr.want, pr.mag = gemmNaive(pr.transA, pr.transB, pr.alpha, pr.a, pr.b, pr.beta, pr.c.view)
				pr.where = fmt.Sprintf("m=%d k=%d n=%d trans=%v alpha=%g beta=%g pad=%d", m, k, n, trans, pr.alpha, pr.beta, pad)
				problems = append(problems, pr)
			}
		}
	}
	return problems
}

func TestGemmAgainstNaive(t *testing.T) {
	shapes := [][3]int{ // m, k, n
		{0, 0, 0}, {0, 3, 4}, {3, 0, 4}, {3, 4, 0},
		{1, 1, 1}, {1, 9, 1}, {1, 7, 9}, {9, 7, 1}, {7, 13, 5}, {33, 65, 17},
		{40, 70, 70},  // whole and cut register tiles of every kernel
		{5, 3, 3100},  // more columns than one nc block of either kernel
		{3, 600, 5},   // more steps than one kc block
		{64, 33, 300}, // a training batch's A·Bᵀ: OpenBLAS computes it as (B·Aᵀ)ᵀ
		{300, 4, 3},   // more rows than one mc block
	}
	if !testing.Short() {
		shapes = append(shapes, [3]int{256, 300, 200}) // several mc and kc blocks
	}
	problems := gemmProblems(shapes)
	forEachBackend(t, func(t *testing.T, gc gemmCase) {
		for _, pr := range problems {
			c := padded{parent: pr.c.parent.Clone(), r0: pr.c.r0, c0: pr.c.c0}
			c.view = c.parent.Slice(c.r0, c.r0+pr.c.view.Rows, c.c0, c.c0+pr.c.view.Cols)
			gemmWith(gc.be, gc.threads, pr.transA, pr.transB, pr.alpha, pr.a, pr.b, pr.beta, c.view)
			checkGemm(t, pr.where, kOf(pr.a, pr.transA), c.view, pr.want, pr.mag)
			checkOutsideUntouched(t, pr.where, c, pr.c.parent)
		}
	})
}

// checkGemm compares c with the oracle within the worst-case float32
// summation error, (k+2)·eps·magnitude, plus one subnormal step for exact
// zeros.
func checkGemm(t *testing.T, where string, k int, c *Matrix, want, mag [][]float64) {
	t.Helper()
	const eps = 1.0 / (1 << 23)
	for i := range c.Rows {
		for j := range c.Cols {
			got := float64(c.At(i, j))
			tol := float64(k+2)*eps*mag[i][j] + 1e-30
			if !(math.Abs(got-want[i][j]) <= tol) {
				t.Fatalf("%s: C[%d,%d] = %g, want %g (tolerance %g)", where, i, j, got, want[i][j], tol)
			}
		}
	}
}

// checkOutsideUntouched fails if anything outside p's view differs from
// before, a copy of p.parent.
func checkOutsideUntouched(t *testing.T, where string, p padded, before *Matrix) {
	t.Helper()
	for i := range p.parent.Rows {
		for j := range p.parent.Cols {
			if i >= p.r0 && i < p.r0+p.view.Rows && j >= p.c0 && j < p.c0+p.view.Cols {
				continue
			}
			g, w := p.parent.At(i, j), before.At(i, j)
			if math.Float32bits(g) != math.Float32bits(w) {
				t.Fatalf("%s: element (%d, %d) outside C changed from %g to %g", where, i, j, w, g)
			}
		}
	}
}

func TestOverlaps(t *testing.T) {
	parent := New(6, 10)
	other := New(6, 10)
	cases := []struct {
		name string
		x, y *Matrix
		want bool
	}{
		{"same matrix", parent, parent, true},
		{"separate matrices", parent, other, false},
		{"disjoint column blocks", parent.Slice(0, 6, 0, 5), parent.Slice(0, 6, 5, 10), false},
		{"overlapping column blocks", parent.Slice(0, 6, 0, 5), parent.Slice(2, 3, 4, 6), true},
		{"disjoint row blocks", parent.Slice(0, 3, 0, 10), parent.Slice(3, 6, 0, 10), false},
		{"block inside", parent, parent.Slice(2, 4, 3, 7), true},
		{"right block ends above left block", parent.Slice(1, 3, 0, 4), parent.Slice(0, 2, 6, 10), false},
		{"different strides, shared storage", parent, FromSlice(3, 20, parent.Data), true},
		{"empty view", parent, parent.Slice(2, 2, 0, 10), false},
	}
	for _, tc := range cases {
		if got := overlaps(tc.x, tc.y); got != tc.want {
			t.Errorf("%s: overlaps = %v, want %v", tc.name, got, tc.want)
		}
		if got := overlaps(tc.y, tc.x); got != tc.want {
			t.Errorf("%s (swapped): overlaps = %v, want %v", tc.name, got, tc.want)
		}
	}
	// Brute force over every pair of views with stride 4 into one buffer,
	// at any offset, so that a view's rows may also straddle another's.
	const stride, size = 4, 16
	buf := make([]float32, size)
	type view struct {
		m   *Matrix
		off int
	}
	var views []view
	for off := range size {
		for r := 1; r <= 3; r++ {
			for c := 1; c <= stride; c++ {
				if end := off + (r-1)*stride + c; end <= size {
					views = append(views, view{&Matrix{Rows: r, Cols: c, Stride: stride, Data: buf[off:end]}, off})
				}
			}
		}
	}
	covered := func(v view) map[int]bool {
		set := make(map[int]bool)
		for i := range v.m.Rows {
			for j := range v.m.Cols {
				set[v.off+i*stride+j] = true
			}
		}
		return set
	}
	for _, x := range views {
		for _, y := range views {
			want := false
			for e := range covered(y) {
				want = want || covered(x)[e]
			}
			if got := overlaps(x.m, y.m); got != want {
				t.Fatalf("%dx%d at %d and %dx%d at %d: overlaps = %v, want %v",
					x.m.Rows, x.m.Cols, x.off, y.m.Rows, y.m.Cols, y.off, got, want)
			}
		}
	}
}

func TestGemmPanics(t *testing.T) {
	a := New(4, 4)
	for name, f := range map[string]func(){
		"shape mismatch": func() { Gemm(false, false, 1, New(2, 3), New(4, 2), 0, New(2, 2)) },
		"C is A":         func() { Gemm(false, false, 1, a, New(4, 4), 0, a) },
		"C inside B":     func() { Gemm(false, false, 1, New(2, 4), a, 0, a.Slice(0, 2, 0, 4)) },
		"short Data": func() {
			Gemm(false, false, 1, &Matrix{Rows: 2, Cols: 2, Stride: 2, Data: make([]float32, 3)}, New(2, 2), 0, New(2, 2))
		},
		"stride < cols": func() {
			Gemm(false, false, 1, &Matrix{Rows: 2, Cols: 2, Stride: 1, Data: make([]float32, 4)}, New(2, 2), 0, New(2, 2))
		},
	} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("%s: Gemm did not panic", name)
				}
			}()
			f()
		}()
	}
	// Disjoint views of one matrix are fine: C = left·right into a third block.
	parent := New(4, 12)
	for i := range parent.Data {
		parent.Data[i] = float32(i % 7)
	}
	left, right, out := parent.Slice(0, 4, 0, 4), parent.Slice(0, 4, 4, 8), parent.Slice(0, 4, 8, 12)
	want, _ := gemmNaive(false, false, 1, left, right, 0, out)
	Gemm(false, false, 1, left, right, 0, out)
	for i := range 4 {
		for j := range 4 {
			if float64(out.At(i, j)) != want[i][j] {
				t.Fatalf("C[%d,%d] = %g, want %g", i, j, out.At(i, j), want[i][j])
			}
		}
	}
}

// TestGemmSerialConcurrent runs GemmSerial from several goroutines at once,
// next to a threaded Gemm, on each backend, and checks every product
// against the oracle: concurrent calls must not disturb each other.
func TestGemmSerialConcurrent(t *testing.T) {
	defer UseBackend(envBackendName())
	problems := gemmProblems([][3]int{{33, 65, 17}, {64, 33, 300}, {40, 70, 70}, {128, 200, 160}})
	for _, name := range []string{BackendGo, BackendOpenBLAS} {
		t.Run(name, func(t *testing.T) {
			if err := UseBackend(name); err != nil {
				t.Skipf("%s skipped: %v", name, err)
			}
			results := make([]*Matrix, len(problems))
			var wg sync.WaitGroup
			for w := range 4 {
				wg.Go(func() {
					for i := w; i < len(problems); i += 4 {
						pr := problems[i]
						c := pr.c.parent.Clone().Slice(pr.c.r0, pr.c.r0+pr.c.view.Rows, pr.c.c0, pr.c.c0+pr.c.view.Cols)
						if w == 0 {
							Gemm(pr.transA, pr.transB, pr.alpha, pr.a, pr.b, pr.beta, c)
						} else {
							GemmSerial(pr.transA, pr.transB, pr.alpha, pr.a, pr.b, pr.beta, c)
						}
						results[i] = c
					}
				})
			}
			wg.Wait()
			for i, pr := range problems {
				checkGemm(t, pr.where, kOf(pr.a, pr.transA), results[i], pr.want, pr.mag)
			}
		})
	}
}
