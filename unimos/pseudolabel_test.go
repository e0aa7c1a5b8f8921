package unimos

import (
	"math"
	"slices"
	"testing"

	"github.com/unimos/unimos/tensor"
)

func TestTeacherLogitsAreCentred(t *testing.T) {
	// x = e1, text rows e1, e2, (e1+e2)/√2: cosines 1, 0, 1/√2; mean (1+1/√2)/3.
	x := tensor.FromSlice(1, 2, []float32{1, 0})
	s := float32(1 / math.Sqrt2)
	text := tensor.FromSlice(3, 2, []float32{1, 0, 0, 1, s, s})
	got := teacherLogits(x, text, 100).Row(0)
	mean := 100 * (1 + 1/math.Sqrt2) / 3
	want := []float64{100 - mean, -mean, 100/math.Sqrt2 - mean}
	for k := range want {
		if math.Abs(float64(got[k])-want[k]) > 1e-4 {
			t.Errorf("logit %d = %v, want %v", k, got[k], want[k])
		}
	}
}

func TestClassPriorUpdateAndDebias(t *testing.T) {
	p := newClassPrior(2)
	// Two rows whose softmax is (e/(1+e), 1/(1+e)) and (1/2, 1/2).
	logits := tensor.FromSlice(2, 2, []float32{1, 0, 3, 3})
	p.update(logits, 0.9)
	e := math.E
	meanFirst := (e/(1+e) + 0.5) / 2
	want := []float64{0.9*0.5 + 0.1*meanFirst, 0.9*0.5 + 0.1*(1-meanFirst)}
	for k := range want {
		if math.Abs(float64(p[k])-want[k]) > 1e-6 {
			t.Fatalf("prior[%d] = %v, want %v", k, p[k], want[k])
		}
	}
	dst := tensor.New(2, 2)
	p.debias(dst, logits, 0.5)
	for i := range 2 {
		for k := range 2 {
			w := float64(logits.At(i, k)) - 0.5*math.Log(want[k])
			if math.Abs(float64(dst.At(i, k))-w) > 1e-5 {
				t.Errorf("debiased[%d][%d] = %v, want %v", i, k, dst.At(i, k), w)
			}
		}
	}
}

// TestCentroidLabels works a two-class example by hand. Rows 0-1 lie near
// the x axis and rows 2-3 near the y axis, but the ensemble puts row 1 in
// the wrong class with low confidence: the centroids, weighted by the
// ensemble's probabilities, still sit near the axes, so row 1 is corrected.
func TestCentroidLabels(t *testing.T) {
	features := tensor.FromSlice(4, 2, []float32{
		2, 0.1, // unnormalised on purpose: the function normalises rows
		1, 0.2,
		0.1, 1,
		0.2, 3,
	})
	affinity := tensor.FromSlice(4, 2, []float32{
		0.9, 0.1,
		0.4, 0.6, // the ensemble's wrong guess
		0.1, 0.9,
		0.05, 0.95,
	})
	got := centroidLabels(affinity, features)
	if want := []int{0, 0, 1, 1}; !slices.Equal(got, want) {
		t.Errorf("labels %v, want %v", got, want)
	}
}

func TestTestWeightRamp(t *testing.T) {
	cfg := DefaultConfig()
	want := []float64{0.8, 0.8, 0.75, 0.7, 0.65, 0.6, 0.55, 0.5, 0.45, 0.4, 0.35, 0.3, 0.3}
	for i, w := range want {
		epoch := i - 1 // the test before training uses epoch 0's weight, as the reference's l_list[0]
		if got := cfg.TestWeight(epoch); math.Abs(got-w) > 1e-12 {
			t.Errorf("epoch %d: weight %v, want %v", epoch, got, w)
		}
	}
	cfg.FixedTestWeight = 0.3
	if got := cfg.TestWeight(0); got != 0.3 {
		t.Errorf("fixed mix: %v, want 0.3", got)
	}
}

func TestPresets(t *testing.T) {
	visda, err := Preset("visda")
	if err != nil {
		t.Fatal(err)
	}
	if visda.Epochs != 10 || visda.LR != 9e-4 || visda.Alpha != 0.001 || visda.Beta != 0.1 {
		t.Errorf("visda preset %+v", visda)
	}
	oh, _ := Preset("office-home")
	if oh.Epochs != 50 || oh.LR != 3e-3 || oh.Alpha != 1 || oh.Beta != 1 || oh.Gamma != 0.01 {
		t.Errorf("office-home preset %+v", oh)
	}
	if _, err := Preset("imagenet"); err == nil {
		t.Error("unknown preset accepted")
	}
	bad := DefaultConfig()
	bad.Variants.Ortho = "frobenius"
	if bad.Validate() == nil {
		t.Error("unknown orthogonality form accepted")
	}
}
