package eval

import (
	"math"
	"strings"
	"testing"
)

func TestEvaluateByHand(t *testing.T) {
	// Class 0: 3 rows, 2 right. Class 1: 1 row, 1 right. Class 2: absent.
	// One unlabelled row, predicted anything, must not count.
	labels := []int{0, 0, 0, 1, -1}
	preds := []int{0, 1, 0, 1, 2}
	m, err := Evaluate(preds, labels, 3)
	if err != nil {
		t.Fatal(err)
	}
	if m.Labelled != 4 {
		t.Errorf("labelled = %d, want 4", m.Labelled)
	}
	if want := 75.0; m.Accuracy != want {
		t.Errorf("accuracy = %v, want %v", m.Accuracy, want)
	}
	// (2/3 + 1/1) / 2 classes present.
	if want := 100 * (2.0/3 + 1) / 2; math.Abs(m.MeanClassAccuracy-want) > 1e-12 {
		t.Errorf("mean class accuracy = %v, want %v", m.MeanClassAccuracy, want)
	}
	if m.PerClass[2].Total != 0 || m.PerClass[2].Accuracy != 0 {
		t.Errorf("absent class: %+v", m.PerClass[2])
	}
}

func TestEvaluateErrors(t *testing.T) {
	cases := []struct {
		name          string
		preds, labels []int
		want          string
	}{
		{"length", []int{0}, []int{0, 1}, "1 predictions for 2 labels"},
		{"label range", []int{0}, []int{3}, "label 3 at row 0"},
		{"negative label", []int{0}, []int{-2}, "label -2 at row 0"},
		{"prediction range", []int{5}, []int{0}, "prediction 5 at row 0"},
		{"unlabelled", []int{0}, []int{-1}, "no labelled rows"},
	}
	for _, c := range cases {
		_, err := Evaluate(c.preds, c.labels, 3)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: error %v, want it to mention %q", c.name, err, c.want)
		}
	}
}
