package tensor

import (
	"fmt"
	"math"
	"math/rand/v2"
	"strings"
	"testing"
)

// bf16Value is the float32 that bf16 bits stand for.
func bf16Value(h uint16) float32 { return math.Float32frombits(uint32(h) << 16) }

func TestBF16RoundKnownBits(t *testing.T) {
	cases := []struct {
		name string
		in   uint32 // float32 bits
		want uint16
	}{
		{"one", 0x3f800000, 0x3f80},
		{"just below half an ulp rounds down", 0x3f807fff, 0x3f80},
		{"just above half an ulp rounds up", 0x3f808001, 0x3f81},
		{"tie to even, down", 0x3f808000, 0x3f80},
		{"tie to even, up", 0x3f818000, 0x3f82},
		{"negative tie to even", 0xbf818000, 0xbf82},
		{"carry into the exponent", 0x3fffc000, 0x4000},
		{"largest float32 overflows to +Inf", 0x7f7fffff, 0x7f80},
		{"largest bf16 stays", 0x7f7f7fff, 0x7f7f},
		{"+Inf", 0x7f800000, 0x7f80},
		{"-Inf", 0xff800000, 0xff80},
		{"quiet NaN", 0x7fc00000, 0x7fc0},
		{"signalling NaN whose payload is all below bf16 stays NaN", 0x7f800001, 0x7fc0},
		{"negative NaN", 0xffc00001, 0x7fc0},
		{"+0", 0x00000000, 0x0000},
		{"-0", 0x80000000, 0x8000},
		{"smallest subnormal rounds to 0", 0x00000001, 0x0000},
		{"subnormal tie to even, down", 0x00008000, 0x0000},
		{"subnormal tie to even, up", 0x00018000, 0x0002},
		{"largest subnormal rounds to the smallest normal", 0x007fffff, 0x0080},
	}
	for _, tc := range cases {
		if got := BF16Round(math.Float32frombits(tc.in)); got != tc.want {
			t.Errorf("%s: BF16Round(%#08x) = %#04x, want %#04x", tc.name, tc.in, got, tc.want)
		}
	}
}

// TestBF16RoundNearest checks random finite floats against a rounding done
// in float64: the nearer of the two bf16 neighbours, the even one on a tie.
func TestBF16RoundNearest(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	for range 200000 {
		bits := rng.Uint32()
		f := math.Float32frombits(bits)
		if math.IsNaN(float64(f)) || math.IsInf(float64(f), 0) {
			continue
		}
		down := uint16(bits >> 16) // truncation: the neighbour towards zero
		up := down + 1             // the one away from zero (may be Inf)
		dDown := math.Abs(float64(f) - float64(bf16Value(down)))
		upValue := float64(bf16Value(up))
		if math.IsInf(upValue, 0) {
			upValue = math.Copysign(0x1p128, upValue) // IEEE rounding: the unbounded exponent's next value, then overflow
		}
		dUp := math.Abs(upValue - float64(f))
		want := down
		if dUp < dDown || (dUp == dDown && down%2 == 1) {
			want = up
		}
		if got := BF16Round(f); got != want {
			t.Fatalf("BF16Round(%g = %#08x) = %#04x, want %#04x", f, bits, got, want)
		}
	}
}

// roundedBF16 returns a compact copy of m with every element rounded to
// bf16: the operand a bf16 product really multiplies.
func roundedBF16(m *Matrix) *Matrix {
	r := New(m.Rows, m.Cols)
	for i := range m.Rows {
		for j := range m.Cols {
			r.Set(i, j, bf16Value(BF16Round(m.At(i, j))))
		}
	}
	return r
}

func skipWithoutBF16(t testing.TB) {
	if kernelBF16 == nil {
		t.Skip("this CPU lacks AVX512_BF16 (or is not amd64): no bf16 kernel to test")
	}
}

// TestGemmBF16AgainstNaive checks the bf16 kernel against the float64 oracle
// computed from the bf16-rounded operands, so the only error left is the
// float32 accumulation: the f32 kernels' tolerance applies. It covers every
// transpose combination, alpha and beta, strided views, tiles cut by every
// edge, odd k (a step paired with zero), k = 1, and k over two kc blocks.
func TestGemmBF16AgainstNaive(t *testing.T) {
	skipWithoutBF16(t)
	shapes := [][3]int{ // m, k, n
		{1, 1, 1}, {3, 1, 40}, {1, 2, 1}, {7, 3, 5}, {12, 4, 32}, {13, 9, 33},
		{25, 65, 70},   // whole and cut 12×32 tiles, k odd
		{5, 7, 3100},   // more columns than one nc block
		{13, 1539, 35}, // two whole kc blocks (768 steps each) and an odd rest of 3
		{300, 6, 3},    // more rows than one mc block
	}
	problems := gemmProblems(shapes)
	for _, threads := range []int{1, 2, 3} {
		t.Run(fmt.Sprintf("%dthreads", threads), func(t *testing.T) {
			for _, pr := range problems {
				want, mag := gemmNaive(pr.transA, pr.transB, pr.alpha, roundedBF16(pr.a), roundedBF16(pr.b), pr.beta, pr.c.view)
				c := padded{parent: pr.c.parent.Clone(), r0: pr.c.r0, c0: pr.c.c0}
				c.view = c.parent.Slice(c.r0, c.r0+pr.c.view.Rows, c.c0, c.c0+pr.c.view.Cols)
				gemmWith(goBackend{kernelBF16}, threads, pr.transA, pr.transB, pr.alpha, pr.a, pr.b, pr.beta, c.view)
				checkGemm(t, pr.where, kOf(pr.a, pr.transA), c.view, want, mag)
				checkOutsideUntouched(t, pr.where, c, pr.c.parent)
			}
		})
	}
}

// TestSetPrecision checks that Gemm follows SetPrecision (the bf16 kernel's
// result exactly, then the f32 backend's again once restored) while
// GemmSerial stays f32, and what ChoosePrecision answers.
func TestSetPrecision(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 8))
	a, b := randomCompact(rng, 37, 300), randomCompact(rng, 45, 300)
	product := func(gemm func(bool, bool, float32, *Matrix, *Matrix, float32, *Matrix)) *Matrix {
		c := New(37, 45)
		gemm(false, true, 1, a, b, 0, c)
		return c
	}
	same := func(x, y *Matrix) bool {
		for i := range x.Data {
			if math.Float32bits(x.Data[i]) != math.Float32bits(y.Data[i]) {
				return false
			}
		}
		return true
	}
	f32 := product(func(ta, tb bool, al float32, a, b *Matrix, be float32, c *Matrix) {
		gemmWith(*currentBackend(), 1, ta, tb, al, a, b, be, c)
	})
	if CurrentPrecision() != PrecisionF32 {
		t.Fatalf("CurrentPrecision() = %s before any SetPrecision, want f32", CurrentPrecision())
	}
	if !same(product(GemmSerial), f32) {
		t.Fatal("GemmSerial at f32 differs from the backend's product")
	}

	for _, tc := range []struct {
		ask     Precision
		want    []Precision // acceptable answers
		wantErr bool
	}{
		{PrecisionF32, []Precision{PrecisionF32}, false},
		{PrecisionBF16, []Precision{map[bool]Precision{true: PrecisionBF16, false: PrecisionF32}[kernelBF16 != nil]}, false},
		{PrecisionAuto, []Precision{PrecisionF32, PrecisionBF16}, false},
		{"fp16", nil, true},
	} {
		got, why, err := ChoosePrecision(tc.ask)
		if (err != nil) != tc.wantErr {
			t.Errorf("ChoosePrecision(%q): error %v, want error %v", tc.ask, err, tc.wantErr)
			continue
		}
		if err == nil && (got != tc.want[0] && (len(tc.want) < 2 || got != tc.want[1]) || why == "") {
			t.Errorf("ChoosePrecision(%q) = %q, %q; want one of %q and a reason", tc.ask, got, why, tc.want)
		}
		t.Logf("ChoosePrecision(%s) = %s (%s)", tc.ask, got, why)
	}

	if got := BackendFor(PrecisionF32); got != Backend() {
		t.Errorf("BackendFor(f32) = %q, want Backend() = %q", got, Backend())
	}
	skipWithoutBF16(t)
	if got := BackendFor(PrecisionBF16); !strings.Contains(got, "avx512-bf16 12x32 kernel") {
		t.Errorf("BackendFor(bf16) = %q, want the bf16 kernel named", got)
	}
	restore := SetPrecision(PrecisionBF16)
	want := product(func(ta, tb bool, al float32, a, b *Matrix, be float32, c *Matrix) {
		gemmWith(goBackend{kernelBF16}, 1, ta, tb, al, a, b, be, c)
	})
	gotGemm, gotSerial := product(Gemm), product(GemmSerial)
	if CurrentPrecision() != PrecisionBF16 || !same(gotGemm, want) || !same(gotSerial, f32) {
		t.Errorf("after SetPrecision(bf16): CurrentPrecision %s; Gemm matches the bf16 kernel: %v; GemmSerial the f32 backend: %v",
			CurrentPrecision(), same(gotGemm, want), same(gotSerial, f32))
	}
	if same(want, f32) {
		t.Error("the bf16 product equals the f32 one bit for bit: the operands were not rounded")
	}
	restore()
	if CurrentPrecision() != PrecisionF32 || !same(product(Gemm), f32) {
		t.Error("restoring did not bring back the f32 products")
	}
}
