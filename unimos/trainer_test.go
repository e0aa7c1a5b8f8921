package unimos

import (
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"github.com/unimos/unimos/tensor"
)

// tinyTask builds a small task: k classes in d dimensions, unit-norm rows
// around class means, the target shifted away from the source, text
// prototypes near the means.
func tinyTask(seed uint64, n, d, k int) Task {
	r := rand.New(rand.NewPCG(seed, 99))
	unit := func(m *tensor.Matrix) *tensor.Matrix {
		for i := range m.Rows {
			normalize(m.Row(i), 1e-12)
		}
		return m
	}
	means := tensor.New(k, d)
	for i := range means.Data {
		means.Data[i] = float32(r.NormFloat64())
	}
	unit(means)
	draw := func(shift float64) (*tensor.Matrix, []int) {
		x := tensor.New(n, d)
		y := make([]int, n)
		for i := range n {
			y[i] = r.IntN(k)
			for j, v := range means.Row(y[i]) {
				x.Row(i)[j] = v + float32(0.5*r.NormFloat64()+shift*float64(j%3))
			}
		}
		return unit(x), y
	}
	xs, ys := draw(0)
	xt, yt := draw(0.3)
	text := tensor.New(k, d)
	for i := range text.Data {
		text.Data[i] = means.Data[i] + float32(0.3*r.NormFloat64())
	}
	return Task{SourceFeatures: xs, SourceLabels: ys, TargetFeatures: xt, TargetLabels: yt, Text: unit(text)}
}

func smallConfig() Config {
	cfg := DefaultConfig()
	cfg.Epochs = 3
	cfg.BottleneckDim = 16
	return cfg
}

// TestTwoOptimizerStep checks the update of one iteration against its
// definition (section 3.5): on the first step every momentum buffer equals
// its gradient, so each parameter moves by −lr·g_main, and the separators
// move again by −lr·g_target, where both gradients are taken at the
// parameters before the step.
func TestTwoOptimizerStep(t *testing.T) {
	task := tinyTask(1, 96, 12, 4)
	cfg := smallConfig()
	probe, err := NewTrainer(cfg, task) // computes the gradients, takes no step
	if err != nil {
		t.Fatal(err)
	}
	probe.pseudo = tensor.ArgmaxRows(probe.teacher)
	g := probe.forward()
	probe.tape.BackwardFresh(g.total)
	mainGrad := map[string][]float32{}
	for _, p := range probe.Model.Params() {
		mainGrad[p.Name] = slices.Clone(p.Var.Grad.Data)
	}
	probe.tape.BackwardFresh(g.targetDiscriminator)
	targetGrad := map[string][]float32{}
	for _, p := range probe.Model.Params() {
		targetGrad[p.Name] = slices.Clone(p.Var.Grad.Data)
	}

	stepped, _ := NewTrainer(cfg, task) // same seed: same initial weights, batches and dropout
	stepped.pseudo = tensor.ArgmaxRows(stepped.teacher)
	before := map[string][]float32{}
	for _, p := range stepped.Model.Params() {
		before[p.Name] = slices.Clone(p.Var.Value.Data)
	}
	stepped.step()

	lr := float32(cfg.LR) // the schedule gives lr0 at iteration 0
	separatorMoved := false
	for _, p := range stepped.Model.Params() {
		separator := strings.HasPrefix(p.Name, "text_separator.") || strings.HasPrefix(p.Name, "vision_separator.")
		for i, v := range p.Var.Value.Data {
			want := before[p.Name][i] - lr*mainGrad[p.Name][i]
			if separator {
				want -= lr * targetGrad[p.Name][i]
				separatorMoved = separatorMoved || targetGrad[p.Name][i] != 0
			}
			if math.Abs(float64(v-want)) > 1e-6*(1+math.Abs(float64(want))) {
				t.Fatalf("%s[%d] = %v after the step, want %v", p.Name, i, v, want)
			}
		}
	}
	if !separatorMoved {
		t.Error("the target discriminator loss sent no gradient to the separators")
	}
}

// TestSameSeedSameRun runs the trainer twice with one seed (bit-identical
// histories and weights) and once with another (different).
func TestSameSeedSameRun(t *testing.T) {
	task := tinyTask(2, 80, 10, 3)
	run := func(seed uint64) ([]Evaluation, []float32) {
		cfg := smallConfig()
		cfg.Seed = seed
		tr, err := NewTrainer(cfg, task)
		if err != nil {
			t.Fatal(err)
		}
		h := tr.Run(nil)
		return h, slices.Clone(tr.Model.TextSeparator.Weight.Value.Data)
	}
	h1, w1 := run(5)
	h2, w2 := run(5)
	h3, w3 := run(6)
	if !slices.Equal(w1, w2) {
		t.Error("same seed, different weights")
	}
	for i := range h1 {
		if h1[i].Loss != h2[i].Loss || h1[i].W != h2[i].W || !slices.Equal(h1[i].Predictions, h2[i].Predictions) {
			t.Errorf("epoch %d differs between runs with the same seed", h1[i].Epoch)
		}
	}
	if slices.Equal(w1, w3) || h1[len(h1)-1].Loss == h3[len(h3)-1].Loss {
		t.Error("different seeds gave the same run")
	}
}

// TestLabelSchedule checks the pseudo-label source per epoch (section 3.3):
// the zero-shot argmax after the test before training and after epoch 0,
// then the ensemble's argmax after even epochs. (Odd epochs use centroid
// labels, which TestCentroidLabels checks by hand.)
func TestLabelSchedule(t *testing.T) {
	task := tinyTask(3, 96, 12, 4)
	tr, err := NewTrainer(smallConfig(), task)
	if err != nil {
		t.Fatal(err)
	}
	tr.pseudo = tensor.ArgmaxRows(tr.teacher)
	for range 5 {
		tr.step() // move the weights away from initialisation
	}
	zeroShot := tensor.ArgmaxRows(tr.teacher)
	for epoch := -1; epoch <= 4; epoch++ {
		e, labels := tr.evaluate(epoch)
		switch {
		case epoch <= 0:
			if !slices.Equal(labels, zeroShot) {
				t.Errorf("epoch %d: labels are not the zero-shot argmax", epoch)
			}
		case epoch%2 == 0:
			if !slices.Equal(labels, e.Predictions) {
				t.Errorf("epoch %d: labels are not the ensemble's argmax", epoch)
			}
		}
	}
}

func TestTaskValidation(t *testing.T) {
	task := tinyTask(4, 64, 8, 3)
	task.SourceLabels[3] = -1
	if _, err := NewTrainer(smallConfig(), task); err == nil {
		t.Error("unlabelled source row accepted")
	}
	task = tinyTask(4, 20, 8, 3) // fewer rows than one batch of 32
	if _, err := NewTrainer(smallConfig(), task); err == nil {
		t.Error("a task smaller than one batch accepted")
	}
}
