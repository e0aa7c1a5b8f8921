package unimos

import (
	"math"
	"math/rand/v2"
	"slices"

	"github.com/unimos/unimos/tensor"
)

// ClassAMI settings: the rows clustered (drawn with the run's seed, the
// same at every epoch) and the cap on Lloyd iterations. k-means costs
// rows·K·b per iteration, so the sample keeps it a small part of a test.
const (
	ClassAMISampleSize = 2048
	classAMIIterations = 20
)

// classAMIStream separates ClassAMI's generator from the others.
const classAMIStream = 0x414d49 // "AMI"

// ClassAMI is the validator of Musgrave et al. ("Benchmarking Validation
// Methods for Unsupervised Domain Adaptation", 2022): the adjusted mutual
// information between the model's predictions and a k-means clustering
// (K clusters) of its target features, high when the predicted classes
// are the features' clusters. Here the features are the bottleneck's
// [N, b], each row scaled to unit norm (their scale differs between
// epochs, and k-means compares distances), and at most ClassAMISampleSize
// rows drawn with seed take part.
func ClassAMI(features *tensor.Matrix, pred []int, k int, seed uint64) float64 {
	idx := sampleIndex(features.Rows, ClassAMISampleSize, seed, classAMIStream)
	x := gatherRows(rowSet{features, idx})
	for i := range x.Rows {
		tensor.NormalizeRow(x.Row(i), 1e-12)
	}
	clusters := kMeans(x, k, rand.New(rand.NewPCG(seed, classAMIStream+1)))
	return AdjustedMutualInformation(clusters, pick(pred, idx))
}

// sampleIndex returns min(n, limit) row indices in ascending order, drawn
// without replacement from stream stream of seed (every row when n <= limit).
func sampleIndex(n, limit int, seed, stream uint64) []int {
	if n <= limit {
		idx := make([]int, n)
		for i := range idx {
			idx[i] = i
		}
		return idx
	}
	idx := rand.New(rand.NewPCG(seed, stream)).Perm(n)[:limit]
	slices.Sort(idx)
	return idx
}

// kMeans clusters the rows of x into k clusters (k-means++ seeding, then
// Lloyd iterations until no row moves, at most classAMIIterations) and
// returns each row's cluster.
func kMeans(x *tensor.Matrix, k int, rng *rand.Rand) []int {
	n := x.Rows
	k = min(k, n)
	centers := tensor.New(k, x.Cols)
	// k-means++: each next center is a row drawn with probability
	// proportional to its squared distance to the nearest center so far.
	nearest := make([]float64, n)
	for i := range nearest {
		nearest[i] = math.Inf(1)
	}
	copy(centers.Row(0), x.Row(rng.IntN(n)))
	for c := 1; c < k; c++ {
		// The distances to the newest center, the bulk of the seeding's
		// work, are independent per row: spread them over the cores.
		tensor.ParallelRanges(n, 4*x.Cols, func(lo, hi int) {
			for i := lo; i < hi; i++ {
				nearest[i] = min(nearest[i], squaredDistance(x.Row(i), centers.Row(c-1)))
			}
		})
		var total float64
		for _, d := range nearest {
			total += d
		}
		r, chosen := rng.Float64()*total, n-1
		for i, d := range nearest {
			if r -= d; r < 0 {
				chosen = i
				break
			}
		}
		copy(centers.Row(c), x.Row(chosen))
	}
	assign := make([]int, n)
	dots := tensor.New(n, k)
	for iter := 0; iter < classAMIIterations; iter++ {
		// argmin_c ‖x − c‖² = argmax_c (x·c − ‖c‖²/2): one GEMM per iteration.
		tensor.Gemm(false, true, 1, x, centers, 0, dots)
		half := make([]float32, k)
		for c := range k {
			for _, v := range centers.Row(c) {
				half[c] += v * v / 2
			}
		}
		moved := false
		for i := range n {
			row, best := dots.Row(i), 0
			for c := range k {
				if row[c]-half[c] > row[best]-half[best] {
					best = c
				}
			}
			if best != assign[i] {
				assign[i], moved = best, true
			}
		}
		if !moved && iter > 0 {
			break
		}
		counts := make([]int, k)
		sums := tensor.New(k, x.Cols)
		for i, c := range assign {
			counts[c]++
			for j, v := range x.Row(i) {
				sums.Row(c)[j] += v
			}
		}
		for c := range k {
			if counts[c] == 0 {
				continue // an empty cluster keeps its center
			}
			for j, v := range sums.Row(c) {
				centers.Row(c)[j] = v / float32(counts[c])
			}
		}
	}
	return assign
}

func squaredDistance(a, b []float32) float64 {
	var s float64
	for i := range a {
		d := float64(a[i]) - float64(b[i])
		s += d * d
	}
	return s
}

// AdjustedMutualInformation returns AMI(u, v) of two labellings of the
// same items (Vinh, Epps and Bailey, "Information Theoretic Measures for
// Clusterings Comparison", JMLR 2010), with the arithmetic mean of the
// entropies as normaliser (scikit-learn's default): (MI − E[MI]) /
// (mean(H(u), H(v)) − E[MI]), 1 for identical partitions, about 0 for
// independent ones. Two partitions into one cluster each give 1.
func AdjustedMutualInformation(u, v []int) float64 {
	n := len(u)
	ui, vi := relabel(u), relabel(v)
	ku, kv := slices.Max(ui)+1, slices.Max(vi)+1
	if ku == 1 && kv == 1 {
		return 1
	}
	table := make([]int, ku*kv)
	a, b := make([]int, ku), make([]int, kv)
	for i := range n {
		table[ui[i]*kv+vi[i]]++
		a[ui[i]]++
		b[vi[i]]++
	}
	N := float64(n)
	var mi float64
	for i := range ku {
		for j := range kv {
			if nij := float64(table[i*kv+j]); nij > 0 {
				mi += nij / N * math.Log(N*nij/(float64(a[i])*float64(b[j])))
			}
		}
	}
	entropy := func(counts []int) float64 {
		var h float64
		for _, c := range counts {
			p := float64(c) / N
			h -= p * math.Log(p)
		}
		return h
	}
	emi := expectedMutualInformation(a, b, n)
	denominator := (entropy(a)+entropy(b))/2 - emi
	if denominator == 0 {
		return 0
	}
	return (mi - emi) / denominator
}

// expectedMutualInformation is E[MI] of two partitions with cluster sizes
// a and b of n items under the hypergeometric model of random labellings
// (Vinh et al. 2010, equation 24a), summed in log space with lgamma.
func expectedMutualInformation(a, b []int, n int) float64 {
	lf := func(x int) float64 { v, _ := math.Lgamma(float64(x + 1)); return v }
	N := float64(n)
	var emi float64
	for _, ai := range a {
		for _, bj := range b {
			common := lf(ai) + lf(bj) + lf(n-ai) + lf(n-bj) - lf(n)
			for nij := max(1, ai+bj-n); nij <= min(ai, bj); nij++ {
				x := float64(nij)
				logP := common - lf(nij) - lf(ai-nij) - lf(bj-nij) - lf(n-ai-bj+nij)
				emi += x / N * math.Log(N*x/(float64(ai)*float64(bj))) * math.Exp(logP)
			}
		}
	}
	return emi
}

// relabel maps the labels of l onto 0, 1, ... in order of first appearance.
func relabel(l []int) []int {
	ids := map[int]int{}
	out := make([]int, len(l))
	for i, v := range l {
		id, ok := ids[v]
		if !ok {
			id = len(ids)
			ids[v] = id
		}
		out[i] = id
	}
	return out
}
