package unimos

import (
	"fmt"
	"math"

	"github.com/unimos/unimos/eval"
	"github.com/unimos/unimos/features"
	"github.com/unimos/unimos/internal/words"
	"github.com/unimos/unimos/nn"
	"github.com/unimos/unimos/safetensors"
	"github.com/unimos/unimos/tensor"
)

// Task is one adaptation problem: labelled source features, target features
// (labels, when present, are used for evaluation only) and the target
// domain's text classifier.
type Task struct {
	SourceFeatures features.Rows  // [Ns, d], unit-norm rows; read only in batches, so it may stay float16
	SourceLabels   []int          // [Ns], all known
	TargetFeatures *tensor.Matrix // [Nt, d], unit-norm rows
	TargetLabels   []int          // [Nt], -1 = unknown; never used for training
	Text           *tensor.Matrix // [K, d], unit-norm rows: "a {target} photo of a {class}."
}

// sourceRows returns Ns.
func (t Task) sourceRows() int {
	n, _ := t.SourceFeatures.Dims()
	return n
}

func (t Task) validate() error {
	d, k := t.Text.Cols, t.Text.Rows
	ns, sourceDim := t.SourceFeatures.Dims()
	switch {
	case sourceDim != d || t.TargetFeatures.Cols != d:
		return fmt.Errorf("dimension mismatch: source %d, target %d, text %d", sourceDim, t.TargetFeatures.Cols, d)
	case len(t.SourceLabels) != ns:
		return fmt.Errorf("source has %d rows but %d labels", ns, len(t.SourceLabels))
	case len(t.TargetLabels) != t.TargetFeatures.Rows:
		return fmt.Errorf("target has %d rows but %d labels", t.TargetFeatures.Rows, len(t.TargetLabels))
	case k < 2:
		return fmt.Errorf("need at least 2 classes, got %d", k)
	}
	for i, y := range t.SourceLabels {
		if y < 0 || y >= k {
			return fmt.Errorf("source row %d has label %d: every source row needs a label in [0, %d)", i, y, k)
		}
	}
	for i, y := range t.TargetLabels {
		if y < -1 || y >= k {
			return fmt.Errorf("target row %d has label %d, outside [-1, %d)", i, y, k)
		}
	}
	return nil
}

// Evaluation is the result of one end-of-epoch test on the whole target.
type Evaluation struct {
	// Epoch is the number of epochs trained: 0 for the test before
	// training, Config.Epochs for the last. Every output (console lines,
	// result.json, bench reports) shows it as it is.
	Epoch int `json:"epoch"`
	// TestWeight is the weight l_e of the vision-associated logits in this
	// test's ensemble (Config.TestWeight).
	TestWeight float64 `json:"test_weight"`
	// Accuracies in percent (nil without target labels): the ensemble, the
	// vision-associated classifier alone and the (debiased)
	// language-associated classifier alone.
	Accuracy         *float64 `json:"accuracy,omitempty"`
	VisionAccuracy   *float64 `json:"vac_accuracy,omitempty"`
	LanguageAccuracy *float64 `json:"lac_accuracy,omitempty"`
	// MeanClassAccuracy is the ensemble's mean per-class accuracy in
	// percent (the VisDA-2017 headline), nil without target labels.
	MeanClassAccuracy *float64 `json:"mean_class_accuracy,omitempty"`
	// METWeight is the mean over the epoch's iterations of the learned MET
	// weight w of the training ensemble, Loss the mean main loss (both 0
	// for the test before training).
	METWeight float64 `json:"met_weight"`
	Loss      float64 `json:"loss"`
	// LabelFree holds the selection criteria that use no target label.
	LabelFree LabelFree `json:"label_free"`

	// Predictions and Confidences are the ensemble's argmax and its
	// softmax probability per target row.
	Predictions []int         `json:"-"`
	Confidences []float32     `json:"-"`
	Metrics     *eval.Metrics `json:"-"`
}

// Trainer runs UniMoS on one task. Create it with NewTrainer and call Run.
type Trainer struct {
	cfg   Config
	task  Task
	Model *Model

	teacher *tensor.Matrix // zero-shot teacher logits [Nt, K], fixed
	prior   classPrior     // p̂ [K]
	pseudo  []int          // target pseudo-labels of the current epoch [Nt]

	// optimizer steps every module. The reference's second optimizer
	// (`optimizer_mos`, the separators only) is merged into it: see step.
	optimizer *nn.SGD

	resetRNG                     *nn.RNG
	sourceBatches, targetBatches *batchStream
	tape                         *nn.Tape

	// Progress: the global iteration (it drives the lr schedule), the epoch
	// being trained (counted from 0, so also the number of epochs
	// finished), the iterations done in it and their summed loss and w, and
	// the evaluations so far.
	iteration, epoch, epochIteration int
	lossSum, weightSum               float64
	history                          []Evaluation

	// ensemble accumulates the trained epochs' tests for EnsV and the
	// temporal ensemble; mix probes each test for MixVal. Both are built
	// when first needed (ensemble.go, mixval.go).
	ensemble *temporalEnsemble
	mix      *mixProbe

	// err says why training stopped early: a loss or a weight that became
	// NaN or infinite (see Err).
	err error

	// fingerprint is the task's data fingerprint, computed when first
	// needed (see Trainer.dataFingerprint).
	fingerprint map[string]string

	// OnIteration, when set, is called after every training iteration.
	OnIteration func(epoch, iteration, perEpoch int, loss float64)
	// Stop, when set, is asked before every iteration whether to stop; Run
	// then returns and the trainer can be saved with SaveCheckpoint.
	Stop func() bool
}

// Random stream numbers: one per purpose, so that drawing more from one
// leaves the others unchanged.
const (
	streamInit uint64 = iota + 1
	streamDropout
	streamSourceBatches
	streamTargetBatches
	streamWeightReset
)

// halfPrecision returns a copy of m with every element rounded to float16:
// the reference keeps its text features so (text_fea_norm, section 1), and
// every language-associated logit and the zero-shot teacher are computed
// from them. The rounding moves zero-shot predictions of near ties and,
// through them, the first epochs of training.
func halfPrecision(m *tensor.Matrix) *tensor.Matrix {
	out := m.Clone()
	for i, v := range out.Data {
		out.Data[i] = safetensors.F16ToFloat32(safetensors.Float32ToF16(v))
	}
	return out
}

// NewTrainer validates the configuration and the task and initialises the model.
func NewTrainer(cfg Config, task Task) (*Trainer, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if err := task.validate(); err != nil {
		return nil, err
	}
	if iterationsPerEpoch(task.sourceRows(), task.TargetFeatures.Rows, cfg.BatchSize, cfg.MaxIters) < 1 {
		return nil, fmt.Errorf("source (%d rows) and target (%d rows) each need at least one batch of %d: set the batch size to at most %d (--batch)",
			task.sourceRows(), task.TargetFeatures.Rows, cfg.BatchSize, min(task.sourceRows(), task.TargetFeatures.Rows))
	}
	if !cfg.Variants.FullPrecisionText {
		task.Text = halfPrecision(task.Text)
	}
	model := newModel(cfg, task.Text, nn.NewRNG(cfg.Seed, streamInit), nn.NewRNG(cfg.Seed, streamDropout))
	tr := &Trainer{
		cfg: cfg, task: task, Model: model,
		teacher:       teacherLogits(task.TargetFeatures, task.Text, float32(cfg.LogitScale)),
		prior:         newClassPrior(task.Text.Rows),
		resetRNG:      nn.NewRNG(cfg.Seed, streamWeightReset),
		sourceBatches: newBatchStream(task.sourceRows(), cfg.BatchSize, nn.NewRNG(cfg.Seed, streamSourceBatches)),
		targetBatches: newBatchStream(task.TargetFeatures.Rows, cfg.BatchSize, nn.NewRNG(cfg.Seed, streamTargetBatches)),
		tape:          nn.NewTape(),
	}
	var all []*nn.Var
	for _, p := range model.Params() {
		all = append(all, p.Var)
	}
	tr.optimizer = nn.NewSGD(float32(cfg.Momentum), 0, nn.ParamGroup{Params: all, LR: float32(cfg.LR)})
	return tr, nil
}

// Run trains until cfg.Epochs epochs are done, or until Stop asks it to
// stop, and returns the history so far: the test before training followed
// by the test after every finished epoch. onEpoch, when not nil, sees each
// evaluation as soon as it is made. A stopped or restored trainer's Run
// continues where it left off (see Done, SaveCheckpoint, ResumeTrainer).
//
// Run also stops when training diverges: a loss, a weight or a test result
// that is NaN or infinite. Err then says where, the trainer is not Done and
// its state is worth neither a checkpoint nor a result.
func (tr *Trainer) Run(onEpoch func(Evaluation)) []Evaluation {
	if tr.err != nil {
		return tr.history
	}
	record := func(e Evaluation) bool {
		if name, v := nonFiniteNumber(e); name != "" {
			tr.err = fmt.Errorf("training diverged: the test after %s gave %s %g; lower the learning rate or the loss weights",
				words.Count(e.Epoch, "epoch"), name, v)
			return false
		}
		tr.history = append(tr.history, e)
		if onEpoch != nil {
			onEpoch(e)
		}
		return true
	}
	if len(tr.history) == 0 {
		initial, _ := tr.evaluate(0)
		tr.pseudo = tensor.ArgmaxRows(tr.teacher) // epochs 0 and 1 train on the zero-shot argmax
		if !record(initial) {
			return tr.history
		}
	}
	perEpoch := iterationsPerEpoch(tr.task.sourceRows(), tr.task.TargetFeatures.Rows, tr.cfg.BatchSize, tr.cfg.MaxIters)
	for tr.epoch < tr.cfg.Epochs {
		tr.Model.SetTrain(true)
		for tr.epochIteration < perEpoch {
			if tr.Stop != nil && tr.Stop() {
				return tr.history
			}
			if tr.epochIteration == 0 {
				tr.Model.resetWeightGenerator(tr.cfg.WeightReset, tr.resetRNG)
				tr.lossSum, tr.weightSum = 0, 0
			}
			loss, w := tr.step()
			// A non-finite loss has already sent NaN into every weight
			// through the step: nothing after it is worth keeping.
			if !isFinite(loss) || !isFinite(w) {
				tr.err = fmt.Errorf("training diverged in epoch %d/%d, iteration %d/%d: the loss became %g (MET weight %g); lower the learning rate or the loss weights",
					tr.epoch+1, tr.cfg.Epochs, tr.epochIteration+1, perEpoch, loss, w)
				return tr.history
			}
			tr.lossSum += loss
			tr.weightSum += w
			tr.epochIteration++
			if tr.OnIteration != nil {
				tr.OnIteration(tr.epoch, tr.epochIteration-1, perEpoch, loss)
			}
		}
		// The last step's update can overflow a weight with a finite loss.
		if name := tr.nonFiniteParam(); name != "" {
			tr.err = fmt.Errorf("training diverged in epoch %d/%d: weight %s became NaN or infinite in its last iteration; lower the learning rate or the loss weights",
				tr.epoch+1, tr.cfg.Epochs, name)
			return tr.history
		}
		tr.epoch++
		tr.epochIteration = 0
		e, labels := tr.evaluate(tr.epoch)
		e.Loss, e.METWeight = tr.lossSum/float64(perEpoch), tr.weightSum/float64(perEpoch)
		tr.pseudo = labels
		if !record(e) {
			return tr.history
		}
	}
	if tr.ensemble != nil && tr.ensemble.complete(tr.epoch) {
		tr.ensemble.fillEnsV(tr.history)
	}
	return tr.history
}

// Err reports why Run stopped before the last epoch when training
// diverged (nil otherwise, also when Stop stopped it).
func (tr *Trainer) Err() error { return tr.err }

// Done reports whether every epoch has been trained.
func (tr *Trainer) Done() bool { return tr.epoch >= tr.cfg.Epochs }

// nonFiniteParam names the first parameter holding a NaN or an infinity,
// or returns "".
func (tr *Trainer) nonFiniteParam() string {
	for _, p := range tr.Model.Params() {
		for _, v := range p.Var.Value.Data {
			if !isFinite(float64(v)) {
				return p.Name
			}
		}
	}
	return ""
}

// nonFiniteNumber names the first number of an evaluation that is NaN or
// infinite (result.json could not hold it), with its value, or returns "".
func nonFiniteNumber(e Evaluation) (string, float64) {
	for _, c := range []struct {
		name string
		v    float64
	}{
		{"loss", e.Loss}, {"met_weight", e.METWeight}, {"test_weight", e.TestWeight},
		{"entropy", e.LabelFree.Entropy}, {"infomax", e.LabelFree.InfoMax},
		{"agreement", e.LabelFree.Agreement}, {"snd", e.LabelFree.SND}, {"bnm", e.LabelFree.BNM},
	} {
		if !isFinite(c.v) {
			return c.name, c.v
		}
	}
	return "", 0
}

func isFinite(v float64) bool { return !math.IsNaN(v) && !math.IsInf(v, 0) }

// step runs one training iteration and returns the main loss and the MET
// weight w.
//
// The reference takes two SGD steps per iteration (section 3.5): one of
// `optimizer` (every module) on the main loss, then one of `optimizer_mos`
// (G_txt and G_vis, with momentum buffers of their own) on the target
// discriminator loss, whose gradient it evaluates at the parameters before
// the first step, with D frozen. Both steps use the same learning rate and
// momentum, so for a separator parameter p with gradients g₁ and g₂ and
// buffers b₁ and b₂ they are p −= lr·(b₁ + b₂) with b₁ + b₂ = m·(b₁ + b₂)
// + g₁ + g₂: one step with the summed gradient and one buffer b₁ + b₂ does
// the same. So a single backward pass of the main loss plus the target
// discriminator loss (with D frozen, so only the source loss reaches D)
// and one optimizer step reproduce the reference, with one backward pass
// and one update of the separators fewer.
func (tr *Trainer) step() (loss, weight float64) {
	tr.optimizer.SetLR(float32(nn.InvLR(tr.cfg.LR, tr.iteration, tr.cfg.ScheduleGain, tr.cfg.SchedulePow)))
	tr.iteration++

	g := tr.forward()
	objective := g.total
	if g.targetDiscriminator != nil {
		objective = tr.tape.Add(objective, g.targetDiscriminator)
	}
	tr.tape.BackwardFresh(objective) // overwrites every gradient: no ZeroGrad needed
	tr.optimizer.Step()
	return float64(g.total.Scalar()), float64(g.weight.Scalar())
}

// evalChunk bounds the rows evaluated at once, and so the memory of the
// [rows, d] intermediates; evaluation-mode BatchNorm treats rows independently.
const evalChunk = 2048

// evaluate tests the model on the whole target in evaluation mode after
// `trained` epochs (0: before training) and returns the evaluation and the
// pseudo-labels for the next epoch (section 3.3).
func (tr *Trainer) evaluate(trained int) (Evaluation, []int) {
	out, result := testAfter(tr.Model, tr.cfg, tr.prior, tr.task.TargetFeatures, tr.teacher, tr.task.TargetLabels, trained)
	tr.probeSelection(trained, out, &result)
	// The reference numbers its epochs from 0: the epoch just trained is
	// trained−1, and its parity chooses the pseudo-labels.
	last := trained - 1
	var labels []int
	switch {
	case last <= 0:
		labels = tensor.ArgmaxRows(tr.teacher)
	case last%2 == 1 || tr.cfg.Variants.CentroidLabelsOnly:
		labels = centroidLabels(out.probs, out.bottleneck)
	default:
		labels = result.Predictions
	}
	return result, labels
}

// testAfter tests model m on target features x [N, d] as the reference's
// test does after `trained` epochs (0: before training); labels [N], where
// known, score it. teacher, the zero-shot logits of x, is used only up to
// the first epoch's test. It is the one test of training and of a saved
// model.
func testAfter(m *Model, cfg Config, prior classPrior, x, teacher *tensor.Matrix, labels []int, trained int) (testOutputs, Evaluation) {
	// infer counts epochs as the reference's test does: the index of the
	// last epoch trained, −1 before training.
	out := infer(m, cfg, prior, x, teacher, trained-1)
	e := out.evaluation(labels, cfg.Seed)
	e.Epoch = trained
	return out, e
}

// mustEvaluate computes metrics on inputs the trainer has already
// validated, where an error would be a bug.
func mustEvaluate(pred, labels []int, k int) *eval.Metrics {
	m, err := eval.Evaluate(pred, labels, k)
	if err != nil {
		panic(fmt.Sprintf("unimos: evaluating validated labels: %v", err))
	}
	return &m
}

// rowSet names some rows of a matrix.
type rowSet struct {
	m   features.Rows
	idx []int
}

// gatherRows copies the named rows of each set, one set after the other,
// into a new matrix.
func gatherRows(sets ...rowSet) *tensor.Matrix {
	rows := 0
	for _, s := range sets {
		rows += len(s.idx)
	}
	_, cols := sets[0].m.Dims()
	out := tensor.New(rows, cols)
	r := 0
	for _, s := range sets {
		for _, i := range s.idx {
			s.m.RowInto(out.Row(r), i)
			r++
		}
	}
	return out
}

func pick(values []int, idx []int) []int {
	out := make([]int, len(idx))
	for i, j := range idx {
		out[i] = values[j]
	}
	return out
}
