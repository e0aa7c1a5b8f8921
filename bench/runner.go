package bench

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/unimos/unimos/baseline"
	"github.com/unimos/unimos/eval"
	"github.com/unimos/unimos/features"
	"github.com/unimos/unimos/internal/regularfile"
	"github.com/unimos/unimos/internal/shard"
	"github.com/unimos/unimos/internal/words"
	"github.com/unimos/unimos/tensor"
	"github.com/unimos/unimos/unimos"
)

// Methods a bench can run.
const (
	// ZeroShot is CLIP zero-shot classification of the target; it depends
	// on neither the source nor the seed, so it runs once per task.
	ZeroShot = "zeroshot"
	// SourceOnly is a linear probe trained on the labelled source.
	SourceOnly = "source-only"
	// UniMoS is the method itself, with the protocol's preset (or
	// Options.Preset).
	UniMoS = "unimos"
)

// ErrStopped is returned by Execute when Options.Stop stopped the bench.
var ErrStopped = errors.New("bench stopped")

// MethodNames lists the methods in report order.
func MethodNames() []string { return []string{ZeroShot, SourceOnly, UniMoS} }

// Files of a bench directory.
const (
	RunsDir       = "runs"
	StoreFile     = "store.json"     // per protocol: the dataset its runs were made on
	ConfusionFile = "confusion.json" // per run: the final predictions' confusion matrix
	ReportFile    = "report.md"
	ResultsCSV    = "results.csv"
	ResultsJSON   = "results.json"
	PlotsDir      = "plots"
)

// Options say what a bench runs and where it keeps the runs.
type Options struct {
	Protocol Protocol
	Tasks    []Task   // nil: every task of the protocol
	Seeds    []uint64 // nil: 2023, the reference code's seed
	Methods  []string // nil: every method
	// Preset, when set, names the unimos.Preset of the UniMoS runs
	// instead of the protocol's.
	Preset string
	// Epochs, when positive, replaces the preset's number of UniMoS
	// epochs (for quick runs).
	Epochs int
	// Batch, when positive, replaces the preset's UniMoS batch size (source
	// and target rows per iteration, each), for domains smaller than it.
	Batch int
	Out   string // the bench directory
	// Shard, when its Count is positive, makes only that shard of the runs:
	// the runs, in the order Execute lists them (methods, then tasks, then
	// seeds), are dealt out round-robin, so that every shard gets a share
	// of the slow UniMoS runs. Shards may share Out, each run being its own
	// directory, or use one each; WriteReport joins them.
	Shard shard.Shard
	// Jobs is how many runs are made at once (below 1: one). Every run is
	// single-threaded whatever Jobs is (see Execute), so two jobs keep two
	// cores busy, and a run's result does not depend on Jobs.
	Jobs int

	// Stop, when set, is asked before each run and between the iterations
	// of a UniMoS run whether to stop (on SIGINT, say). A UniMoS run
	// stopped midway leaves its checkpoint in its scratch directory, and
	// the next bench into the same Out continues it from there, reaching
	// the result an uninterrupted run would have; Execute then returns an
	// error wrapping ErrStopped. With Jobs > 1 it is asked from several
	// goroutines at once, and every run in progress stops.
	Stop func() bool
	// CheckpointEvery > 0 also saves a UniMoS run's checkpoint after every
	// that many epochs, so that a crash loses little of the run.
	CheckpointEvery int

	// OnStart, when set, is called before each run (index i of n) and
	// returns the options that observe its training: OnIteration and
	// OnEpoch (Stop, CheckpointEvery and Resume are the bench's). It is
	// called in run order, never concurrently; with Jobs > 1 the observers
	// it returns are called from the runs' goroutines, concurrently.
	OnStart func(r Run, i, n int) unimos.RunOptions
	// OnEnd, when set, is called after each run, finished, skipped or
	// failed: in run order and never concurrently, so that what it prints
	// is the same whatever Jobs is (with Jobs > 1 a run that ends before an
	// earlier one waits for it to be reported).
	OnEnd func(Outcome)
}

// Run is one (method, task, seed) of a bench.
type Run struct {
	Protocol Protocol // its Preset is the one the bench uses
	Method   string
	Task     Task
	Seed     uint64 // unused by ZeroShot
	Dir      string // where the run is kept
	// Config is UniMoS's configuration: the bench's preset with the run's
	// seed and the bench's epochs and batch size; zero for the baselines.
	Config unimos.Config
}

// Name is a one-line description, e.g. "unimos A->C seed 2023".
func (r Run) Name() string {
	s := r.Method + " " + r.Protocol.TaskName(r.Task)
	if r.Method != ZeroShot {
		s += fmt.Sprintf(" seed %d", r.Seed)
	}
	return s
}

// Outcome is what became of a run.
type Outcome struct {
	Run     Run
	Index   int            // the run's place in the bench, from 0 (the i of OnStart)
	Result  *unimos.Result // nil when the run failed
	Skipped bool           // finished by an earlier bench
	Resumed bool           // continued from the checkpoint of an interrupted bench
	Err     error          // unimos.ErrStopped when Options.Stop stopped it
}

// Execute runs every (method, task, seed) of opts on the store that is not
// already finished in opts.Out, opts.Jobs at a time, each on one thread
// (tensor.SetThreads(1) while Execute runs; the limit is restored when it
// returns), so that a run's result is the same bit for bit whatever Jobs
// is, on either GEMM backend. A run that fails is reported through OnEnd
// and the others go on; the error returned names how many failed. Runs are
// written to a scratch directory and moved into place when complete, so an
// interrupted bench leaves no half-finished run where a finished one
// belongs; a stopped UniMoS run's scratch directory keeps its checkpoint
// for the next bench (see Options.Stop).
func Execute(store *features.Store, opts Options) ([]Outcome, error) {
	p := opts.Protocol
	if opts.Preset != "" {
		p.Preset = opts.Preset
	}
	if _, err := unimos.Preset(p.Preset); err != nil {
		return nil, err
	}
	tasks := orDefault(opts.Tasks, p.Tasks)
	seeds := orDefault(opts.Seeds, []uint64{2023})
	methods := orDefault(opts.Methods, MethodNames())
	for _, m := range methods {
		if !slices.Contains(MethodNames(), m) {
			return nil, fmt.Errorf("unknown method %q (choose from %s)", m, strings.Join(MethodNames(), ", "))
		}
	}
	for _, t := range tasks {
		if !slices.Contains(p.Tasks, t) {
			return nil, fmt.Errorf("protocol %s has no task %s->%s", p.Name, t.Source, t.Target)
		}
	}
	if opts.Out == "" {
		return nil, fmt.Errorf("no bench directory given")
	}
	if err := p.CheckStore(store, tasks); err != nil {
		return nil, err
	}
	if err := claimProtocolDir(filepath.Join(opts.Out, RunsDir, p.Name), store); err != nil {
		return nil, err
	}

	var runs []Run
	for _, m := range methods {
		for _, t := range tasks {
			for i, seed := range seeds {
				if m == ZeroShot && i > 0 {
					break
				}
				r := Run{Protocol: p, Method: m, Task: t, Seed: seed, Dir: runDir(opts.Out, p, m, t, seed)}
				var err error
				if r.Config, err = runConfig(r, opts); err != nil {
					return nil, err
				}
				runs = append(runs, r)
			}
		}
	}
	if opts.Shard.Count > 0 {
		if err := opts.Shard.Validate(); err != nil {
			return nil, err
		}
		runs = shardOf(runs, opts.Shard)
	}
	// Every run is single-threaded, whatever opts.Jobs is: OpenBLAS sums a
	// product with a long inner dimension (a criterion's Pᵀ·P over the
	// target's rows) in an order that depends on its thread count, which is
	// global to the process, so runs made side by side and a run made
	// alone agree bit for bit only when every run uses one thread. (The Go
	// backend's results do not depend on the thread count.)
	threads := tensor.Threads()
	tensor.SetThreads(1)
	defer tensor.SetThreads(threads)
	return runAll(store, runs, opts)
}

// runAll makes the runs on opts.Jobs goroutines, which take them in order,
// and returns the outcomes of the runs started, in run order: all of them
// unless the bench was stopped, and then the first ones, since runs start
// in order.
func runAll(store *features.Store, runs []Run, opts Options) ([]Outcome, error) {
	var (
		mu       sync.Mutex // guards everything below, and serialises OnStart and OnEnd
		outcomes = make([]Outcome, len(runs))
		ended    = make([]bool, len(runs))
		started  int  // runs handed to a worker
		reported int  // runs passed to OnEnd
		halted   bool // stopped: start no more runs
	)
	// next hands out the next run to make, or false when none is left or
	// the bench is stopping.
	next := func() (Run, int, unimos.RunOptions, bool) {
		mu.Lock()
		defer mu.Unlock()
		if halted || started == len(runs) {
			return Run{}, 0, unimos.RunOptions{}, false
		}
		if opts.Stop != nil && opts.Stop() {
			halted = true
			return Run{}, 0, unimos.RunOptions{}, false
		}
		i := started
		started++
		var observe unimos.RunOptions
		if opts.OnStart != nil {
			observe = opts.OnStart(runs[i], i, len(runs))
		}
		observe.Stop, observe.CheckpointEvery = opts.Stop, opts.CheckpointEvery
		return runs[i], i, observe, true
	}
	// end records an outcome and reports, in run order, every outcome
	// whose earlier runs have all been reported.
	end := func(o Outcome) {
		mu.Lock()
		defer mu.Unlock()
		outcomes[o.Index], ended[o.Index] = o, true
		if errors.Is(o.Err, unimos.ErrStopped) {
			halted = true
		}
		for ; reported < started && ended[reported]; reported++ {
			if opts.OnEnd != nil {
				opts.OnEnd(outcomes[reported])
			}
		}
	}
	var workers sync.WaitGroup
	for range min(max(opts.Jobs, 1), len(runs)) {
		workers.Go(func() {
			for {
				r, i, observe, ok := next()
				if !ok {
					return
				}
				o := execute(store, r, observe)
				o.Index = i
				end(o)
			}
		})
	}
	workers.Wait()

	outcomes = outcomes[:started]
	failed, finished := 0, 0
	for _, o := range outcomes {
		switch {
		case o.Err == nil:
			finished++
		case !errors.Is(o.Err, unimos.ErrStopped):
			failed++
		}
	}
	if halted {
		return outcomes, fmt.Errorf("%w: %d of %s finished", ErrStopped, finished, words.Count(len(runs), "run"))
	}
	if failed > 0 {
		return outcomes, fmt.Errorf("%d of %s failed", failed, words.Count(len(runs), "run"))
	}
	return outcomes, nil
}

// shardOf returns the runs of shard s: every Count-th, from the Index-th.
func shardOf(runs []Run, s shard.Shard) []Run {
	var mine []Run
	for i, r := range runs {
		if i%s.Count == s.Index {
			mine = append(mine, r)
		}
	}
	return mine
}

func orDefault[T any](v, fallback []T) []T {
	if len(v) == 0 {
		return fallback
	}
	return v
}

// runDir is BENCH/runs/<protocol>/<method>/<Source>_to_<Target>[/seed-<n>].
func runDir(out string, p Protocol, method string, t Task, seed uint64) string {
	dir := filepath.Join(out, RunsDir, p.Name, method, t.Source+"_to_"+t.Target)
	if method == ZeroShot {
		return dir
	}
	return filepath.Join(dir, fmt.Sprintf("seed-%d", seed))
}

// storeRecord is BENCH/runs/<protocol>/store.json: the dataset the
// protocol's runs were made on, so that a later bench does not mix stores.
type storeRecord struct {
	Dir     string           `json:"dir"`
	Dataset features.Dataset `json:"dataset"`
}

// claimProtocolDir records the store in dir, or checks that the runs
// already there were made on the same dataset (name, backbone, dimension
// and classes).
func claimProtocolDir(dir string, store *features.Store) error {
	path := filepath.Join(dir, StoreFile)
	raw, err := regularfile.ReadFile(path, "a JSON file", maxStoreRecordBytes)
	if errors.Is(err, fs.ErrNotExist) {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return fmt.Errorf("creating the bench directory: %w", err)
		}
		return unimos.WriteJSON(path, storeRecord{Dir: store.Dir, Dataset: store.Meta})
	}
	if err != nil {
		return fmt.Errorf("reading the bench directory: %w", err)
	}
	var rec storeRecord
	if err := json.Unmarshal(raw, &rec); err != nil {
		return fmt.Errorf("%s: invalid JSON: %w", path, err)
	}
	a, b := rec.Dataset, store.Meta
	if !sameDataset(a, b) {
		return fmt.Errorf("%s holds runs made on dataset %q (%s, dim %d, %d classes, store %s), not on %q (%s, dim %d, %d classes, store %s): bench into another --out",
			filepath.Dir(path), a.Name, a.Backbone, a.Dim, len(a.Classes), rec.Dir, b.Name, b.Backbone, b.Dim, len(b.Classes), store.Dir)
	}
	return nil
}

// sameDataset reports whether runs made on a and b may be reported
// together: the same name, backbone, dimension and classes.
func sameDataset(a, b features.Dataset) bool {
	return a.Name == b.Name && a.Backbone == b.Backbone && a.Dim == b.Dim && slices.Equal(a.Classes, b.Classes)
}

// execute makes one run, or reads it back when an earlier bench finished
// it, or continues it when an earlier bench stopped it.
func execute(store *features.Store, r Run, observe unimos.RunOptions) Outcome {
	if res, err := unimos.ReadResult(filepath.Join(r.Dir, unimos.ResultFile)); err == nil {
		if err := sameRun(res, r); err != nil {
			return Outcome{Run: r, Err: fmt.Errorf("%s: %w; remove it or bench into another --out", r.Dir, err)}
		}
		return Outcome{Run: r, Result: res, Skipped: true}
	} else if !errors.Is(err, fs.ErrNotExist) {
		return Outcome{Run: r, Err: err}
	}

	// The run is made in a scratch directory, locked so that a second bench
	// into the same --out neither clears nor writes it meanwhile, and
	// renamed into place when finished.
	scratch := r.Dir + ".partial"
	lock, err := unimos.LockRunDir(scratch)
	if err != nil {
		return Outcome{Run: r, Err: err}
	}
	defer lock.Release()
	observe.Lock = lock
	observe.Resume = resumable(scratch, r)
	if !observe.Resume {
		if err := clearRunDir(scratch); err != nil {
			return Outcome{Run: r, Err: fmt.Errorf("removing an interrupted run: %w", err)}
		}
	}
	res, err := makeRun(store, r, scratch, observe)
	if errors.Is(err, unimos.ErrStopped) {
		return Outcome{Run: r, Resumed: observe.Resume, Err: err} // the scratch directory keeps the checkpoint
	}
	if err == nil {
		if err = os.Rename(scratch, r.Dir); err == nil {
			// The lock file moved with the directory; the lock is still
			// held until Release, which finds its file gone.
			err = os.Remove(filepath.Join(r.Dir, unimos.LockFile))
		}
	}
	if err != nil {
		clearRunDir(scratch)
		return Outcome{Run: r, Err: fmt.Errorf("%s: %w", r.Name(), err)}
	}
	return Outcome{Run: r, Result: res, Resumed: observe.Resume}
}

// clearRunDir removes everything in a locked run directory but its lock
// file.
func clearRunDir(dir string) error {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return err
	}
	for _, e := range entries {
		if e.Name() == unimos.LockFile {
			continue
		}
		if err := os.RemoveAll(filepath.Join(dir, e.Name())); err != nil {
			return err
		}
	}
	return nil
}

// resumable reports whether dir holds the checkpoint of UniMoS run r,
// stopped by an earlier bench: the same task and configuration. Anything
// else there is the leftover of a killed run, to be discarded.
func resumable(dir string, r Run) bool {
	if r.Method != UniMoS {
		return false
	}
	saved, err := unimos.ReadSavedRun(filepath.Join(dir, unimos.CheckpointFile))
	if err != nil {
		return false
	}
	return saved.Source == r.Task.Source && saved.Target == r.Task.Target && reflect.DeepEqual(saved.Config, r.Config)
}

// runConfig is the UniMoS configuration of a run: the bench's preset
// (r.Protocol.Preset) with the run's seed and the epochs and batch size
// overrides of opts; zero for the baselines.
func runConfig(r Run, opts Options) (unimos.Config, error) {
	if r.Method != UniMoS {
		return unimos.Config{}, nil
	}
	cfg, err := unimos.Preset(r.Protocol.Preset)
	if err != nil {
		return cfg, err
	}
	cfg.Seed = r.Seed
	if opts.Epochs > 0 {
		cfg.Epochs = opts.Epochs
	}
	if opts.Batch > 0 {
		cfg.BatchSize = opts.Batch
	}
	return cfg, cfg.Validate()
}

// sameRun checks that a finished run is the one asked for.
func sameRun(res *unimos.Result, r Run) error {
	cfg := r.Config
	switch {
	case res.Method != r.Method || res.Source != r.Task.Source || res.Target != r.Task.Target:
		return fmt.Errorf("holds a %s run of %s, not %s", res.Method, res.Task, r.Name())
	case r.Method != ZeroShot && res.Seed != r.Seed:
		return fmt.Errorf("holds seed %d, not %d", res.Seed, r.Seed)
	case r.Method == UniMoS && !reflect.DeepEqual(res.Config, cfg):
		return fmt.Errorf("was trained with another configuration (%s, batch %d, preset %s) than this bench asks for (%s, batch %d, preset %s)",
			words.Count(res.Config.Epochs, "epoch"), res.Config.BatchSize, res.Config.Preset, words.Count(cfg.Epochs, "epoch"), cfg.BatchSize, cfg.Preset)
	}
	return nil
}

// makeRun runs r into dir: result.json, predictions.csv and the confusion
// matrix (and the model, for UniMoS).
func makeRun(store *features.Store, r Run, dir string, observe unimos.RunOptions) (*unimos.Result, error) {
	tgt, err := store.Domain(r.Task.Target)
	if err != nil {
		return nil, err
	}
	if !eval.HasLabels(tgt.Labels) {
		return nil, fmt.Errorf("target domain %s has no labels: a bench needs them to score the runs", r.Task.Target)
	}
	var res *unimos.Result
	var final unimos.Evaluation
	switch r.Method {
	case UniMoS:
		res, err = unimos.AdaptStore(store, r.Task.Source, r.Task.Target, r.Config, dir, observe)
		if err != nil {
			return nil, err
		}
		final = res.History[len(res.History)-1]
	default:
		res, final, err = runBaseline(store, r, tgt)
		if err != nil {
			return nil, err
		}
		if err := unimos.WriteResult(filepath.Join(dir, unimos.ResultFile), res); err != nil {
			return nil, err
		}
		if err := unimos.WritePredictions(filepath.Join(dir, unimos.PredictionsFile), final, store.Meta.Classes, tgt.Paths); err != nil {
			return nil, err
		}
	}
	confusion := newConfusion(store.Meta.Classes, final.Predictions, tgt.Labels)
	return res, unimos.WriteJSON(filepath.Join(dir, ConfusionFile), confusion)
}

// runBaseline scores CLIP zero-shot or the source-only probe on the target
// and returns the result (in the form UniMoS runs have, without a history)
// and the predictions.
func runBaseline(store *features.Store, r Run, tgt *features.Domain) (*unimos.Result, unimos.Evaluation, error) {
	start := time.Now()
	var preds []baseline.Prediction
	res := &unimos.Result{
		Task: r.Task.Source + "->" + r.Task.Target, Source: r.Task.Source, Target: r.Task.Target,
		Method: r.Method, Preset: r.Protocol.Preset,
	}
	switch r.Method {
	case ZeroShot:
		text, err := store.Text(r.Task.Target)
		if err != nil {
			return nil, unimos.Evaluation{}, err
		}
		if preds, err = baseline.ZeroShot(tgt.Features, text); err != nil {
			return nil, unimos.Evaluation{}, err
		}
	case SourceOnly:
		src, err := store.Domain(r.Task.Source)
		if err != nil {
			return nil, unimos.Evaluation{}, err
		}
		cfg := baseline.DefaultProbeConfig()
		cfg.Seed = r.Seed
		probe, err := baseline.TrainProbe(src.Features, src.Labels, len(store.Meta.Classes), cfg)
		if err != nil {
			return nil, unimos.Evaluation{}, fmt.Errorf("source %s: %w", r.Task.Source, err)
		}
		preds = baseline.Predict(probe.Logits(tgt.Features))
		res.Seed, res.Epochs = r.Seed, cfg.Epochs
	}
	e := unimos.Evaluation{Predictions: baseline.Classes(preds), Confidences: make([]float32, len(preds))}
	for i, p := range preds {
		e.Confidences[i] = p.Confidence
	}
	m, err := eval.Evaluate(e.Predictions, tgt.Labels, len(store.Meta.Classes))
	if err != nil {
		return nil, e, fmt.Errorf("target %s: %w", r.Task.Target, err)
	}
	res.Final = &unimos.FinalScore{Score: unimos.Score{Accuracy: m.Accuracy, MeanClassAccuracy: m.MeanClassAccuracy}}
	for _, c := range m.PerClass {
		res.Final.PerClass = append(res.Final.PerClass, c.Accuracy)
	}
	res.TrainSeconds = time.Since(start).Seconds()
	return res, e, nil
}

// Confusion counts a run's final predictions by true class (rows) and
// predicted class (columns), over the labelled target rows.
type Confusion struct {
	Classes []string `json:"classes"`
	Counts  [][]int  `json:"counts"` // [K true][K predicted]
}

func newConfusion(classes []string, pred, labels []int) Confusion {
	c := Confusion{Classes: classes, Counts: make([][]int, len(classes))}
	for i := range c.Counts {
		c.Counts[i] = make([]int, len(classes))
	}
	for i, y := range labels {
		if y >= 0 {
			c.Counts[y][pred[i]]++
		}
	}
	return c
}
