//go:build amd64

package clip

import "golang.org/x/sys/cpu"

var hasAVX2FMA = cpu.X86.HasAVX2 && cpu.X86.HasFMA

// winogradConsts holds the transforms' multipliers for the assembly.
var winogradConsts = [4]float32{2, 4, 5, 8}

// btLanes is btSlices for the leading multiple of 8 elements, with AVX2;
// it returns how many it did (0 on CPUs without AVX2 and FMA).
func btLanes(t, d *[winogradInput][]float32, n int) int {
	if !hasAVX2FMA || n < 8 {
		return 0
	}
	var tp, dp [winogradInput]*float32
	for k := range winogradInput {
		_, _ = t[k][n-1], d[k][n-1]
		tp[k], dp[k] = &t[k][0], &d[k][0]
	}
	return btAVX2(&tp, &dp, n)
}

// atLanes is atSlices for the leading multiple of 8 elements, with AVX2;
// it returns how many it did (0 on CPUs without AVX2 and FMA).
func atLanes(y *[winogradTile][]float32, m *[winogradInput][]float32, n int) int {
	if !hasAVX2FMA || n < 8 {
		return 0
	}
	var yp [winogradTile]*float32
	var mp [winogradInput]*float32
	for k := range winogradInput {
		_ = m[k][n-1]
		mp[k] = &m[k][0]
	}
	for k := range winogradTile {
		_ = y[k][n-1]
		yp[k] = &y[k][0]
	}
	return atAVX2(&yp, &mp, n)
}

// btAVX2 and atAVX2 apply bt and at to eight columns at a time; see
// winograd_amd64.s.
//
//go:noescape
func btAVX2(t, d *[winogradInput]*float32, n int) int

//go:noescape
func atAVX2(y *[winogradTile]*float32, m *[winogradInput]*float32, n int) int
