// Package eval computes the classification metrics that unimos reports:
// overall accuracy, mean class accuracy (the VisDA-2017 headline) and
// per-class accuracy, always in percent.
package eval

import "fmt"

// ClassAccuracy is the accuracy on the rows of one true class.
type ClassAccuracy struct {
	Class    int     `json:"class"`
	Correct  int     `json:"correct"`
	Total    int     `json:"total"`
	Accuracy float64 `json:"accuracy"` // percent; 0 when Total is 0
}

// Metrics summarises predictions against labels. Rows whose label is -1
// (unknown) are not counted.
type Metrics struct {
	Labelled int `json:"labelled"` // rows with a known label
	// Accuracy is the percentage of labelled rows predicted correctly.
	Accuracy float64 `json:"accuracy"`
	// MeanClassAccuracy averages the per-class accuracies over the classes
	// that have at least one labelled row, so a class absent from the
	// domain neither helps nor hurts.
	MeanClassAccuracy float64         `json:"mean_class_accuracy"`
	PerClass          []ClassAccuracy `json:"per_class"`
}

// Evaluate compares predicted classes with true labels for numClasses
// classes. It returns an error when the lengths differ, when a label or
// prediction is outside its range, or when no row is labelled.
func Evaluate(predictions, labels []int, numClasses int) (Metrics, error) {
	if len(predictions) != len(labels) {
		return Metrics{}, fmt.Errorf("eval: %d predictions for %d labels", len(predictions), len(labels))
	}
	perClass := make([]ClassAccuracy, numClasses)
	for k := range perClass {
		perClass[k].Class = k
	}
	var m Metrics
	correct := 0
	for i, y := range labels {
		if y == -1 {
			continue
		}
		if y < 0 || y >= numClasses {
			return Metrics{}, fmt.Errorf("eval: label %d at row %d is outside [-1, %d)", y, i, numClasses)
		}
		p := predictions[i]
		if p < 0 || p >= numClasses {
			return Metrics{}, fmt.Errorf("eval: prediction %d at row %d is outside [0, %d)", p, i, numClasses)
		}
		m.Labelled++
		perClass[y].Total++
		if p == y {
			correct++
			perClass[y].Correct++
		}
	}
	if m.Labelled == 0 {
		return Metrics{}, fmt.Errorf("eval: no labelled rows to evaluate (every label is -1)")
	}
	m.Accuracy = percent(correct, m.Labelled)
	present := 0
	for k := range perClass {
		if perClass[k].Total == 0 {
			continue
		}
		perClass[k].Accuracy = percent(perClass[k].Correct, perClass[k].Total)
		m.MeanClassAccuracy += perClass[k].Accuracy
		present++
	}
	m.MeanClassAccuracy /= float64(present)
	m.PerClass = perClass
	return m, nil
}

// HasLabels reports whether any label is known (not -1).
func HasLabels(labels []int) bool {
	for _, y := range labels {
		if y != -1 {
			return true
		}
	}
	return false
}

func percent(n, d int) float64 { return 100 * float64(n) / float64(d) }
