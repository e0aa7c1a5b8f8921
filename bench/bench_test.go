package bench

import (
	"encoding/json"
	"errors"
	"fmt"
	"image/png"
	"math"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"gonum.org/v1/plot/plotter"

	"github.com/unimos/unimos/features"
	"github.com/unimos/unimos/internal/testkit"
	"github.com/unimos/unimos/synth"
	"github.com/unimos/unimos/unimos"
)

// smallStore writes a protocol-shaped synthetic store: the synth preset's
// domains and classes (at most maxClasses of them), scaled by scale, in
// dimension dim, so that a bench over it takes seconds.
func smallStore(t *testing.T, preset string, scale float64, maxClasses, dim int) *features.Store {
	t.Helper()
	p, err := synth.PresetByName(preset)
	if err != nil {
		t.Fatal(err)
	}
	p.Classes = p.Classes[:min(len(p.Classes), maxClasses)]
	p.Dim = dim
	if p, err = p.Scaled(scale); err != nil {
		t.Fatal(err)
	}
	for i := range p.Domains {
		p.Domains[i].Size = max(p.Domains[i].Size, 100) // room for a few batches of 32
	}
	dir := filepath.Join(t.TempDir(), preset)
	if err := synth.Write(dir, p, 5); err != nil {
		t.Fatal(err)
	}
	store, err := features.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	return store
}

// executed counts the runs an Execute call made (not skipped, not failed).
func executed(outcomes []Outcome) (made, skipped, failed int) {
	for _, o := range outcomes {
		switch {
		case o.Err != nil:
			failed++
		case o.Skipped:
			skipped++
		default:
			made++
		}
	}
	return made, skipped, failed
}

func TestProtocols(t *testing.T) {
	want := map[string]int{"office-home": 12, "visda": 1, "domainnet": 30, "domainnet126": 12}
	for _, p := range Protocols() {
		if len(p.Tasks) != want[p.Name] {
			t.Errorf("%s: %d tasks, want %d", p.Name, len(p.Tasks), want[p.Name])
		}
		if _, err := unimos.Preset(p.Preset); err != nil {
			t.Errorf("%s: %v", p.Name, err)
		}
		if len(p.Short) != len(p.Domains) {
			t.Errorf("%s: %d short names for %d domains", p.Name, len(p.Short), len(p.Domains))
		}
	}
	oh, _ := ProtocolByName("office-home")
	if got := oh.TaskName(oh.Tasks[0]); got != "A->C" {
		t.Errorf("first Office-Home task %q, want A->C", got)
	}
	tasks, err := oh.ParseTasks("A->C, Product→Real_World,A->C")
	if err != nil || !slices.Equal(tasks, []Task{{"Art", "Clipart"}, {"Product", "Real_World"}}) {
		t.Errorf("ParseTasks: %v, %v", tasks, err)
	}
	for _, bad := range []string{"A->A", "A->X", "AC"} {
		if _, err := oh.ParseTasks(bad); err == nil || !strings.Contains(err.Error(), "A->C, A->P") {
			t.Errorf("ParseTasks(%q): %v", bad, err)
		}
	}
	if _, err := ProtocolByName("office31"); err == nil || !strings.Contains(err.Error(), "domainnet126, pairs") {
		t.Errorf("unknown protocol: %v", err)
	}
}

// unlabel removes the label of one row of each named domain of the store.
func unlabel(t *testing.T, store *features.Store, domains ...string) {
	t.Helper()
	for _, name := range domains {
		d, err := store.Domain(name)
		if err != nil {
			t.Fatal(err)
		}
		d.Labels[0] = -1
		if err := features.WriteDomain(store.Dir, d); err != nil {
			t.Fatal(err)
		}
	}
}

// TestPairsProtocol checks the pairs protocol's tasks (every ordered pair
// of the labelled domains, in the store's order), its --tasks parsing and
// its refusal of a store with fewer than two labelled domains.
func TestPairsProtocol(t *testing.T) {
	store := smallStore(t, "tiny", 1, 8, 64) // photo, sketch, painting
	p, err := ProtocolFor(Pairs, store)
	if err != nil {
		t.Fatal(err)
	}
	all := []Task{{"photo", "sketch"}, {"photo", "painting"}, {"sketch", "photo"}, {"sketch", "painting"}, {"painting", "photo"}, {"painting", "sketch"}}
	if !slices.Equal(p.Tasks, all) || p.Preset != PairsPreset || p.TaskName(all[0]) != "photo->sketch" {
		t.Errorf("tasks %v, preset %s", p.Tasks, p.Preset)
	}

	unlabel(t, store, "sketch")
	if p, err = PairsProtocol(store); err != nil {
		t.Fatal(err)
	}
	if want := []Task{{"photo", "painting"}, {"painting", "photo"}}; !slices.Equal(p.Tasks, want) {
		t.Errorf("with sketch unlabelled: tasks %v, want %v", p.Tasks, want)
	}
	cases := []struct {
		list string
		want []Task // nil: an error containing err
		err  string
	}{
		{"", []Task{{"photo", "painting"}, {"painting", "photo"}}, ""},
		{"painting->photo, painting→photo", []Task{{"painting", "photo"}}, ""},
		{"photo->sketch", nil, `has no task "photo->sketch": domain sketch is not fully labelled (1 of 280 rows unlabelled) (tasks: photo->painting, painting->photo)`},
		{"sketch->photo", nil, "domain sketch is not fully labelled"},
		{"photo->cartoon", nil, `there is no domain "cartoon" (domains: photo, sketch, painting)`},
		{"photo->photo", nil, "the source and the target are the same domain"},
		{"photo painting", nil, "write a task as SOURCE->TARGET"},
	}
	for _, c := range cases {
		got, err := p.ParseTasks(c.list)
		if c.want != nil && (err != nil || !slices.Equal(got, c.want)) {
			t.Errorf("ParseTasks(%q): %v, %v; want %v", c.list, got, err, c.want)
		}
		if c.want == nil && (err == nil || !strings.Contains(err.Error(), c.err)) {
			t.Errorf("ParseTasks(%q): %v, want an error with %q", c.list, err, c.err)
		}
	}

	unlabel(t, store, "painting")
	_, err = PairsProtocol(store)
	if err == nil || !strings.Contains(err.Error(), "needs at least 2 fully labelled domains") ||
		!strings.Contains(err.Error(), "the store has 1 fully labelled domain (photo); not fully labelled: sketch (1 of 280 rows unlabelled), painting (1 of 240 rows unlabelled)") {
		t.Errorf("one labelled domain: %v", err)
	}
}

// TestPublishedAverages checks the transcription of the paper's tables:
// each printed average is the mean of its row's cells up to the paper's
// rounding to one decimal.
func TestPublishedAverages(t *testing.T) {
	for _, p := range Protocols() {
		for _, r := range p.Published.Rows {
			if len(r.Cells) == 0 {
				continue // Tab. 4 prints averages only
			}
			var sum float64
			for _, v := range r.Cells {
				sum += v
			}
			mean := sum / float64(len(r.Cells))
			if math.Abs(mean-r.Avg) > 0.11 {
				t.Errorf("%s %s: cells average %.3f, printed %.1f", p.Name, r.Method, mean, r.Avg)
			}
			want := len(p.Tasks)
			if p.MeanClass {
				want = len(visdaColumns)
			}
			if len(r.Cells) != want {
				t.Errorf("%s %s: %d cells, want %d", p.Name, r.Method, len(r.Cells), want)
			}
			for k := range r.Cells {
				if _, err := p.ParseTasks(k); err != nil && !p.MeanClass {
					t.Errorf("%s %s: cell %q is not a task", p.Name, r.Method, k)
				}
			}
		}
	}
}

func TestCheckStore(t *testing.T) {
	store := smallStore(t, "tiny", 1, 8, 64)
	oh, _ := ProtocolByName("office-home")
	err := oh.CheckStore(store, oh.Tasks)
	if err == nil || !strings.Contains(err.Error(), "lacks domain(s) Art, Clipart, Product, Real_World") ||
		!strings.Contains(err.Error(), "it has photo, sketch, painting") {
		t.Errorf("error %v", err)
	}
	if _, err := Execute(store, Options{Protocol: oh, Out: t.TempDir()}); err == nil {
		t.Error("Execute on a store without the protocol's domains succeeded")
	}
}

// TestBenchEveryProtocol benches each protocol on a small synthetic store
// of its shape and renders the report: tables, plots, CSV and JSON.
func TestBenchEveryProtocol(t *testing.T) {
	out := t.TempDir()
	cases := []struct {
		protocol, preset string
		scale            float64
		classes, dim     int
		tasks            string
		seeds            []uint64
		runs             int
	}{
		{"office-home", "office-home", 0.03, 65, 128, "", []uint64{7}, 36},
		{"visda", "visda", 0.003, 12, 64, "", []uint64{1, 2}, 5},
		{"domainnet", "domainnet", 0.01, 20, 96, "clp->qdr,qdr->clp,rel->skt", []uint64{7}, 9},
		{"domainnet126", "domainnet126", 0.01, 20, 96, "", []uint64{7}, 36},
	}
	for _, c := range cases {
		p, _ := ProtocolByName(c.protocol)
		tasks, err := p.ParseTasks(c.tasks)
		if err != nil {
			t.Fatal(err)
		}
		store := smallStore(t, c.preset, c.scale, c.classes, c.dim)
		outcomes, err := Execute(store, Options{Protocol: p, Tasks: tasks, Seeds: c.seeds, Epochs: 2, Out: out})
		if err != nil {
			t.Fatalf("%s: %v", c.protocol, err)
		}
		if made, _, _ := executed(outcomes); made != c.runs {
			t.Errorf("%s: %d runs made, want %d", c.protocol, made, c.runs)
		}
	}
	if err := WriteReport(out, "snd"); err != nil {
		t.Fatal(err)
	}
	report, err := os.ReadFile(filepath.Join(out, ReportFile))
	if err != nil {
		t.Fatal(err)
	}
	md := string(report)
	for _, want := range []string{
		"## Office-Home", "## VisDA-2017", "## DomainNet", "## DomainNet-126",
		"| Method | A→C | A→P |", "| Method | aeroplane | bicycle |", "| Method | clp→qdr | qdr→clp | rel→skt | Avg |",
		"**UniMoS, last epoch**", "UniMoS, oracle best epoch (target labels; not a UDA number)",
		"UniMoS, epoch picked by snd (label-free)", "***Published, authors' features***",
		"| UniMoS* — published | 59.5 | 89.4 |", "| UniMoS* (ViT-B) — published | – |",
		"### Label-free model selection", "| infomax |", "This store is synthetic",
	} {
		if !strings.Contains(md, want) {
			t.Errorf("report.md lacks %q", want)
		}
	}
	// Every linked plot exists and is a PNG.
	links := regexp.MustCompile(`\]\((plots/[^)]+\.png)\)`).FindAllStringSubmatch(md, -1)
	if len(links) != 4+3+12+1+3+12 { // bars per protocol, VisDA confusion, curves per task
		t.Errorf("%d plots linked", len(links))
	}
	for _, l := range links {
		f, err := os.Open(filepath.Join(out, l[1]))
		if err != nil {
			t.Error(err)
			continue
		}
		if _, err := png.DecodeConfig(f); err != nil {
			t.Errorf("%s: %v", l[1], err)
		}
		f.Close()
	}

	var runs []runJSON
	raw, _ := os.ReadFile(filepath.Join(out, ResultsJSON))
	if err := json.Unmarshal(raw, &runs); err != nil || len(runs) != 36+5+9+36 {
		t.Errorf("results.json: %d runs, %v", len(runs), err)
	}
	lines := testkit.ReadCSV(t, filepath.Join(out, ResultsCSV))
	// Baselines give one line each; UniMoS runs one per selection (last,
	// oracle and every criterion) and one for the temporal ensemble.
	unimosRuns := 12 + 2 + 3 + 12
	perRun := 2 + len(unimos.CriterionNames()) + 1
	if want := 1 + (36 + 5 + 9 + 36 - unimosRuns) + perRun*unimosRuns; len(lines) != want {
		t.Errorf("results.csv has %d lines, want %d", len(lines), want)
	}
}

// TestReportNumbers recomputes the VisDA-2017 rows from the runs'
// result.json files: the headline is the mean class accuracy, as mean ±
// sample std over seeds, and the oracle the best epoch by that metric.
func TestReportNumbers(t *testing.T) {
	out := t.TempDir()
	p, _ := ProtocolByName("visda")
	store := smallStore(t, "visda", 0.003, 12, 64)
	if _, err := Execute(store, Options{Protocol: p, Seeds: []uint64{3, 4}, Methods: []string{UniMoS}, Epochs: 3, Out: out}); err != nil {
		t.Fatal(err)
	}
	if err := WriteReport(out, ""); err != nil {
		t.Fatal(err)
	}
	var last, oracle, ensemble []float64
	for _, seed := range []string{"seed-3", "seed-4"} {
		raw, err := os.ReadFile(filepath.Join(out, "runs", "visda", "unimos", "synthetic_to_real", seed, unimos.ResultFile))
		if err != nil {
			t.Fatal(err)
		}
		var r unimos.Result
		if err := json.Unmarshal(raw, &r); err != nil {
			t.Fatal(err)
		}
		last = append(last, r.Final.MeanClassAccuracy)
		ensemble = append(ensemble, r.TemporalEnsemble.Score.MeanClassAccuracy-r.Final.MeanClassAccuracy)
		checkConfusion(t, filepath.Join(out, "runs", "visda", "unimos", "synthetic_to_real", seed), r.Final)
		best := math.Inf(-1)
		for _, e := range r.History {
			best = max(best, *e.MeanClassAccuracy)
		}
		oracle = append(oracle, best)
	}
	cell := func(v []float64) string {
		m := (v[0] + v[1]) / 2
		s := math.Abs(v[0]-v[1]) / math.Sqrt2 // sample std of two values
		return fmt.Sprintf("%.1f ± %.1f |\n", m, s)
	}
	md, _ := os.ReadFile(filepath.Join(out, ReportFile))
	lines := strings.Split(string(md), "\n")
	for _, want := range []struct{ row, cell string }{
		{"| **UniMoS, last epoch** |", cell(last)},
		{"| UniMoS, oracle best epoch", cell(oracle)},
	} {
		i := slices.IndexFunc(lines, func(l string) bool { return strings.HasPrefix(l, want.row) })
		if i < 0 || !strings.HasSuffix(lines[i]+"\n", want.cell) {
			t.Errorf("row %q does not end with %q", want.row, want.cell)
		}
	}
	// The selection table's temporal ensemble row: its mean and worst
	// difference to the last epoch.
	head := "| temporal ensemble (unimos's own; not an epoch) |"
	diffs := fmt.Sprintf(" | %+.2f | %+.2f | ", (ensemble[0]+ensemble[1])/2, min(ensemble[0], ensemble[1]))
	if !slices.ContainsFunc(lines, func(l string) bool { return strings.HasPrefix(l, head) && strings.Contains(l, diffs) }) {
		t.Errorf("no selection row %q with the differences %q in:\n%s", head, diffs, md)
	}
}

// checkConfusion checks a run's confusion matrix against its scores: the
// trace over the total is the accuracy, each row's diagonal share the
// class's accuracy.
func checkConfusion(t *testing.T, dir string, final *unimos.FinalScore) {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(dir, ConfusionFile))
	if err != nil {
		t.Fatal(err)
	}
	var c Confusion
	if err := json.Unmarshal(raw, &c); err != nil {
		t.Fatal(err)
	}
	trace, total := 0, 0
	for i, row := range c.Counts {
		n := 0
		for _, v := range row {
			n += v
		}
		if n > 0 && math.Abs(100*float64(row[i])/float64(n)-final.PerClass[i]) > 1e-9 {
			t.Errorf("%s: class %d: confusion gives %v%%, result.json %v%%", dir, i, 100*float64(row[i])/float64(n), final.PerClass[i])
		}
		trace += row[i]
		total += n
	}
	if math.Abs(100*float64(trace)/float64(total)-final.Accuracy) > 1e-9 {
		t.Errorf("%s: confusion gives accuracy %v%%, result.json %v%%", dir, 100*float64(trace)/float64(total), final.Accuracy)
	}
}

// TestResume reruns a bench: nothing is run again; adding a seed runs only
// the new runs; a leftover of an interrupted run is discarded; a finished
// run made with other settings is reported, not reused.
func TestResume(t *testing.T) {
	out := t.TempDir()
	p, _ := ProtocolByName("office-home")
	store := smallStore(t, "office-home", 0.03, 65, 80)
	tasks, _ := p.ParseTasks("A->C,P->R")
	opts := Options{Protocol: p, Tasks: tasks, Seeds: []uint64{1}, Epochs: 1, Out: out}
	if o, err := Execute(store, opts); err != nil || len(o) != 6 {
		t.Fatalf("first bench: %d outcomes, %v", len(o), err)
	}
	o, err := Execute(store, opts)
	if made, skipped, _ := executed(o); err != nil || made != 0 || skipped != 6 {
		t.Errorf("rerun: %d made, %d skipped, %v", made, skipped, err)
	}
	interrupted := filepath.Join(out, "runs", "office-home", "unimos", "Art_to_Clipart", "seed-2.partial")
	if err := os.MkdirAll(interrupted, 0o755); err != nil {
		t.Fatal(err)
	}
	opts.Seeds = []uint64{1, 2}
	o, err = Execute(store, opts)
	if made, skipped, _ := executed(o); err != nil || made != 4 || skipped != 6 {
		t.Errorf("with a second seed: %d made, %d skipped, %v", made, skipped, err)
	}
	if _, err := os.Stat(interrupted); !os.IsNotExist(err) {
		t.Errorf("the interrupted run's scratch directory is still there: %v", err)
	}
	opts.Epochs = 2
	o, err = Execute(store, opts)
	if _, _, failed := executed(o); err == nil || failed != 4 || !strings.Contains(o[len(o)-1].Err.Error(), "another configuration") {
		t.Errorf("other epochs: %d failed, %v", failed, err)
	}
	other := smallStore(t, "office-home", 0.03, 65, 96)
	if _, err := Execute(other, opts); err == nil || !strings.Contains(err.Error(), "bench into another --out") {
		t.Errorf("another store: %v", err)
	}
}

// TestStopAndContinue stops a bench in the middle of a UniMoS run: the run
// is kept as a checkpoint, not as a result, and the next bench continues it
// to the result, bit for bit, of a bench that never stopped; a checkpoint
// made with other settings is discarded; a bench stopped before its first
// run makes none.
func TestStopAndContinue(t *testing.T) {
	p, _ := ProtocolByName("office-home")
	store := smallStore(t, "office-home", 0.03, 65, 80)
	tasks, _ := p.ParseTasks("A->C")
	iterations := 0
	count := func(Run, int, int) unimos.RunOptions {
		return unimos.RunOptions{OnIteration: func(int, int, int, float64) { iterations++ }}
	}
	opts := Options{Protocol: p, Tasks: tasks, Seeds: []uint64{1}, Methods: []string{ZeroShot, UniMoS}, Epochs: 3, Out: t.TempDir(), OnStart: count}
	whole, err := Execute(store, opts)
	if err != nil {
		t.Fatal(err)
	}
	total := iterations
	if total < 6 {
		t.Fatalf("%d iterations: too few to stop in the second epoch", total)
	}

	iterations = 0
	opts.Out = t.TempDir()
	opts.Stop = func() bool { return iterations == 4 }
	o, err := Execute(store, opts)
	if !errors.Is(err, ErrStopped) || len(o) != 2 || !errors.Is(o[1].Err, unimos.ErrStopped) {
		t.Fatalf("stopped bench: %d outcomes, %v", len(o), err)
	}
	dir := o[1].Run.Dir
	if _, err := os.Stat(filepath.Join(dir+".partial", unimos.CheckpointFile)); err != nil {
		t.Fatalf("no checkpoint of the stopped run: %v", err)
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Errorf("the stopped run has a run directory: %v", err)
	}
	opts.Stop = nil
	o, err = Execute(store, opts)
	if made, skipped, _ := executed(o); err != nil || made != 1 || skipped != 1 || !o[1].Resumed {
		t.Fatalf("continued bench: %d made, %d skipped, resumed %v, %v", made, skipped, o[1].Resumed, err)
	}
	if iterations != total {
		t.Errorf("%d iterations before and after the stop, %d without it", iterations, total)
	}
	// result.json (earlier epochs' predictions are not kept in a checkpoint) and the final predictions.
	want, got := *whole[1].Result, *o[1].Result
	want.TrainSeconds, got.TrainSeconds = 0, 0
	wantJSON, _ := json.Marshal(want)
	gotJSON, _ := json.Marshal(got)
	if string(gotJSON) != string(wantJSON) || !slices.Equal(got.History[3].Predictions, want.History[3].Predictions) {
		t.Errorf("continued run differs from the uninterrupted one:\n%s\nwant\n%s", gotJSON, wantJSON)
	}

	// A checkpoint of other settings (here: 3 epochs, asked for 2) is not continued.
	opts.Out = t.TempDir()
	iterations = 0
	opts.Stop = func() bool { return iterations == 4 }
	if _, err := Execute(store, opts); !errors.Is(err, ErrStopped) {
		t.Fatal(err)
	}
	opts.Stop, opts.Epochs = nil, 2
	if o, err := Execute(store, opts); err != nil || o[1].Resumed || o[1].Result.Epochs != 2 {
		t.Errorf("other settings: resumed %v, %v", o[1].Resumed, err)
	}

	opts.Out = t.TempDir()
	opts.Stop = func() bool { return true }
	if o, err := Execute(store, opts); !errors.Is(err, ErrStopped) || len(o) != 0 {
		t.Errorf("stopped before the first run: %d outcomes, %v", len(o), err)
	}
}

// TestFailingRunDoesNotStopOthers removes the text features of one domain:
// the runs that need them (zero-shot and UniMoS onto that target) fail,
// every other run finishes and the report is still written.
func TestFailingRunDoesNotStopOthers(t *testing.T) {
	out := t.TempDir()
	p, _ := ProtocolByName("office-home")
	store := smallStore(t, "office-home", 0.03, 65, 80)
	if err := os.Remove(filepath.Join(store.Dir, features.TextDir, "Clipart.safetensors")); err != nil {
		t.Fatal(err)
	}
	tasks, _ := p.ParseTasks("A->C,C->A,P->R")
	o, err := Execute(store, Options{Protocol: p, Tasks: tasks, Epochs: 1, Out: out})
	made, _, failed := executed(o)
	if err == nil || failed != 2 || made != 7 || !strings.Contains(err.Error(), "2 of 9 runs failed") {
		t.Errorf("%d made, %d failed, %v", made, failed, err)
	}
	for _, x := range o {
		if (x.Err != nil) != (x.Run.Task.Target == "Clipart" && x.Run.Method != SourceOnly) {
			t.Errorf("%s: error %v", x.Run.Name(), x.Err)
		}
	}
	if err := WriteReport(out, ""); err != nil {
		t.Fatal(err)
	}
	md, _ := os.ReadFile(filepath.Join(out, ReportFile))
	if !strings.Contains(string(md), "| **UniMoS, last epoch** | – |") {
		t.Errorf("the failed A->C run is not shown as missing:\n%s", md)
	}
}

// TestRunInUseIsLeftAlone locks the scratch directory of one run, as a
// second bench into the same folder would hold it: that run fails naming
// the holder, its directory is not cleared, and the others finish.
func TestRunInUseIsLeftAlone(t *testing.T) {
	out := t.TempDir()
	p, _ := ProtocolByName("office-home")
	store := smallStore(t, "office-home", 0.03, 65, 80)
	tasks, _ := p.ParseTasks("A->C,C->A")
	busy := runDir(out, p, UniMoS, tasks[0], 2023) + ".partial"
	lock, err := unimos.LockRunDir(busy)
	if err != nil {
		t.Fatal(err)
	}
	defer lock.Release()
	marker := filepath.Join(busy, "checkpoint.safetensors")
	if err := os.WriteFile(marker, []byte("the other bench's"), 0o644); err != nil {
		t.Fatal(err)
	}
	o, err := Execute(store, Options{Protocol: p, Tasks: tasks, Methods: []string{UniMoS}, Epochs: 1, Out: out})
	if err == nil || len(o) != 2 || o[0].Err == nil || !strings.Contains(o[0].Err.Error(), "is in use by another unimos adapt or bench") || o[1].Err != nil {
		t.Fatalf("outcomes %+v, %v", o, err)
	}
	if raw, err := os.ReadFile(marker); err != nil || string(raw) != "the other bench's" {
		t.Errorf("the run in use was touched: %q, %v", raw, err)
	}
	if _, err := os.Stat(filepath.Join(runDir(out, p, UniMoS, tasks[1], 2023), unimos.LockFile)); err == nil {
		t.Error("a finished run keeps its lock file")
	}
}

func TestStepTicks(t *testing.T) {
	var labels []string
	for _, tick := range (stepTicks{0.2, 0.1}).Ticks(0, 1) {
		if tick.Label != "" {
			labels = append(labels, tick.Label)
		}
	}
	if want := []string{"0", "0.2", "0.4", "0.6", "0.8", "1"}; !slices.Equal(labels, want) {
		t.Errorf("labels %q, want %q", labels, want)
	}
	if n := len((stepTicks{10, 5}).Ticks(0, 100)); n != 21 {
		t.Errorf("%d ticks on 0-100 by 5, want 21", n)
	}
}

func TestScaleToUnit(t *testing.T) {
	xys := plotter.XYs{{Y: 2}, {Y: 4}, {Y: 3}}
	scaleToUnit(xys, false) // lower is better: 2 is preferred
	if xys[0].Y != 1 || xys[1].Y != 0 || xys[2].Y != 0.5 {
		t.Errorf("scaled %v", xys)
	}
}

// TestOldResultFormat rewrites a finished UniMoS run's result.json as
// format 1 wrote it (no format field, epochs numbered from 0, −1 before
// training): a rerun still skips it as finished, and the report reads its
// epochs right: results.csv and results.json are as before.
func TestOldResultFormat(t *testing.T) {
	out := t.TempDir()
	p, _ := ProtocolByName("office-home")
	store := smallStore(t, "office-home", 0.03, 65, 80)
	tasks, _ := p.ParseTasks("A->C")
	opts := Options{Protocol: p, Tasks: tasks, Methods: []string{ZeroShot, UniMoS}, Epochs: 3, Out: out}
	if _, err := Execute(store, opts); err != nil {
		t.Fatal(err)
	}
	if err := WriteReport(out, ""); err != nil {
		t.Fatal(err)
	}
	read := func(name string) string {
		raw, err := os.ReadFile(filepath.Join(out, name))
		if err != nil {
			t.Fatal(err)
		}
		return string(raw)
	}
	csvBefore, jsonBefore := read(ResultsCSV), read(ResultsJSON)
	if !strings.Contains(csvBefore, ",last,3,") || !strings.Contains(jsonBefore, `"format": 2`) {
		t.Fatalf("results.csv or results.json without epoch 3 or format 2:\n%s", csvBefore)
	}

	path := filepath.Join(out, "runs", "office-home", "unimos", "Art_to_Clipart", "seed-2023", unimos.ResultFile)
	var old map[string]any
	if err := json.Unmarshal([]byte(read(strings.TrimPrefix(path, out+"/"))), &old); err != nil {
		t.Fatal(err)
	}
	delete(old, "format")
	decrement := func(v any) { e := v.(map[string]any); e["epoch"] = e["epoch"].(float64) - 1 }
	for _, e := range old["history"].([]any) {
		decrement(e)
	}
	decrement(old["best"])
	for _, s := range old["selections"].([]any) {
		decrement(s)
	}
	raw, _ := json.MarshalIndent(old, "", "  ")
	if err := os.WriteFile(path, raw, 0o644); err != nil {
		t.Fatal(err)
	}

	o, err := Execute(store, opts)
	if made, skipped, _ := executed(o); err != nil || made != 0 || skipped != 2 {
		t.Errorf("rerun: %d made, %d skipped, %v", made, skipped, err)
	}
	if err := WriteReport(out, ""); err != nil {
		t.Fatal(err)
	}
	if got := read(ResultsCSV); got != csvBefore {
		t.Errorf("results.csv from the format 1 result.json:\n%s\nwant\n%s", got, csvBefore)
	}
	if got := read(ResultsJSON); got != jsonBefore {
		t.Errorf("results.json from the format 1 result.json differs")
	}
}

// TestSpecialBenchFiles checks that the JSON files of a bench directory,
// read whole, are refused at once, naming them, when they are not regular
// files.
func TestSpecialBenchFiles(t *testing.T) {
	dir := t.TempDir()
	store := filepath.Join(dir, StoreFile)
	testkit.RefusesSpecialFiles(t, store, func() error { _, _, err := readStoreRecord(store); return err })
	testkit.RefusesSpecialFiles(t, store, func() error { return claimProtocolDir(dir, &features.Store{}) })
	confusion := filepath.Join(dir, ConfusionFile)
	testkit.RefusesSpecialFiles(t, confusion, func() error { _, err := readConfusion(confusion); return err })
}
