package unimos

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"strconv"

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

// CheckpointMetadata returns a checkpoint's metadata (the configuration
// under "config" and what the caller stored with it), to rebuild the task
// before ResumeTrainer.
func CheckpointMetadata(path string) (map[string]string, error) {
	f, err := safetensors.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	meta := f.Metadata()
	switch meta["format"] {
	case checkpointFormat, checkpointFormatV2, checkpointFormatV1:
	default:
		return nil, fmt.Errorf("%s is not a unimos checkpoint (format %q)", path, meta["format"])
	}
	return meta, nil
}

// ResumeTrainer rebuilds the trainer saved in the checkpoint at path for
// the same task; its Run continues where the saved one stopped and reaches
// the same result, bit for bit, as a run that never stopped.
func ResumeTrainer(path string, task Task) (*Trainer, error) {
	meta, err := CheckpointMetadata(path)
	if err != nil {
		return nil, err
	}
	var cfg Config
	if err := json.Unmarshal([]byte(meta["config"]), &cfg); err != nil {
		return nil, fmt.Errorf("checkpoint %s: configuration: %w", path, err)
	}
	tr, err := NewTrainer(cfg, task)
	if err != nil {
		return nil, fmt.Errorf("checkpoint %s: %w", path, err)
	}
	if err := tr.restore(path, meta); err != nil {
		return nil, fmt.Errorf("checkpoint %s: %w", path, err)
	}
	return tr, nil
}

// restore loads the state saved by SaveCheckpoint into a new trainer.
func (tr *Trainer) restore(path string, meta map[string]string) error {
	ints := map[string]*int{
		"iteration": &tr.iteration, "epoch": &tr.epoch, "epoch_iteration": &tr.epochIteration,
		"source_batches.next": &tr.sourceBatches.next, "target_batches.next": &tr.targetBatches.next,
	}
	for name, dst := range ints {
		n, err := strconv.Atoi(meta[name])
		if err != nil {
			return fmt.Errorf("metadata %s: %w", name, err)
		}
		*dst = n
	}
	for name, rows := range map[string]int{"source_rows": tr.task.sourceRows(), "target_rows": tr.task.TargetFeatures.Rows} {
		if meta[name] != strconv.Itoa(rows) {
			return fmt.Errorf("saved for %s %s, but the task has %d", name, meta[name], rows)
		}
	}
	var err error
	if tr.lossSum, err = strconv.ParseFloat(meta["loss_sum"], 64); err != nil {
		return fmt.Errorf("metadata loss_sum: %w", err)
	}
	if tr.weightSum, err = strconv.ParseFloat(meta["weight_sum"], 64); err != nil {
		return fmt.Errorf("metadata weight_sum: %w", err)
	}
	if err := json.Unmarshal([]byte(meta["history"]), &tr.history); err != nil {
		return fmt.Errorf("metadata history: %w", err)
	}
	if meta["format"] != checkpointFormat {
		countEpochsTrained(tr.history)
	}
	for name, rng := range tr.streams() {
		state, err := base64.StdEncoding.DecodeString(meta["rng."+name])
		if err != nil {
			return fmt.Errorf("metadata rng.%s: %w", name, err)
		}
		if err := rng.UnmarshalBinary(state); err != nil {
			return err
		}
	}

	f, err := safetensors.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	readFloats := func(name string, dst []float32) error {
		t, err := f.Tensor(name)
		if err != nil {
			return err
		}
		if t.NumElements() != len(dst) {
			return fmt.Errorf("%s has %d values, want %d", name, t.NumElements(), len(dst))
		}
		return t.Float32Into(dst)
	}
	readInts := func(name string) ([]int, error) {
		t, err := f.Tensor(name)
		if err != nil {
			return nil, err
		}
		v, err := t.Int64()
		out := make([]int, len(v))
		for i, x := range v {
			out[i] = int(x)
		}
		return out, err
	}
	has := map[string]bool{}
	for _, n := range f.Names() {
		has[n] = true
	}
	for _, p := range tr.Model.Params() {
		if err := readFloats("param/"+p.Name, p.Var.Value.Data); err != nil {
			return err
		}
		var momentum *tensor.Matrix
		for _, prefix := range []string{"momentum/", "separator_momentum/"} { // the second in format 1 only
			if !has[prefix+p.Name] {
				continue
			}
			buf := tensor.New(p.Var.Value.Rows, p.Var.Value.Cols)
			if err := readFloats(prefix+p.Name, buf.Data); err != nil {
				return err
			}
			if momentum == nil {
				momentum = buf
			} else {
				tensor.Add(momentum, momentum, buf)
			}
		}
		if momentum != nil {
			tr.optimizer.SetMomentumBuffer(p.Var, momentum)
		}
	}
	bn := tr.Model.BottleneckNorm
	if err := readFloats("bottleneck_norm.running_mean", bn.RunningMean); err != nil {
		return err
	}
	if err := readFloats("bottleneck_norm.running_var", bn.RunningVar); err != nil {
		return err
	}
	if err := readFloats("class_prior", tr.prior); err != nil {
		return err
	}
	if tr.pseudo, err = readInts("pseudo_labels"); err != nil {
		return err
	}
	if tr.sourceBatches.perm, err = readInts("source_batches.perm"); err != nil {
		return err
	}
	if tr.targetBatches.perm, err = readInts("target_batches.perm"); err != nil {
		return err
	}
	return nil
}
