package bench

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/unimos/unimos/internal/regularfile"
	"github.com/unimos/unimos/unimos"
)

// record is a finished run read back from a bench directory.
type record struct {
	method    string
	task      Task
	seed      uint64
	dir       string         // relative to the bench directory
	result    *unimos.Result // result.json, epochs counted as unimos.Evaluation counts them
	confusion *Confusion     // nil when the run has none
}

// protocolRuns are the finished runs of one protocol in a bench directory.
type protocolRuns struct {
	protocol Protocol
	store    storeRecord
	records  []record // by method, task, then seed
}

// loadBench reads every finished run under out/runs and under the runs
// folder of each bench directory in from (the shards of a bench, say),
// protocol by protocol in ProtocolNames order; protocols without runs are
// left out. A folder given twice is read once; a run finished in two
// folders, or a protocol whose folders were made on different datasets,
// is an error.
func loadBench(out string, from []string) ([]protocolRuns, error) {
	dirs := distinctFolders(append([]string{out}, from...))
	var all []protocolRuns
	for _, name := range ProtocolNames() {
		var pr protocolRuns
		var have []string // the folders with runs of this protocol
		for _, dir := range dirs {
			rec, ok, err := readStoreRecord(filepath.Join(dir, RunsDir, name, StoreFile))
			if err != nil {
				return nil, err
			}
			if !ok {
				continue
			}
			if len(have) == 0 {
				pr.store = rec
			} else if !sameDataset(pr.store.Dataset, rec.Dataset) {
				return nil, fmt.Errorf("%s and %s hold %s runs made on different datasets (%q, %s, %d classes vs %q, %s, %d classes): report them apart",
					have[0], dir, name, pr.store.Dataset.Name, pr.store.Dataset.Backbone, len(pr.store.Dataset.Classes),
					rec.Dataset.Name, rec.Dataset.Backbone, len(rec.Dataset.Classes))
			}
			have = append(have, dir)
		}
		if len(have) == 0 {
			continue
		}
		// The pairs protocol's domains are those of the store its runs were
		// made on (tasks without runs stay out of the report, as in every
		// protocol).
		var err error
		if name == Pairs {
			pr.protocol = pairsProtocol(pr.store.Dataset, nil)
		} else if pr.protocol, err = ProtocolByName(name); err != nil {
			return nil, err
		}
		for _, m := range MethodNames() {
			for _, t := range pr.protocol.Tasks {
				var recs []record
				for _, dir := range have {
					more, err := loadTask(out, dir, pr.protocol, m, t)
					if err != nil {
						return nil, err
					}
					recs = append(recs, more...)
				}
				slices.SortStableFunc(recs, func(a, b record) int { return compareUint(a.seed, b.seed) })
				for i := 1; i < len(recs); i++ {
					if a, b := recs[i-1], recs[i]; m == ZeroShot || a.seed == b.seed {
						return nil, fmt.Errorf("the run %s %s is finished in both %s and %s: report from one of them, or remove one",
							m, pr.protocol.TaskName(t), filepath.Join(out, a.dir), filepath.Join(out, b.dir))
					}
				}
				pr.records = append(pr.records, recs...)
			}
		}
		if len(pr.records) > 0 {
			all = append(all, pr)
		}
	}
	return all, nil
}

// distinctFolders returns dirs without the repeats of a folder, however
// spelt (os.SameFile); folders that do not exist are kept, to be found
// empty.
func distinctFolders(dirs []string) []string {
	var out []string
	var seen []os.FileInfo
	for _, d := range dirs {
		fi, err := os.Stat(d)
		if err == nil && slices.ContainsFunc(seen, func(s os.FileInfo) bool { return os.SameFile(s, fi) }) {
			continue
		}
		if err == nil {
			seen = append(seen, fi)
		}
		out = append(out, d)
	}
	return out
}

// Bounds on the bench directory's JSON files, which are read whole: a
// store.json holds a dataset description (as a store's dataset.json, a few
// kilobytes), a confusion.json a matrix of classes × classes counts (about
// a megabyte for 345 classes).
const (
	maxStoreRecordBytes = 16 << 20
	maxConfusionBytes   = 64 << 20
)

// readStoreRecord reads a protocol's store.json; ok is false when there is
// none.
func readStoreRecord(path string) (rec storeRecord, ok bool, err error) {
	raw, err := regularfile.ReadFile(path, "a JSON file", maxStoreRecordBytes)
	if errors.Is(err, fs.ErrNotExist) {
		return rec, false, nil
	}
	if err != nil {
		return rec, false, fmt.Errorf("reading the bench directory: %w", err)
	}
	if err := json.Unmarshal(raw, &rec); err != nil {
		return rec, false, fmt.Errorf("%s: invalid JSON: %w", path, err)
	}
	return rec, true, nil
}

// loadTask reads the finished runs of one method on one task in the bench
// directory dir, in seed order; their dir fields are relative to out, the
// folder of the report.
func loadTask(out, dir string, p Protocol, method string, t Task) ([]record, error) {
	dirs := []string{runDir(dir, p, method, t, 0)}
	if method != ZeroShot {
		dirs, _ = filepath.Glob(filepath.Join(filepath.Dir(dirs[0]), "seed-*"))
	}
	var recs []record
	for _, run := range dirs {
		if strings.HasSuffix(run, ".partial") {
			continue
		}
		res, err := unimos.ReadResult(filepath.Join(run, unimos.ResultFile))
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, err
		}
		rec := record{method: method, task: t, result: res}
		if rec.result.Final == nil {
			return nil, fmt.Errorf("%s: the run has no scores (its target has no labels)", run)
		}
		rec.seed = rec.result.Seed
		rec.dir = relativeTo(out, run)
		if rec.confusion, err = readConfusion(filepath.Join(run, ConfusionFile)); err != nil {
			return nil, err
		}
		recs = append(recs, rec)
	}
	slices.SortFunc(recs, func(a, b record) int { return compareUint(a.seed, b.seed) })
	return recs, nil
}

// readConfusion reads a run's confusion.json, or returns nil when there is
// none: the plots leave such runs out.
func readConfusion(path string) (*Confusion, error) {
	raw, err := regularfile.ReadFile(path, "a JSON file", maxConfusionBytes)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading the bench directory: %w", err)
	}
	c := new(Confusion)
	if err := json.Unmarshal(raw, c); err != nil {
		return nil, fmt.Errorf("%s: invalid JSON: %w", path, err)
	}
	return c, nil
}

// relativeTo returns path relative to base, through absolute paths when
// one is relative and the other not; path itself when there is no such
// relative path.
func relativeTo(base, path string) string {
	if rel, err := filepath.Rel(base, path); err == nil {
		return rel
	}
	absBase, err1 := filepath.Abs(base)
	absPath, err2 := filepath.Abs(path)
	if err1 == nil && err2 == nil {
		if rel, err := filepath.Rel(absBase, absPath); err == nil {
			return rel
		}
	}
	return path
}

func compareUint(a, b uint64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// of returns the records of one method.
func (pr protocolRuns) of(method string) []record {
	var out []record
	for _, r := range pr.records {
		if r.method == method {
			out = append(out, r)
		}
	}
	return out
}

// tasks are the protocol's tasks that have at least one run, in order.
func (pr protocolRuns) tasks() []Task {
	var out []Task
	for _, t := range pr.protocol.Tasks {
		if slices.ContainsFunc(pr.records, func(r record) bool { return r.task == t }) {
			out = append(out, t)
		}
	}
	return out
}

// Headline is the protocol's number for a score: mean class accuracy for
// VisDA-2017, accuracy otherwise.
func (p Protocol) Headline(s unimos.Score) float64 {
	if p.MeanClass {
		return s.MeanClassAccuracy
	}
	return s.Accuracy
}

// epochHeadline is the headline number of one test of a run's history.
func (p Protocol) epochHeadline(e unimos.Evaluation) float64 {
	v := e.Accuracy
	if p.MeanClass {
		v = e.MeanClassAccuracy
	}
	if v == nil {
		return math.NaN()
	}
	return *v
}

// Selections of an epoch from a UniMoS run's history.
const (
	selectLast   = "last"   // the last epoch: the headline
	selectOracle = "oracle" // the best epoch by target labels
	// selectTemporalEnsemble is the temporal ensemble's prediction, not an
	// epoch: only picked and the report know it.
	selectTemporalEnsemble = "temporal-ensemble"
)

// selectEpoch returns the index in the history of the epoch a rule
// picks: selectLast, selectOracle (the latest of equal bests, as the
// reference) or a label-free criterion's name; −1 when none.
func (p Protocol) selectEpoch(h []unimos.Evaluation, rule string) int {
	switch rule {
	case selectLast:
		return len(h) - 1
	case selectOracle:
		best := -1
		for i, e := range h {
			if v := p.epochHeadline(e); best < 0 || v >= p.epochHeadline(h[best]) {
				best = i
			}
		}
		return best
	}
	c, err := unimos.CriterionByName(rule)
	if err != nil {
		panic(err) // rules are checked where they enter
	}
	return c.Select(h)
}

// Oracle returns the best headline number of a UniMoS run's history and
// the epoch when it was reached (epochs trained, 0: before training), the
// selection with target labels that the reference code reports.
func (p Protocol) Oracle(h []unimos.Evaluation) (value float64, epoch int) {
	i := p.selectEpoch(h, selectOracle)
	if i < 0 {
		return math.NaN(), 0
	}
	return p.epochHeadline(h[i]), h[i].Epoch
}

// picked returns the headline number and the epoch (epochs trained) that a
// rule picks from a UniMoS run.
func (p Protocol) picked(r record, rule string) (value float64, epoch int, ok bool) {
	if rule == selectTemporalEnsemble {
		te := r.result.TemporalEnsemble
		if te == nil || te.Score == nil {
			return 0, 0, false
		}
		return p.Headline(*te.Score), te.Epochs, true
	}
	h := r.result.History
	i := p.selectEpoch(h, rule)
	if i < 0 {
		return 0, 0, false
	}
	v := p.epochHeadline(h[i])
	return v, h[i].Epoch, !math.IsNaN(v)
}

// meanStd returns the mean and the sample standard deviation (0 for one value).
func meanStd(v []float64) (mean, std float64) {
	for _, x := range v {
		mean += x
	}
	mean /= float64(len(v))
	if len(v) < 2 {
		return mean, 0
	}
	var ss float64
	for _, x := range v {
		ss += (x - mean) * (x - mean)
	}
	return mean, math.Sqrt(ss / float64(len(v)-1))
}
