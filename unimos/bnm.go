package unimos

import (
	"math"

	"github.com/unimos/unimos/tensor"
)

// BatchNuclearNorm is the BNM validator (the batch nuclear-norm of Cui et
// al., "Towards Discriminability and Diversity: Batch Nuclear-norm
// Maximization under Label Insufficient Situations", CVPR 2020, used as a
// validator by Musgrave et al., "Benchmarking Validation Methods for
// Unsupervised Domain Adaptation", 2022): the nuclear norm of the
// prediction matrix p [N, K] over √N, high when predictions are both
// confident and spread over many classes. Dividing by √N rather than N
// makes it independent of N: the singular values of p are the square roots
// of the eigenvalues of pᵀp, which grows as N.
func BatchNuclearNorm(p *tensor.Matrix) float64 {
	k := p.Cols
	gram := tensor.New(k, k)
	tensor.Gemm(true, false, 1, p, p, 0, gram) // pᵀp [K, K], symmetric positive semi-definite
	a := make([]float64, k*k)
	for i := range a {
		a[i] = float64(gram.Data[i/k*gram.Stride+i%k])
	}
	var norm float64
	for _, ev := range symmetricEigenvalues(a, k) {
		norm += math.Sqrt(max(ev, 0)) // rounding can leave a zero eigenvalue slightly negative
	}
	return norm / math.Sqrt(float64(p.Rows))
}

// symmetricEigenvalues returns the eigenvalues of the symmetric matrix a
// [k, k] (row-major, overwritten) by cyclic Jacobi rotations, which
// converge for every symmetric matrix; k is at most a few hundred classes.
func symmetricEigenvalues(a []float64, k int) []float64 {
	at := func(i, j int) *float64 { return &a[i*k+j] }
	for sweep := 0; sweep < 100; sweep++ {
		var off, diag float64
		for i := range k {
			diag += *at(i, i) * *at(i, i)
			for j := i + 1; j < k; j++ {
				off += *at(i, j) * *at(i, j)
			}
		}
		if off <= 1e-30*diag || off == 0 {
			break
		}
		for p := 0; p < k; p++ {
			for q := p + 1; q < k; q++ {
				apq := *at(p, q)
				if apq == 0 {
					continue
				}
				// The rotation that zeroes a[p][q] (Golub & Van Loan, Algorithm 8.5.1).
				theta := (*at(q, q) - *at(p, p)) / (2 * apq)
				t := math.Copysign(1, theta) / (math.Abs(theta) + math.Sqrt(theta*theta+1))
				c := 1 / math.Sqrt(t*t+1)
				s := t * c
				for r := range k { // columns p and q
					arp, arq := *at(r, p), *at(r, q)
					*at(r, p), *at(r, q) = c*arp-s*arq, s*arp+c*arq
				}
				for r := range k { // rows p and q
					apr, aqr := *at(p, r), *at(q, r)
					*at(p, r), *at(q, r) = c*apr-s*aqr, s*apr+c*aqr
				}
			}
		}
	}
	out := make([]float64, k)
	for i := range k {
		out[i] = *at(i, i)
	}
	return out
}
