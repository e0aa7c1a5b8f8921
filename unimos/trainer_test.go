package unimos

import (
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"github.com/unimos/unimos/features"
	"github.com/unimos/unimos/nn"
	"github.com/unimos/unimos/safetensors"
	"github.com/unimos/unimos/tensor"
)

// tinyTask builds a small task: k classes in d dimensions, unit-norm rows
// around class means, the target shifted away from the source, text
// prototypes near the means.
func tinyTask(seed uint64, n, d, k int) Task {
	r := rand.New(rand.NewPCG(seed, 99))
	unit := func(m *tensor.Matrix) *tensor.Matrix {
		tensor.NormalizeRows(m, 1e-12)
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

// newTestTrainer is NewTrainer for a configuration and task the test
// knows to be valid.
func newTestTrainer(t testing.TB, cfg Config, task Task) *Trainer {
	t.Helper()
	tr, err := NewTrainer(cfg, task)
	if err != nil {
		t.Fatal(err)
	}
	return tr
}

func smallConfig() Config {
	cfg := DefaultConfig()
	cfg.Epochs = 3
	cfg.BottleneckDim = 16
	return cfg
}

// TestMergedStepMatchesTwoOptimizers checks Trainer.step, which merges the
// reference's two optimizers into one, against the reference's procedure
// run literally for a few iterations (section 3.5): both gradients taken
// at the parameters before the step, `optimizer` stepping every module on
// the main loss's gradient, then `optimizer_mos`, with momentum buffers of
// its own, stepping the separators on the target discriminator loss's.
func TestMergedStepMatchesTwoOptimizers(t *testing.T) {
	task := tinyTask(1, 96, 12, 4)
	cfg := smallConfig()
	reference := newTestTrainer(t, cfg, task)
	merged, _ := NewTrainer(cfg, task) // same seed: same initial weights, batches and dropout
	reference.pseudo = tensor.ArgmaxRows(reference.teacher)
	merged.pseudo = reference.pseudo

	isSeparator := func(name string) bool {
		return strings.HasPrefix(name, "text_separator.") || strings.HasPrefix(name, "vision_separator.")
	}
	var all, separators []*nn.Var
	for _, p := range reference.Model.Params() {
		all = append(all, p.Var)
		if isSeparator(p.Name) {
			separators = append(separators, p.Var)
		}
	}
	optimizer := nn.NewSGD(float32(cfg.Momentum), 0, nn.ParamGroup{Params: all})
	optimizerMOS := nn.NewSGD(float32(cfg.Momentum), 0, nn.ParamGroup{Params: separators})
	gradients := func(vs []*nn.Var) [][]float32 {
		var out [][]float32
		for _, v := range vs {
			out = append(out, slices.Clone(v.Grad.Data))
		}
		return out
	}
	setGradients := func(vs []*nn.Var, gs [][]float32) {
		for i, v := range vs {
			copy(v.Grad.Data, gs[i])
		}
	}
	separatorMoved := false
	// Three iterations exercise both momentum buffers. The two procedures
	// round differently, and the differences grow 3-6x per iteration through
	// the 100-scaled logits, so more iterations would test that growth rather
	// than the merge.
	for it := range 3 {
		lr := float32(nn.InvLR(cfg.LR, it, cfg.ScheduleGain, cfg.SchedulePow))
		optimizer.SetLR(lr)
		optimizerMOS.SetLR(lr)
		g := reference.forward()
		reference.tape.BackwardFresh(g.total)
		mainGrad := gradients(all)
		reference.tape.BackwardFresh(g.targetDiscriminator)
		targetGrad := gradients(separators)
		for _, gs := range targetGrad {
			separatorMoved = separatorMoved || slices.ContainsFunc(gs, func(v float32) bool { return v != 0 })
		}
		setGradients(all, mainGrad)
		optimizer.Step()
		setGradients(separators, targetGrad)
		optimizerMOS.Step()

		merged.step()
		for i, p := range merged.Model.Params() {
			want := all[i].Value.Data
			for j, v := range p.Var.Value.Data {
				if math.Abs(float64(v-want[j])) > 1e-6*(1+math.Abs(float64(want[j]))) {
					t.Fatalf("iteration %d: %s[%d] = %v, the two optimizers give %v", it, p.Name, j, v, want[j])
				}
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
		tr := newTestTrainer(t, cfg, task)
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
		if h1[i].Loss != h2[i].Loss || h1[i].METWeight != h2[i].METWeight || !slices.Equal(h1[i].Predictions, h2[i].Predictions) {
			t.Errorf("epoch %d differs between runs with the same seed", h1[i].Epoch)
		}
	}
	if slices.Equal(w1, w3) || h1[len(h1)-1].Loss == h3[len(h3)-1].Loss {
		t.Error("different seeds gave the same run")
	}
}

// TestHalfSourceSameRun trains once with the source features as float32
// and once as the float16 values a feature store keeps (the same numbers):
// the runs must be identical, bit for bit.
func TestHalfSourceSameRun(t *testing.T) {
	task := tinyTask(2, 80, 10, 3)
	single := task.SourceFeatures.(*tensor.Matrix)
	half := &features.HalfMatrix{Rows: single.Rows, Cols: single.Cols, Data: make([]uint16, len(single.Data))}
	for i, v := range single.Data {
		half.Data[i] = safetensors.Float32ToF16(v)
		single.Data[i] = safetensors.F16ToFloat32(half.Data[i])
	}
	run := func(source features.Rows) ([]Evaluation, []float32) {
		task.SourceFeatures = source
		tr := newTestTrainer(t, smallConfig(), task)
		h := tr.Run(nil)
		return h, slices.Clone(tr.Model.VisionSeparator.Weight.Value.Data)
	}
	h1, w1 := run(single)
	h2, w2 := run(half)
	if !slices.Equal(w1, w2) {
		t.Error("float16 source: different weights")
	}
	for i := range h1 {
		if h1[i].Loss != h2[i].Loss || !slices.Equal(h1[i].Predictions, h2[i].Predictions) {
			t.Errorf("epoch %d differs with the float16 source", h1[i].Epoch)
		}
	}
}

// TestLabelSchedule checks the pseudo-label source per epoch (section 3.3):
// the zero-shot argmax after the test before training and after the first
// epoch, then the ensemble's argmax after an odd number of epochs (the
// reference's even epochs, which it numbers from 0). (After an even number,
// centroid labels, which TestCentroidLabels checks by hand.)
func TestLabelSchedule(t *testing.T) {
	task := tinyTask(3, 96, 12, 4)
	tr := newTestTrainer(t, smallConfig(), task)
	tr.pseudo = tensor.ArgmaxRows(tr.teacher)
	for range 5 {
		tr.step() // move the weights away from initialisation
	}
	zeroShot := tensor.ArgmaxRows(tr.teacher)
	for trained := 0; trained <= 5; trained++ {
		e, labels := tr.evaluate(trained)
		if e.Epoch != trained {
			t.Errorf("the test after %d epochs says epoch %d", trained, e.Epoch)
		}
		switch {
		case trained <= 1:
			if !slices.Equal(labels, zeroShot) {
				t.Errorf("epoch %d: labels are not the zero-shot argmax", trained)
			}
		case trained%2 == 1:
			if !slices.Equal(labels, e.Predictions) {
				t.Errorf("epoch %d: labels are not the ensemble's argmax", trained)
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

// TestInferComposesLinearMaps checks the test-time shortcut of infer, which
// composes the separators with the linear maps after them, against the
// layers applied one after the other.
func TestInferComposesLinearMaps(t *testing.T) {
	task := tinyTask(5, 90, 16, 4)
	tr := newTestTrainer(t, smallConfig(), task)
	tr.pseudo = tensor.ArgmaxRows(tr.teacher)
	for range 3 { // move the weights and BatchNorm's running statistics off their initial values
		tr.step()
	}
	m := tr.Model
	got := infer(m, tr.cfg, tr.prior, task.TargetFeatures, tr.teacher, 2)

	m.SetTrain(false)
	tp := &nn.Tape{NoGrad: true}
	vac, lac := m.Separate(tp, nn.NewConst(task.TargetFeatures))
	bottleneck := m.BottleneckFeatures(tp, vac)
	language := m.LanguageLogits(tp, lac).Value.Clone()
	tr.prior.debias(language, language, float32(tr.cfg.Tau))
	for _, c := range []struct {
		name      string
		got, want *tensor.Matrix
	}{
		{"bottleneck features", got.bottleneck, bottleneck.Value},
		{"VAC logits", got.vision, m.VisionLogits(tp, bottleneck).Value},
		{"debiased LAC logits", got.language, language},
	} {
		for i, w := range c.want.Data {
			if math.Abs(float64(c.got.Data[i]-w)) > 1e-4*(1+math.Abs(float64(w))) {
				t.Fatalf("%s[%d] = %v, the layers one after the other give %v", c.name, i, c.got.Data[i], w)
			}
		}
	}
}

// TestTextRoundedToHalf checks that the trainer uses the text features
// rounded to float16, as the reference's text_fea_norm, in the model and
// the zero-shot teacher (the stored ones with FullPrecisionText), and
// leaves the caller's matrix alone.
func TestTextRoundedToHalf(t *testing.T) {
	task := tinyTask(2, 64, 12, 4)
	stored := task.Text.Clone()
	for _, full := range []bool{false, true} {
		cfg := smallConfig()
		cfg.Variants.FullPrecisionText = full
		tr := newTestTrainer(t, cfg, task)
		changed := 0
		for i, v := range stored.Data {
			// float16 keeps 11 significant bits: rounding moves a value by at most 2⁻¹¹ of it.
			got, bound := tr.Model.Text.Data[i], math.Abs(float64(v))/2048
			if full && got != v || !full && math.Abs(float64(got-v)) > bound {
				t.Fatalf("full precision %v: text[%d] = %v, stored %v", full, i, got, v)
			}
			if got != v {
				changed++
			}
			if task.Text.Data[i] != v {
				t.Fatalf("NewTrainer changed the caller's text features")
			}
		}
		if !full && changed == 0 {
			t.Error("no text feature was rounded: the check above cannot tell the variants apart")
		}
		want := teacherLogits(task.TargetFeatures, tr.Model.Text, float32(cfg.LogitScale))
		if !slices.Equal(tr.teacher.Data, want.Data) {
			t.Errorf("full precision %v: the teacher is not computed from the model's text features", full)
		}
	}
}

// TestRunStopsWhenTheLossIsNotFinite scales the source features so far
// that the first iteration's loss overflows, and requires Run to stop
// there with an error naming the epoch and the iteration, the trainer not
// done and no evaluation recorded past the test before training.
func TestRunStopsWhenTheLossIsNotFinite(t *testing.T) {
	task := tinyTask(8, 100, 12, 4)
	source := task.SourceFeatures.(*tensor.Matrix).Clone()
	for i := range source.Data {
		source.Data[i] *= 1e30
	}
	task.SourceFeatures = source
	tr := newTestTrainer(t, smallConfig(), task)
	history := tr.Run(nil)
	err := tr.Err()
	if err == nil || !strings.Contains(err.Error(), "training diverged in epoch 1/3, iteration 1/3: the loss became") {
		t.Fatalf("error %v, want one naming epoch 1/3, iteration 1/3", err)
	}
	if tr.Done() || len(history) != 1 {
		t.Errorf("done %v with %d evaluations, want a trainer stopped after the test before training", tr.Done(), len(history))
	}
	if again := tr.Run(nil); len(again) != 1 || tr.Err() != err {
		t.Errorf("a second Run trained on after the divergence: %d evaluations, error %v", len(again), tr.Err())
	}
}
