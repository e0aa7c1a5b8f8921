package unimos

import (
	"errors"
	"fmt"
	"os"
	"slices"
	"strconv"

	"github.com/unimos/unimos/eval"
	"github.com/unimos/unimos/safetensors"
	"github.com/unimos/unimos/tensor"
)

// temporalEnsemble accumulates the trained epochs' test outputs for two
// uses: EnsV, which picks the epoch that agrees most with the ensemble of
// all epochs (Hu et al., "Towards Reliable Model Selection for Unsupervised
// Domain Adaptation: An Empirical Study and A Certified Baseline", NeurIPS
// 2024 Datasets and Benchmarks), and the temporal ensemble itself, the mean
// of the epochs' softmax outputs, which unimos offers as a prediction of its
// own (not the UniMoS paper's method).
//
// Its memory is bounded by one running sum [N, K] and one argmax vector [N]
// per epoch, never every epoch's probabilities: EnsV needs only each
// epoch's argmax once the ensemble is known, and the ensemble is the sum.
type temporalEnsemble struct {
	sum    *tensor.Matrix // Σ over the epochs added of their probabilities [N, K]
	epochs []int          // the epochs added (epochs trained), in order
	argmax [][]int32      // per epoch added, its argmax over classes [N]
}

// add records the test after epoch (epochs trained, >= 1) with softmax
// outputs probs [N, K].
func (t *temporalEnsemble) add(epoch int, probs *tensor.Matrix) {
	if t.sum == nil {
		t.sum = tensor.New(probs.Rows, probs.Cols)
	}
	tensor.Add(t.sum, t.sum, probs)
	labels := make([]int32, probs.Rows)
	for i, c := range tensor.ArgmaxRows(probs) {
		labels[i] = int32(c)
	}
	t.epochs = append(t.epochs, epoch)
	t.argmax = append(t.argmax, labels)
}

// complete reports whether every epoch 1..trained was added, in order: a
// run resumed from a checkpoint without its ensemble file lacks the
// earlier epochs, and its ensemble would not be the whole run's.
func (t *temporalEnsemble) complete(trained int) bool {
	if len(t.epochs) != trained {
		return false
	}
	for i, e := range t.epochs {
		if e != i+1 {
			return false
		}
	}
	return trained > 0
}

// probabilities returns the ensemble: the mean of the epochs' probabilities [N, K].
func (t *temporalEnsemble) probabilities() *tensor.Matrix {
	out := tensor.New(t.sum.Rows, t.sum.Cols)
	tensor.Scale(out, t.sum, 1/float32(len(t.epochs)))
	return out
}

// agreements returns, per epoch added, EnsV's measure: the percentage of
// rows where the epoch's argmax equals the ensemble's.
func (t *temporalEnsemble) agreements() []float64 {
	pseudo := tensor.ArgmaxRows(t.sum) // the mean's argmax is the sum's
	out := make([]float64, len(t.argmax))
	for e, labels := range t.argmax {
		same := 0
		for i, c := range labels {
			if int(c) == pseudo[i] {
				same++
			}
		}
		out[e] = 100 * float64(same) / float64(len(labels))
	}
	return out
}

// fillEnsV sets LabelFree.EnsV of the history's trained epochs.
func (t *temporalEnsemble) fillEnsV(history []Evaluation) {
	agree := t.agreements()
	for i := range history {
		if k := slices.Index(t.epochs, history[i].Epoch); k >= 0 && history[i].Epoch > 0 {
			v := agree[k]
			history[i].LabelFree.EnsV = &v
		}
	}
}

// EnsembleFile holds a stopped run's temporal ensemble beside its
// checkpoint, so that a resumed run's EnsV and temporal ensemble cover
// every epoch. (The checkpoint format itself is not changed: a checkpoint
// without this file resumes as before, without EnsV.)
const EnsembleFile = "ensemble.safetensors"

// save writes the ensemble to path.
func (t *temporalEnsemble) save(path string) error {
	if t.sum == nil {
		return nil
	}
	sum, err := safetensors.FromFloat32("sum", safetensors.F32, []int{t.sum.Rows, t.sum.Cols}, t.sum.Clone().Data)
	if err != nil {
		return err
	}
	flat := make([]int64, 0, len(t.argmax)*t.sum.Rows)
	for _, labels := range t.argmax {
		for _, c := range labels {
			flat = append(flat, int64(c))
		}
	}
	argmax, err := safetensors.FromInt64("argmax", safetensors.I32, []int{len(t.argmax), t.sum.Rows}, flat)
	if err != nil {
		return err
	}
	epochs := make([]int64, len(t.epochs))
	for i, e := range t.epochs {
		epochs[i] = int64(e)
	}
	ep, err := safetensors.FromInt64("epochs", safetensors.I32, []int{len(t.epochs)}, epochs)
	if err != nil {
		return err
	}
	return safetensors.WriteFile(path, []*safetensors.Tensor{sum, argmax, ep}, map[string]string{"format": "unimos-ensemble", "epochs": strconv.Itoa(len(t.epochs))})
}

// loadEnsemble reads an ensemble that save wrote, for a target of n rows
// and k classes.
func loadEnsemble(path string, n, k int) (*temporalEnsemble, error) {
	f, err := safetensors.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	tensorOf := func(name string) (*safetensors.Tensor, error) { return f.Tensor(name) }
	sumT, err := tensorOf("sum")
	if err != nil {
		return nil, err
	}
	epT, err := tensorOf("epochs")
	if err != nil {
		return nil, err
	}
	amT, err := tensorOf("argmax")
	if err != nil {
		return nil, err
	}
	epochs, err := epT.Int64()
	if err != nil {
		return nil, err
	}
	e := len(epochs)
	if !slices.Equal(sumT.Shape, []int{n, k}) || !slices.Equal(amT.Shape, []int{e, n}) {
		return nil, fmt.Errorf("%s: shapes %v and %v do not fit a target of %d rows and %d classes over %d epochs", path, sumT.Shape, amT.Shape, n, k, e)
	}
	sum, err := sumT.Float32()
	if err != nil {
		return nil, err
	}
	flat, err := amT.Int64()
	if err != nil {
		return nil, err
	}
	t := &temporalEnsemble{sum: tensor.FromSlice(n, k, sum)}
	for i, ep := range epochs {
		if ep < 1 || (i > 0 && int(ep) <= t.epochs[i-1]) {
			return nil, fmt.Errorf("%s: epochs %v are not increasing from 1", path, epochs)
		}
		labels := make([]int32, n)
		for j, c := range flat[i*n : (i+1)*n] {
			if c < 0 || int(c) >= k {
				return nil, fmt.Errorf("%s: class %d outside [0, %d)", path, c, k)
			}
			labels[j] = int32(c)
		}
		t.epochs = append(t.epochs, int(ep))
		t.argmax = append(t.argmax, labels)
	}
	return t, nil
}

// probeSelection feeds the label-free criteria that need more than one
// test's outputs or the model itself: ClassAMI (the bottleneck features),
// and it adds a trained epoch's probabilities to the temporal
// ensemble (EnsV), and scores the model on the MixVal mixes with the
// test's predictions as pseudo-labels, into e.
func (tr *Trainer) probeSelection(trained int, out testOutputs, e *Evaluation) {
	if tr.mix == nil {
		tr.mix = newMixProbe(tr.task.TargetFeatures, tr.task.Text, float32(tr.cfg.LogitScale), tr.cfg.Seed)
	}
	mixed := infer(tr.Model, tr.cfg, tr.prior, tr.mix.x, tr.mix.teacher, trained-1)
	e.LabelFree.MixValInter, e.LabelFree.MixValIntra = tr.mix.score(e.Predictions, mixed.probs)
	e.LabelFree.ClassAMI = ClassAMI(out.bottleneck, e.Predictions, out.probs.Cols, tr.cfg.Seed)
	if trained == 0 {
		return // the test before training is no candidate
	}
	if tr.ensemble == nil {
		tr.ensemble = &temporalEnsemble{}
	}
	tr.ensemble.add(trained, out.probs)
}

// TemporalEnsemble returns the test of the temporal ensemble, the mean of
// every trained epoch's softmax outputs on the target (unimos's own
// addition, not the UniMoS paper's), as an Evaluation with Epoch = the
// epochs trained, scored on the target labels where known; ok is false
// until training is done, and for a run resumed without its EnsembleFile.
func (tr *Trainer) TemporalEnsemble() (e Evaluation, ok bool) {
	if !tr.Done() || tr.ensemble == nil || !tr.ensemble.complete(tr.epoch) {
		return Evaluation{}, false
	}
	probs := tr.ensemble.probabilities()
	e = Evaluation{Epoch: tr.epoch, Predictions: tensor.ArgmaxRows(probs)}
	e.Confidences = make([]float32, probs.Rows)
	for i, c := range e.Predictions {
		e.Confidences[i] = probs.At(i, c)
	}
	if eval.HasLabels(tr.task.TargetLabels) {
		e.Metrics = mustEvaluate(e.Predictions, tr.task.TargetLabels, probs.Cols)
		e.Accuracy = &e.Metrics.Accuracy
		e.MeanClassAccuracy = &e.Metrics.MeanClassAccuracy
	}
	return e, true
}

// SaveEnsemble writes the temporal ensemble so far to path (EnsembleFile
// beside a checkpoint); nothing when no epoch is trained.
func (tr *Trainer) SaveEnsemble(path string) error {
	if tr.ensemble == nil {
		return nil
	}
	return tr.ensemble.save(path)
}

// RestoreEnsemble reads the temporal ensemble that SaveEnsemble wrote,
// for a trainer resumed from the checkpoint beside it.
func (tr *Trainer) RestoreEnsemble(path string) error {
	if _, err := os.Stat(path); errors.Is(err, os.ErrNotExist) && tr.epoch == 0 {
		return nil // stopped in the first epoch: nothing to restore
	}
	t, err := loadEnsemble(path, tr.task.TargetFeatures.Rows, tr.task.Text.Rows)
	if err != nil {
		return err
	}
	if !t.complete(tr.epoch) {
		return fmt.Errorf("%s covers epochs %v, the checkpoint %d", path, t.epochs, tr.epoch)
	}
	tr.ensemble = t
	return nil
}
