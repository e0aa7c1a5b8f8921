package unimos

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"

	"github.com/unimos/unimos/internal/words"

	"github.com/unimos/unimos/nn"
	"github.com/unimos/unimos/safetensors"
	"github.com/unimos/unimos/tensor"
)

// A checkpoint is a safetensors file holding everything a stopped trainer
// needs to continue exactly as if it had not stopped: the weights, the
// BatchNorm statistics, the optimizer's momentum buffers, the class prior,
// the pseudo-labels, the batch order and every random stream, the progress
// counters and the history, with the configuration in the metadata.
// Tensor names: "param/<name>", "momentum/<name>",
// "bottleneck_norm.running_mean|var", "class_prior", "pseudo_labels",
// "source_batches.perm", "target_batches.perm".

// checkpointFormat marks checkpoint files and their layout version.
// Version 1 had the reference's two optimizers, with the separators' second
// momentum buffers under "separator_momentum/<name>"; it is still read, the
// two buffers summed into one (see Trainer.step). Versions 1 and 2 numbered
// the history's epochs from 0 (−1 before training); they are renumbered to
// the epochs trained on reading.
const (
	checkpointFormat   = "unimos-checkpoint-3"
	checkpointFormatV2 = "unimos-checkpoint-2"
	checkpointFormatV1 = "unimos-checkpoint-1"
)

// SaveCheckpoint writes the trainer's state to path atomically. extra
// metadata (e.g. where the features came from) is stored beside it.
func (tr *Trainer) SaveCheckpoint(path string, extra map[string]string) error {
	var tensors []*safetensors.Tensor
	addFloat := func(name string, m *tensor.Matrix) error {
		t, err := safetensors.FromFloat32(name, safetensors.F32, []int{m.Rows, m.Cols}, m.Clone().Data)
		tensors = append(tensors, t)
		return err
	}
	addInts := func(name string, values []int) error {
		v := make([]int64, len(values))
		for i, x := range values {
			v[i] = int64(x)
		}
		t, err := safetensors.FromInt64(name, safetensors.I64, []int{len(v)}, v)
		tensors = append(tensors, t)
		return err
	}
	m := tr.Model
	var errs []error
	for _, p := range m.Params() {
		errs = append(errs, addFloat("param/"+p.Name, p.Var.Value))
		if buf := tr.optimizer.MomentumBuffer(p.Var); buf != nil {
			errs = append(errs, addFloat("momentum/"+p.Name, buf))
		}
	}
	bn := m.BottleneckNorm
	errs = append(errs,
		addFloat("bottleneck_norm.running_mean", tensor.FromSlice(1, len(bn.RunningMean), bn.RunningMean)),
		addFloat("bottleneck_norm.running_var", tensor.FromSlice(1, len(bn.RunningVar), bn.RunningVar)),
		addFloat("class_prior", tensor.FromSlice(1, len(tr.prior), tr.prior)),
		addInts("pseudo_labels", tr.pseudo),
		addInts("source_batches.perm", tr.sourceBatches.perm),
		addInts("target_batches.perm", tr.targetBatches.perm),
	)
	for _, err := range errs {
		if err != nil {
			return fmt.Errorf("checkpoint %s: %w", path, err)
		}
	}
	meta := map[string]string{}
	for k, v := range extra {
		meta[k] = v
	}
	config, err := json.Marshal(tr.cfg)
	if err != nil {
		return err
	}
	history, err := json.Marshal(tr.history)
	if err != nil {
		return err
	}
	meta["format"] = checkpointFormat
	meta["config"] = string(config)
	meta["history"] = string(history)
	for name, n := range map[string]int{
		"iteration": tr.iteration, "epoch": tr.epoch, "epoch_iteration": tr.epochIteration,
		"source_batches.next": tr.sourceBatches.next, "target_batches.next": tr.targetBatches.next,
		"source_rows": tr.task.sourceRows(), "target_rows": tr.task.TargetFeatures.Rows,
	} {
		meta[name] = strconv.Itoa(n)
	}
	for part, sum := range tr.dataFingerprint() {
		meta[dataFingerprintKey(part)] = sum
	}
	meta["loss_sum"] = strconv.FormatFloat(tr.lossSum, 'g', -1, 64)
	meta["weight_sum"] = strconv.FormatFloat(tr.weightSum, 'g', -1, 64)
	for name, rng := range tr.streams() {
		state, err := rng.MarshalBinary()
		if err != nil {
			return err
		}
		meta["rng."+name] = base64.StdEncoding.EncodeToString(state)
	}
	return safetensors.WriteFile(path, tensors, meta)
}

// streams are the trainer's random streams that move during training.
func (tr *Trainer) streams() map[string]*nn.RNG {
	return map[string]*nn.RNG{
		"dropout":        tr.Model.DiscriminatorDropout.RNG,
		"weight_reset":   tr.resetRNG,
		"source_batches": tr.sourceBatches.rng,
		"target_batches": tr.targetBatches.rng,
	}
}

// dataFingerprint returns the fingerprint of the trainer's task
// (dataFingerprint), computed on first use: the task never changes.
func (tr *Trainer) dataFingerprint() map[string]string {
	if tr.fingerprint == nil {
		tr.fingerprint = dataFingerprint(tr.task)
	}
	return tr.fingerprint
}

// openCheckpoint opens a checkpoint file and checks its format.
func openCheckpoint(path string) (*safetensors.File, error) {
	f, err := safetensors.Open(path)
	if err != nil {
		return nil, err
	}
	switch format := f.Metadata()["format"]; format {
	case checkpointFormat, checkpointFormatV2, checkpointFormatV1:
		return f, nil
	default:
		f.Close()
		return nil, fmt.Errorf("%s is not a unimos checkpoint (format %q)", path, format)
	}
}

// CheckpointMetadata returns a checkpoint's metadata (the configuration
// under "config" and what the caller stored with it), to rebuild the task
// before ResumeTrainer.
func CheckpointMetadata(path string) (map[string]string, error) {
	f, err := openCheckpoint(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return f.Metadata(), nil
}

// HasDataFingerprint reports whether a checkpoint's metadata records the
// data it was trained on. Checkpoints written before unimos recorded it
// resume without the check that the data is unchanged.
func HasDataFingerprint(meta map[string]string) bool {
	return meta[dataFingerprintKey(dataParts[0].key)] != ""
}

// ResumeTrainer rebuilds the trainer saved in the checkpoint at path for
// the same task; its Run continues where the saved one stopped and reaches
// the same result, bit for bit, as a run that never stopped.
//
// A checkpoint is read as untrusted input: the sizes of the model come from
// its tensors' shapes and must agree with the configuration and the task
// before anything is allocated, every restored value is checked (counters,
// batch orders, pseudo-labels, the class prior, the history, the random
// streams, finite weights), and the task's data must be the data it was
// saved with. Any disagreement is an error naming the checkpoint and the
// field, so that a damaged file never continues into a wrong result.
func ResumeTrainer(path string, task Task) (*Trainer, error) {
	f, err := openCheckpoint(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	tr, err := resumeFrom(f, task)
	if err != nil {
		return nil, fmt.Errorf("checkpoint %s: %w", path, err)
	}
	return tr, nil
}

// resumeFrom checks that the checkpoint f fits the task, builds the trainer
// and restores its state.
func resumeFrom(f *safetensors.File, task Task) (*Trainer, error) {
	meta := f.Metadata()
	var cfg Config
	if err := json.Unmarshal([]byte(meta["config"]), &cfg); err != nil {
		return nil, fmt.Errorf("metadata config: %w", err)
	}
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("metadata config: %w", err)
	}
	if err := task.validate(); err != nil {
		return nil, fmt.Errorf("the task to resume: %w", err)
	}
	for _, c := range []struct {
		name string
		rows int
	}{{"source_rows", task.sourceRows()}, {"target_rows", task.TargetFeatures.Rows}} {
		if meta[c.name] != strconv.Itoa(c.rows) {
			return nil, fmt.Errorf("saved for %s %s, but the task has %d", c.name, meta[c.name], c.rows)
		}
	}
	// The model's sizes as the tensors give them, checked before
	// NewTrainer allocates from the configuration.
	saved, err := headerDims(f, "param/")
	if err != nil {
		return nil, err
	}
	if want := (modelDims{dim: task.Text.Cols, classes: task.Text.Rows, bottleneck: cfg.BottleneckDim}); saved != want {
		return nil, fmt.Errorf("its tensors hold a model of %s, but the task and the metadata config ask for %s", saved, want)
	}
	tr, err := NewTrainer(cfg, task)
	if err != nil {
		return nil, err
	}
	if err := tr.restore(f); err != nil {
		return nil, err
	}
	return tr, nil
}

// restore loads the state saved by SaveCheckpoint into a new trainer,
// checking every value against what a trainer of this task and
// configuration can reach.
func (tr *Trainer) restore(f *safetensors.File) error {
	meta := f.Metadata()
	if err := tr.restoreProgress(meta); err != nil {
		return err
	}
	if err := tr.restoreStreams(meta); err != nil {
		return err
	}
	if err := tr.restoreTensors(f); err != nil {
		return err
	}
	return tr.checkData(meta)
}

// restoreProgress restores and checks the counters, the running sums and
// the history. A trainer's counters are tied together: the global
// iteration is epoch·perEpoch + epoch_iteration, and every iteration draws
// one source and one target batch, so the batch positions follow from it.
func (tr *Trainer) restoreProgress(meta map[string]string) error {
	for _, c := range []struct {
		name string
		dst  *int
	}{
		{"iteration", &tr.iteration}, {"epoch", &tr.epoch}, {"epoch_iteration", &tr.epochIteration},
		{"source_batches.next", &tr.sourceBatches.next}, {"target_batches.next", &tr.targetBatches.next},
	} {
		n, err := strconv.Atoi(meta[c.name])
		if err != nil {
			return fmt.Errorf("metadata %s: %w", c.name, err)
		}
		*c.dst = n
	}
	perEpoch := iterationsPerEpoch(tr.task.sourceRows(), tr.task.TargetFeatures.Rows, tr.cfg.BatchSize, tr.cfg.MaxIters)
	switch {
	case tr.epoch < 0 || tr.epoch > tr.cfg.Epochs:
		return fmt.Errorf("metadata epoch %d is outside [0, %d] (the run's epochs)", tr.epoch, tr.cfg.Epochs)
	case tr.epochIteration < 0 || tr.epochIteration >= perEpoch || (tr.epoch == tr.cfg.Epochs && tr.epochIteration != 0):
		return fmt.Errorf("metadata epoch_iteration %d is outside [0, %d) (iterations per epoch) or past the last epoch", tr.epochIteration, perEpoch)
	case tr.iteration != tr.epoch*perEpoch+tr.epochIteration:
		return fmt.Errorf("metadata iteration %d disagrees with epoch %d and epoch_iteration %d (%d iterations per epoch make %d)",
			tr.iteration, tr.epoch, tr.epochIteration, perEpoch, tr.epoch*perEpoch+tr.epochIteration)
	}
	for _, c := range []struct {
		name string
		s    *batchStream
	}{{"source_batches.next", tr.sourceBatches}, {"target_batches.next", tr.targetBatches}} {
		if want := nextAfter(c.s.n, c.s.b, tr.iteration); c.s.next != want {
			return fmt.Errorf("metadata %s %d: after %s the stream is at %d", c.name, c.s.next, words.Count(tr.iteration, "iteration"), want)
		}
	}

	var err error
	if tr.lossSum, err = strconv.ParseFloat(meta["loss_sum"], 64); err != nil || !isFinite(tr.lossSum) {
		return fmt.Errorf("metadata loss_sum %q is not a finite number", meta["loss_sum"])
	}
	// w is a sigmoid's mean, in [0, 1] at each iteration; the sum covers
	// the epoch's iterations so far (the last epoch's, until the next
	// iteration resets it).
	if tr.weightSum, err = strconv.ParseFloat(meta["weight_sum"], 64); err != nil || !(tr.weightSum >= 0 && tr.weightSum <= float64(perEpoch)) {
		return fmt.Errorf("metadata weight_sum %q is not a number in [0, %d] (the iterations of an epoch)", meta["weight_sum"], perEpoch)
	}

	if err := json.Unmarshal([]byte(meta["history"]), &tr.history); err != nil {
		return fmt.Errorf("metadata history: %w", err)
	}
	if meta["format"] != checkpointFormat {
		countEpochsTrained(tr.history)
	}
	// The test before training is recorded when Run starts, so a trainer
	// saved before its first Run has no history; any other has one
	// evaluation per epoch trained, and the test before training.
	if len(tr.history) == 0 && tr.iteration == 0 {
		return nil
	}
	if len(tr.history) != tr.epoch+1 {
		return fmt.Errorf("metadata history holds %s, but epoch %d needs %d (the test before training and one per epoch)",
			words.Count(len(tr.history), "evaluation"), tr.epoch, tr.epoch+1)
	}
	for i, e := range tr.history {
		if err := checkEvaluation(e, i); err != nil {
			return fmt.Errorf("metadata history: evaluation %d: %w", i, err)
		}
	}
	return nil
}

// checkEvaluation checks that a restored evaluation is the i-th of a run:
// its epoch number and numbers in their ranges.
func checkEvaluation(e Evaluation, i int) error {
	if e.Epoch != i {
		return fmt.Errorf("epoch %d, want %d", e.Epoch, i)
	}
	for _, c := range []struct {
		name   string
		v      *float64
		within interval
	}{
		{"accuracy", e.Accuracy, interval{0, 100, false, false}},
		{"vac_accuracy", e.VisionAccuracy, interval{0, 100, false, false}},
		{"lac_accuracy", e.LanguageAccuracy, interval{0, 100, false, false}},
		{"mean_class_accuracy", e.MeanClassAccuracy, interval{0, 100, false, false}},
		{"test_weight", &e.TestWeight, interval{0, 1, false, false}},
		{"met_weight", &e.METWeight, interval{0, 1, false, false}},
		{"loss", &e.Loss, interval{-math.MaxFloat64, math.MaxFloat64, false, false}},
	} {
		if c.v != nil && !c.within.contains(*c.v) {
			return fmt.Errorf("%s %g is not %s", c.name, *c.v, c.within)
		}
	}
	return nil
}

// restoreStreams restores the random streams; a state that is not one
// (wrong length, not base64) is an error naming the stream.
func (tr *Trainer) restoreStreams(meta map[string]string) error {
	for name, rng := range tr.streams() {
		state, err := base64.StdEncoding.DecodeString(meta["rng."+name])
		if err != nil {
			return fmt.Errorf("metadata rng.%s: %w", name, err)
		}
		if err := rng.UnmarshalBinary(state); err != nil {
			return fmt.Errorf("metadata rng.%s: %w", name, err)
		}
	}
	return nil
}

// restoreTensors restores the weights, momentum buffers, BatchNorm
// statistics, class prior, pseudo-labels and batch orders, each checked for
// its shape and its values.
func (tr *Trainer) restoreTensors(f *safetensors.File) error {
	has := map[string]bool{}
	for _, n := range f.Names() {
		has[n] = true
	}
	// readFloats reads a float tensor of the given shape and requires
	// every value finite.
	readFloats := func(name string, shape []int, dst []float32) error {
		t, err := f.Tensor(name)
		if err != nil {
			return err
		}
		if !slices.Equal(t.Shape, shape) {
			return fmt.Errorf("tensor %s has shape %v, want %v", name, t.Shape, shape)
		}
		if err := t.Float32Into(dst); err != nil {
			return err
		}
		return checkFinite(name, dst)
	}
	// readIndices reads a vector of n integers (or none, when empty is
	// allowed), each in [lo, hi).
	readIndices := func(name string, n int, emptyOK bool, lo, hi int) ([]int, error) {
		t, err := f.Tensor(name)
		if err != nil {
			return nil, err
		}
		if len(t.Shape) != 1 || (t.Shape[0] != n && !(emptyOK && t.Shape[0] == 0)) {
			return nil, fmt.Errorf("tensor %s has shape %v, want [%d]", name, t.Shape, n)
		}
		v, err := t.Int64()
		if err != nil {
			return nil, err
		}
		out := make([]int, len(v))
		for i, x := range v {
			if x < int64(lo) || x >= int64(hi) {
				return nil, fmt.Errorf("tensor %s: element %d is %d, outside [%d, %d)", name, i, x, lo, hi)
			}
			out[i] = int(x)
		}
		return out, nil
	}

	// Momentum buffers exist from the first step on, when there is momentum.
	wantMomentum := tr.iteration > 0 && tr.cfg.Momentum > 0
	for _, p := range tr.Model.Params() {
		shape := []int{p.Var.Value.Rows, p.Var.Value.Cols}
		if err := readFloats("param/"+p.Name, shape, p.Var.Value.Data); err != nil {
			return err
		}
		p.Var.Changed()
		var momentum *tensor.Matrix
		for _, prefix := range []string{"momentum/", "separator_momentum/"} { // the second in format 1 only
			if !has[prefix+p.Name] {
				continue
			}
			buf := tensor.New(shape[0], shape[1])
			if err := readFloats(prefix+p.Name, shape, buf.Data); err != nil {
				return err
			}
			if momentum == nil {
				momentum = buf
			} else {
				tensor.Add(momentum, momentum, buf)
			}
		}
		switch {
		case wantMomentum && momentum == nil:
			return fmt.Errorf("tensor momentum/%s is missing (a run past its first iteration has one)", p.Name)
		case !wantMomentum && momentum != nil:
			return fmt.Errorf("tensor momentum/%s is present, but a run before its first iteration with momentum %g has none", p.Name, tr.cfg.Momentum)
		}
		if momentum != nil {
			tr.optimizer.SetMomentumBuffer(p.Var, momentum)
		}
	}

	bn := tr.Model.BottleneckNorm
	b := len(bn.RunningMean)
	if err := readFloats("bottleneck_norm.running_mean", []int{1, b}, bn.RunningMean); err != nil {
		return err
	}
	if err := readFloats("bottleneck_norm.running_var", []int{1, b}, bn.RunningVar); err != nil {
		return err
	}
	if err := checkVariances(bn.RunningVar); err != nil {
		return fmt.Errorf("tensor bottleneck_norm.running_var: %w", err)
	}
	if err := readFloats("class_prior", []int{1, len(tr.prior)}, tr.prior); err != nil {
		return err
	}
	if err := checkProbabilities(tr.prior); err != nil {
		return fmt.Errorf("tensor class_prior: %w", err)
	}

	// Pseudo-labels are set when Run starts: none before, one class per
	// target row after.
	k, nt := tr.task.Text.Rows, tr.task.TargetFeatures.Rows
	var err error
	if tr.pseudo, err = readIndices("pseudo_labels", nt, len(tr.history) == 0, 0, k); err != nil {
		return err
	}
	if len(tr.history) > 0 && len(tr.pseudo) == 0 {
		return fmt.Errorf("tensor pseudo_labels is empty, want one class per target row (%d)", nt)
	}
	// A batch order is shuffled at the first draw: none before, a
	// permutation of every row after.
	for _, c := range []struct {
		name string
		s    *batchStream
	}{{"source_batches.perm", tr.sourceBatches}, {"target_batches.perm", tr.targetBatches}} {
		if c.s.perm, err = readIndices(c.name, c.s.n, true, 0, c.s.n); err != nil {
			return err
		}
		if err := checkPermutation(c.s.perm, c.s.n, tr.iteration > 0); err != nil {
			return fmt.Errorf("tensor %s: %w", c.name, err)
		}
	}
	return nil
}

// checkFinite requires every value of the tensor named name to be finite:
// weights and statistics of a trainer that ran are.
func checkFinite(name string, values []float32) error {
	for i, v := range values {
		if !isFinite(float64(v)) {
			return fmt.Errorf("tensor %s: element %d is %g, want a finite number", name, i, v)
		}
	}
	return nil
}

// checkVariances requires running variances to be non-negative.
func checkVariances(v []float32) error {
	if i := slices.IndexFunc(v, func(x float32) bool { return x < 0 }); i >= 0 {
		return fmt.Errorf("element %d is %g, a variance cannot be negative", i, v[i])
	}
	return nil
}

// checkProbabilities requires p to be a probability vector: every value in
// [0, 1] and a sum of 1 up to the rounding a float32 moving average gathers
// (far below the 1% allowed).
func checkProbabilities(p []float32) error {
	var sum float64
	for i, v := range p {
		if !(v >= 0 && v <= 1) {
			return fmt.Errorf("element %d is %g, not a probability", i, v)
		}
		sum += float64(v)
	}
	if math.Abs(sum-1) > 1e-2 {
		return fmt.Errorf("the values sum to %.6g, not 1", sum)
	}
	return nil
}

// checkPermutation requires perm, whose values are already in [0, n), to
// hold each of them once, or to be empty when drawn is false (no batch
// drawn yet).
func checkPermutation(perm []int, n int, drawn bool) error {
	if !drawn {
		if len(perm) != 0 {
			return fmt.Errorf("holds %d values before the first batch was drawn, want none", len(perm))
		}
		return nil
	}
	if len(perm) != n {
		return fmt.Errorf("holds %d values, want a permutation of %d rows", len(perm), n)
	}
	seen := make([]bool, n)
	for i, v := range perm {
		if seen[v] {
			return fmt.Errorf("element %d repeats row %d: not a permutation", i, v)
		}
		seen[v] = true
	}
	return nil
}

// checkData requires the task's data to be the data the checkpoint was
// saved with, part by part; a checkpoint without fingerprints (written
// before unimos recorded them) cannot be checked and passes.
func (tr *Trainer) checkData(meta map[string]string) error {
	if !HasDataFingerprint(meta) {
		return nil
	}
	now := tr.dataFingerprint()
	var changed []string
	for _, part := range dataParts {
		if meta[dataFingerprintKey(part.key)] != now[part.key] {
			changed = append(changed, part.what)
		}
	}
	if len(changed) > 0 {
		return fmt.Errorf("the data changed since the run was saved: %s differ (SHA-256); continuing would train one run on two datasets. Restore the store as it was, or start a new run",
			strings.Join(changed, " and "))
	}
	return nil
}
