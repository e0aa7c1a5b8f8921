package unimos

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/unimos/unimos/tensor"
)

// TestProbabilitiesAgreeWithPredict checks, for a one-epoch model (which
// mixes in the zero-shot teacher) and a longer one, that the argmax and
// maximum of every row are Predict's prediction and confidence, bit for
// bit, and that a row classified alone or in a batch of any size gets the
// same probabilities.
func TestProbabilitiesAgreeWithPredict(t *testing.T) {
	for _, epochs := range []int{1, 3} {
		task := tinyTask(8, 96, 512, 10)
		cfg := smallConfig()
		cfg.Epochs = epochs
		tr := newTestTrainer(t, cfg, task)
		tr.Run(nil)
		path := filepath.Join(t.TempDir(), ModelFile)
		if err := tr.SaveModel(path, []string{"a", "b", "c", "d", "e", "f", "g", "h", "i", "j"}, Backbone{}); err != nil {
			t.Fatal(err)
		}
		m, err := LoadModel(path)
		if err != nil {
			t.Fatal(err)
		}
		x := task.TargetFeatures
		want, err := m.Predict(x, nil)
		if err != nil {
			t.Fatal(err)
		}
		probs, err := m.Probabilities(x)
		if err != nil {
			t.Fatal(err)
		}
		if probs.Rows != x.Rows || probs.Cols != 10 {
			t.Fatalf("%d epochs: probabilities [%d, %d]", epochs, probs.Rows, probs.Cols)
		}
		for i, c := range tensor.ArgmaxRows(probs) {
			if c != want.Predictions[i] || probs.At(i, c) != want.Confidences[i] {
				t.Errorf("%d epochs, row %d: class %d (%v), Predict: %d (%v)", epochs, i, c, probs.At(i, c), want.Predictions[i], want.Confidences[i])
			}
		}
		// Batches of 1, 7 and 32 rows starting anywhere: the same to the
		// last bit on the pure-Go GEMM, within float32 rounding on OpenBLAS,
		// whose kernels (and so its order of summing) depend on the matrix
		// sizes.
		tolerance := float32(0)
		if !strings.HasPrefix(tensor.Backend(), "go ") {
			tolerance = 1e-6
		}
		for _, size := range []int{1, 7, 32} {
			for lo := 0; lo+size <= x.Rows; lo += 13 {
				part, err := m.Probabilities(x.Slice(lo, lo+size, 0, x.Cols))
				if err != nil {
					t.Fatal(err)
				}
				for i := range size {
					if d := maxDiff(part.Row(i), probs.Row(lo+i)); d > tolerance {
						t.Fatalf("%d epochs: row %d in a batch of %d differs from the whole by %g", epochs, lo+i, size, d)
					}
				}
			}
		}
	}
}

// maxDiff is the largest absolute difference between a and b.
func maxDiff(a, b []float32) float32 {
	var d float32
	for i := range a {
		d = max(d, a[i]-b[i], b[i]-a[i])
	}
	return d
}

func TestProbabilitiesRejectsBadInput(t *testing.T) {
	task := tinyTask(7, 64, 12, 4)
	tr := newTestTrainer(t, smallConfig(), task)
	path := filepath.Join(t.TempDir(), ModelFile)
	if err := tr.SaveModel(path, []string{"a", "b", "c", "d"}, Backbone{}); err != nil {
		t.Fatal(err)
	}
	m, err := LoadModel(path)
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		x    *tensor.Matrix
		want string
	}{
		{tensor.New(3, 11), "dimension 11"},
		{tensor.New(0, 12), "no rows"},
	}
	for _, c := range cases {
		if _, err := m.Probabilities(c.x); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("[%d, %d]: %v, want %q", c.x.Rows, c.x.Cols, err, c.want)
		}
	}
}
