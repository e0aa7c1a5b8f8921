package baseline

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/unimos/unimos/internal/testkit"
	"github.com/unimos/unimos/tensor"
)

// gaussianClasses draws n rows of dimension d around k random unit-norm
// class means, with noise of the given scale, then normalises each row.
func gaussianClasses(r *rand.Rand, means *tensor.Matrix, n int, noise float64) (*tensor.Matrix, []int) {
	d := means.Cols
	x := tensor.New(n, d)
	labels := make([]int, n)
	for i := range n {
		labels[i] = r.IntN(means.Rows)
		row := x.Row(i)
		for j := range row {
			row[j] = means.At(labels[i], j) + float32(noise*r.NormFloat64())
		}
	}
	return normalizeRows(x), labels
}

func normalizeRows(m *tensor.Matrix) *tensor.Matrix {
	for i := range m.Rows {
		row := m.Row(i)
		var ss float32
		for _, v := range row {
			ss += v * v
		}
		for j := range row {
			row[j] /= float32(math.Sqrt(float64(ss)))
		}
	}
	return m
}

// TestProbeSeparatesClasses trains on well-separated classes and checks
// held-out accuracy against the Bayes-optimal nearest-mean classifier that
// knows the true means: a correct probe comes within a few points of it.
func TestProbeSeparatesClasses(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 8))
	means := testkit.UnitRows(5, 32, 7)
	train, trainLabels := gaussianClasses(r, means, 600, 0.25)
	test, testLabels := gaussianClasses(r, means, 400, 0.25)
	probe, err := TrainProbe(train, trainLabels, 5, DefaultProbeConfig())
	if err != nil {
		t.Fatal(err)
	}
	probeAcc := accuracy(Classes(Predict(probe.Logits(test))), testLabels)
	oracle, _ := ZeroShot(test, means) // nearest true mean
	oracleAcc := accuracy(Classes(oracle), testLabels)
	t.Logf("probe %.3f, nearest true mean %.3f", probeAcc, oracleAcc)
	if probeAcc < oracleAcc-0.05 {
		t.Errorf("probe accuracy %.3f is more than 5 points below the nearest-mean oracle %.3f", probeAcc, oracleAcc)
	}
}

func TestProbeRejectsBadLabels(t *testing.T) {
	if _, err := TrainProbe(tensor.New(3, 2), []int{0, 1, 5}, 2, DefaultProbeConfig()); err == nil {
		t.Error("label 5 of 2 classes accepted")
	}
}

func accuracy(pred, labels []int) float64 {
	c := 0
	for i := range pred {
		if pred[i] == labels[i] {
			c++
		}
	}
	return float64(c) / float64(len(pred))
}
