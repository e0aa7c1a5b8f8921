package bench

import (
	"cmp"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/unimos/unimos/internal/atomicfile"
	"github.com/unimos/unimos/internal/words"
	"github.com/unimos/unimos/unimos"
)

// ErrNoFinishedRuns is returned by WriteReport when there is no finished
// run to report.
var ErrNoFinishedRuns = errors.New("no finished runs")

// WriteReport reads every finished run in the bench directory out, and in
// the bench directories from (the folders of a sharded bench's shards, say),
// and writes out/report.md (one section per protocol: the results table in the
// paper's layout beside the published numbers, label-free model selection,
// plots), out/results.csv, out/results.json and the plots under out/plots.
// selectRule, when not empty, names a label-free criterion whose pick gets
// its own row in the results tables. A run finished in two of the folders
// is an error; run directories are named relative to out.
func WriteReport(out, selectRule string, from ...string) error {
	if selectRule != "" {
		if _, err := unimos.CriterionByName(selectRule); err != nil {
			return err
		}
	}
	bench, err := loadBench(out, from)
	if err != nil {
		return err
	}
	if len(bench) == 0 {
		where := filepath.Join(out, RunsDir)
		for _, dir := range from {
			where += ", " + filepath.Join(dir, RunsDir)
		}
		return fmt.Errorf("%w under %s", ErrNoFinishedRuns, where)
	}
	if err := os.MkdirAll(filepath.Join(out, PlotsDir), 0o755); err != nil {
		return fmt.Errorf("creating the plots directory: %w", err)
	}
	var md strings.Builder
	md.WriteString(reportIntro)
	for _, pr := range bench {
		plots, err := writePlots(out, pr)
		if err != nil {
			return err
		}
		writeSection(&md, pr, selectRule, plots)
	}
	if err := atomicfile.Write(filepath.Join(out, ReportFile), func(w io.Writer) error {
		_, err := io.WriteString(w, md.String())
		return err
	}); err != nil {
		return err
	}
	if err := atomicfile.Write(filepath.Join(out, ResultsCSV), func(w io.Writer) error { return writeCSV(w, bench) }); err != nil {
		return err
	}
	return unimos.WriteJSON(filepath.Join(out, ResultsJSON), resultsJSON(bench))
}

const reportIntro = `# unimos bench report

Numbers are top-1 accuracy in percent on the whole target domain (VisDA-2017: the mean of the per-class
accuracies), as mean ± standard deviation over seeds; "Avg" is the mean over tasks, taken per seed.

- **UniMoS, last epoch** is the headline: the model at the end of training, chosen without target labels.
- **UniMoS, oracle best epoch** picks the epoch with the best target accuracy, as the reference code reports
  ("best acc"). It uses target labels, so it is not a valid unsupervised number; it is shown for comparison only.
- **Label-free selection** rows pick an epoch by a criterion computed without target labels (see the section
  "Label-free model selection" of each protocol).
- **Published** rows are copied from the UniMoS paper (CVPR 2024). They were measured on the authors' CLIP
  features of the real datasets and are never included in our averages; they compare with ours only when
  this bench ran on CLIP features of the same datasets and backbone.

`

// column is one column of a results table.
type column struct{ key, label string }

// row is one row of a results table: per column and for the average, one
// value per seed (or a single published value).
type row struct {
	label     string // in report.md
	legend    string // in the per-task plot; "" leaves the row out of it
	published bool
	cells     map[string][]float64
	avg       []float64
}

// runValue is what one run contributes to a row: its cells and its
// headline number, which enters the average.
type runValue struct {
	cells    map[string]float64
	headline float64
}

// buildRow collects value over records. A seed's average is the mean of
// its runs' headline numbers, when it has a run of every task in tasks.
func buildRow(label string, recs []record, tasks int, value func(record) (runValue, bool)) row {
	r := row{label: label, cells: map[string][]float64{}}
	perSeed := map[uint64][]float64{}
	var seeds []uint64
	for _, rec := range recs {
		v, ok := value(rec)
		if !ok {
			continue
		}
		for k, x := range v.cells {
			r.cells[k] = append(r.cells[k], x)
		}
		if _, seen := perSeed[rec.seed]; !seen {
			seeds = append(seeds, rec.seed)
		}
		perSeed[rec.seed] = append(perSeed[rec.seed], v.headline)
	}
	slices.SortFunc(seeds, compareUint)
	for _, s := range seeds {
		if len(perSeed[s]) == tasks {
			m, _ := meanStd(perSeed[s])
			r.avg = append(r.avg, m)
		}
	}
	return r
}

// resultsTable builds a protocol's table: columns are tasks (VisDA-2017:
// classes), rows our methods, then the published rows.
func resultsTable(pr protocolRuns, selectRule string) ([]column, []row, []row) {
	p := pr.protocol
	tasks := pr.tasks()
	var cols []column
	if p.MeanClass {
		for _, c := range pr.store.Dataset.Classes {
			cols = append(cols, column{c, c})
		}
	} else {
		for _, t := range tasks {
			cols = append(cols, column{p.TaskName(t), p.taskLabel(t)})
		}
	}
	// final is a run's last-epoch number, with per-class cells for VisDA.
	final := func(r record) (runValue, bool) {
		v := runValue{headline: p.Headline(r.result.Final.Score), cells: map[string]float64{}}
		if p.MeanClass {
			for k, c := range pr.store.Dataset.Classes {
				if k < len(r.result.Final.PerClass) {
					v.cells[c] = r.result.Final.PerClass[k]
				}
			}
		} else {
			v.cells[p.TaskName(r.task)] = v.headline
		}
		return v, true
	}
	// pickedBy is the number of the epoch a rule picks; without per-class
	// accuracies of that epoch, VisDA rows show only the average.
	pickedBy := func(rule string) func(record) (runValue, bool) {
		return func(r record) (runValue, bool) {
			x, _, ok := p.picked(r, rule)
			v := runValue{headline: x, cells: map[string]float64{}}
			if !p.MeanClass {
				v.cells[p.TaskName(r.task)] = x
			}
			return v, ok
		}
	}
	var ours []row
	labels := map[string]string{ZeroShot: "CLIP zero-shot", SourceOnly: "Source-only (linear probe on source features)"}
	for _, m := range []string{ZeroShot, SourceOnly} {
		if recs := pr.of(m); len(recs) > 0 {
			r := buildRow(labels[m], recs, len(tasks), final)
			r.legend = methodTitle(m)
			ours = append(ours, r)
		}
	}
	if recs := pr.of(UniMoS); len(recs) > 0 {
		last := buildRow("**UniMoS, last epoch**", recs, len(tasks), final)
		last.legend = "UniMoS (last epoch)"
		ours = append(ours, last)
		if selectRule != "" {
			ours = append(ours, buildRow(fmt.Sprintf("UniMoS, epoch picked by %s (label-free)", selectRule), recs, len(tasks), pickedBy(selectRule)))
		}
		ours = append(ours, buildRow("UniMoS, oracle best epoch (target labels; not a UDA number)", recs, len(tasks), pickedBy(selectOracle)))
	}
	var published []row
	allColumns := p.MeanClass || len(tasks) == len(p.Tasks)
	for _, pub := range p.Published.Rows {
		r := row{label: pub.Method + " — published", published: true, cells: map[string][]float64{}}
		if allColumns {
			r.avg = []float64{pub.Avg}
		} else if avg, ok := subsetAverage(pub, cols); ok {
			r.avg = []float64{avg}
		}
		if strings.HasPrefix(pub.Method, "UniMoS*") {
			r.legend = pub.Method + " published (authors' features)"
		}
		for k, v := range pub.Cells {
			r.cells[k] = []float64{v}
		}
		published = append(published, r)
	}
	return cols, ours, published
}

// subsetAverage is the mean of a published row's cells in cols, for tables
// of some tasks only, where the paper's average over all tasks would not
// compare with ours.
func subsetAverage(pub PublishedRow, cols []column) (float64, bool) {
	var sum float64
	for _, c := range cols {
		v, ok := pub.Cells[c.key]
		if !ok {
			return 0, false
		}
		sum += v
	}
	return sum / float64(len(cols)), len(cols) > 0
}

// formatValues writes mean ± std with the given decimals (one in the
// tables, as the paper; two for differences smaller than that rounding),
// the mean alone for one value, or "–" for none.
func formatValues(v []float64, decimals int) string {
	if len(v) == 0 {
		return "–"
	}
	m, s := meanStd(v)
	if len(v) == 1 {
		return fmt.Sprintf("%.*f", decimals, m)
	}
	return fmt.Sprintf("%.*f ± %.*f", decimals, m, decimals, s)
}

func writeSection(md *strings.Builder, pr protocolRuns, selectRule string, plots sectionPlots) {
	p := pr.protocol
	ds := pr.store.Dataset
	fmt.Fprintf(md, "## %s\n\n", p.Title)
	fmt.Fprintf(md, "Feature store `%s`: dataset %q, backbone %s, dimension %d, %d classes. %s\n\n",
		pr.store.Dir, ds.Name, ds.Backbone, ds.Dim, len(ds.Classes), runsSummary(pr))
	if strings.HasPrefix(ds.Backbone, "synthetic") {
		md.WriteString("This store is synthetic (`unimos synth`): its numbers check the implementation and the protocol, " +
			"they say nothing about CLIP")
		if len(p.Published.Rows) > 0 {
			md.WriteString("; the published rows are not comparable with them")
		}
		md.WriteString(".\n\n")
	}
	if len(p.Published.Rows) == 0 {
		md.WriteString("The UniMoS paper publishes no numbers for this protocol.\n\n")
	}
	if p.MeanClass {
		md.WriteString("Columns are per-class accuracies of the last epoch; Avg is their mean, the VisDA-2017 headline. " +
			"Rows that pick another epoch show only Avg (per-class accuracies are kept for the last epoch only).\n\n")
	}
	cols, ours, published := resultsTable(pr, selectRule)
	md.WriteString("| Method |")
	for _, c := range cols {
		fmt.Fprintf(md, " %s |", c.label)
	}
	md.WriteString(" Avg |\n|---|")
	md.WriteString(strings.Repeat("---|", len(cols)+1) + "\n")
	writeRow := func(r row) {
		fmt.Fprintf(md, "| %s |", r.label)
		for _, c := range cols {
			fmt.Fprintf(md, " %s |", formatValues(r.cells[c.key], 1))
		}
		fmt.Fprintf(md, " %s |\n", formatValues(r.avg, 1))
	}
	for _, r := range ours {
		writeRow(r)
	}
	if len(published) > 0 {
		fmt.Fprintf(md, "| ***Published, authors' features*** (UniMoS paper %s; not in our averages) |%s\n",
			p.Published.Source, strings.Repeat(" |", len(cols)+1))
		for _, r := range published {
			writeRow(r)
		}
	}
	md.WriteString("\n")
	if len(published) > 0 && !p.MeanClass && len(pr.tasks()) < len(p.Tasks) {
		fmt.Fprintf(md, "These runs cover %d of the %d tasks: the Avg of a published row is the mean of its cells shown here "+
			"(– where the paper gives no per-task numbers), not the paper's average over every task.\n\n", len(pr.tasks()), len(p.Tasks))
	}
	if plots.tasks != "" {
		fmt.Fprintf(md, "![%s: accuracy per %s](%s)\n\n", p.Title, map[bool]string{true: "class", false: "task"}[p.MeanClass], plots.tasks)
	}
	for _, c := range plots.confusion {
		fmt.Fprintf(md, "![%s](%s)\n\n", c.title, c.path)
	}
	writeSelection(md, pr)
	if len(plots.curves) > 0 {
		md.WriteString("### Training curves (UniMoS)\n\nPer epoch: ensemble, VAC and LAC accuracy; the MET weight w; the label-free criteria.\n\n")
		for _, c := range plots.curves {
			fmt.Fprintf(md, "![%s](%s)\n", c.title, c.path)
		}
		md.WriteString("\n")
	}
}

// runsSummary says which seeds, presets, epochs and batch sizes the runs
// used.
func runsSummary(pr protocolRuns) string {
	seeds := map[uint64]bool{}
	presets := map[string]bool{}
	epochs, batches := map[int]bool{}, map[int]bool{}
	for _, r := range pr.records {
		if r.method != ZeroShot {
			seeds[r.seed] = true
		}
		if r.method == UniMoS {
			presets[r.result.Config.Preset] = true
			epochs[r.result.Config.Epochs] = true
			batches[r.result.Config.BatchSize] = true
		}
	}
	var parts []string
	if len(seeds) > 0 {
		var s []string
		for _, k := range sortedKeys(seeds, compareUint) {
			s = append(s, strconv.FormatUint(k, 10))
		}
		parts = append(parts, fmt.Sprintf("Seeds %s", strings.Join(s, ", ")))
	}
	if len(epochs) > 0 {
		count := joinInts(epochs) + " epochs"
		if len(epochs) == 1 {
			count = words.Count(sortedKeys(epochs, cmp.Compare)[0], "epoch")
		}
		parts = append(parts, fmt.Sprintf("UniMoS preset %s, %s, batch %s", strings.Join(sortedKeys(presets, strings.Compare), "/"), count, joinInts(batches)))
	}
	parts = append(parts, words.Count(len(pr.records), "finished run"))
	return strings.Join(parts, "; ") + "."
}

// joinInts lists the numbers of a set in increasing order: "20/50".
func joinInts(set map[int]bool) string {
	var s []string
	for _, k := range sortedKeys(set, cmp.Compare) {
		s = append(s, strconv.Itoa(k))
	}
	return strings.Join(s, "/")
}

func sortedKeys[K comparable](m map[K]bool, cmp func(a, b K) int) []K {
	var keys []K
	for k := range m {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, cmp)
	return keys
}

// writeSelection writes the comparison of the label-free criteria with the
// last epoch and the oracle, over every UniMoS run of the protocol, and the
// temporal ensemble beside them.
func writeSelection(md *strings.Builder, pr protocolRuns) {
	recs := pr.of(UniMoS)
	if len(recs) == 0 {
		return
	}
	p := pr.protocol
	md.WriteString("### Label-free model selection\n\n")
	md.WriteString("Each criterion picks one trained epoch per run without target labels (docs/selection.md describes them): " +
		"lowest mean prediction entropy (entropy), highest information maximisation H(mean p) − mean H(p) (infomax), " +
		"highest agreement between the VAC and LAC predictions (agreement), highest soft neighbourhood density (snd, " +
		fmt.Sprintf("Saito et al. 2021, T = %g, on at most %d target rows), ", unimos.SNDTemperature, unimos.SNDSampleSize) +
		"highest batch nuclear-norm (bnm, Cui et al. 2020), MixVal's accuracy on mixes of target features with different " +
		fmt.Sprintf("(mixval-inter) or the same (mixval-intra) pseudo-labels and their mean (mixval; Hu et al. 2023, λ = %g, %d pairs), ", unimos.MixValLambda, unimos.MixValPairs) +
		"highest adjusted mutual information between the predictions and a k-means clustering of the bottleneck features " +
		fmt.Sprintf("(classami, Musgrave et al. 2022, on at most %d rows), ", unimos.ClassAMISampleSize) +
		"highest agreement with the ensemble of every trained epoch (ensv, Hu et al. 2024), and unimos's own " +
		"combination, the best mean rank under mixval-inter and classami (mixval-classami). " +
		"Differences are in accuracy points against the same run's last epoch or oracle, averaged over runs (worst: the " +
		"lowest over runs); the epoch is the number of epochs trained. The temporal ensemble (the mean of every trained " +
		"epoch's softmax outputs, unimos's own addition, not the paper's method) is a prediction, not an epoch.\n\n")
	md.WriteString("| Selection | Avg | vs last epoch | worst vs last | vs oracle | epoch picked (mean) | runs better / same / worse than last |\n")
	md.WriteString("|---|---|---|---|---|---|---|\n")
	tasks := len(pr.tasks())
	rules := append(append([]string{selectLast}, unimos.CriterionNames()...), selectOracle, selectTemporalEnsemble)
	for _, rule := range rules {
		r := buildRow(rule, recs, tasks, func(rec record) (runValue, bool) {
			v, _, ok := p.picked(rec, rule)
			return runValue{headline: v}, ok
		})
		var dLast, dOracle, epochs []float64
		better, same, worse := 0, 0, 0
		for _, rec := range recs {
			v, e, ok := p.picked(rec, rule)
			last, _, okL := p.picked(rec, selectLast)
			oracle, _, okO := p.picked(rec, selectOracle)
			if !ok || !okL || !okO {
				continue
			}
			dLast = append(dLast, v-last)
			dOracle = append(dOracle, v-oracle)
			if rule != selectTemporalEnsemble {
				epochs = append(epochs, float64(e))
			}
			switch {
			case v > last:
				better++
			case v == last:
				same++
			default:
				worse++
			}
		}
		label := rule
		switch rule {
		case selectLast:
			label = "last epoch (headline)"
		case selectOracle:
			label = "oracle (target labels)"
		case selectTemporalEnsemble:
			label = "temporal ensemble (unimos's own; not an epoch)"
		}
		worst := "–"
		if len(dLast) > 0 {
			worst = fmt.Sprintf("%+.2f", slices.Min(dLast))
		}
		fmt.Fprintf(md, "| %s | %s | %s | %s | %s | %s | %d / %d / %d |\n", label, formatValues(r.avg, 2),
			formatDelta(dLast), worst, formatDelta(dOracle), formatMean(epochs, "%.1f"), better, same, worse)
	}
	md.WriteString("\n")
}

func formatDelta(v []float64) string { return formatMean(v, "%+.2f") }

func formatMean(v []float64, format string) string {
	if len(v) == 0 {
		return "–"
	}
	m, _ := meanStd(v)
	return fmt.Sprintf(format, m)
}

// writeCSV writes one line per run and selection: the last epoch (or the
// baseline's only number), and for UniMoS the oracle and every criterion's pick.
func writeCSV(w io.Writer, bench []protocolRuns) error {
	cw := csv.NewWriter(w)
	cw.Write([]string{"protocol", "method", "task", "source", "target", "seed", "selection", "epoch",
		"accuracy", "mean_class_accuracy", "headline", "train_seconds", "run_dir"})
	num := func(v float64) string {
		if math.IsNaN(v) {
			return ""
		}
		return strconv.FormatFloat(v, 'f', 4, 64)
	}
	for _, pr := range bench {
		p := pr.protocol
		for _, r := range pr.records {
			res := r.result
			seed := strconv.FormatUint(r.seed, 10)
			if r.method == ZeroShot {
				seed = ""
			}
			line := func(selection, epoch string, acc, meanClass float64) {
				score := unimos.Score{Accuracy: acc, MeanClassAccuracy: meanClass}
				cw.Write([]string{p.Name, r.method, p.TaskName(r.task), r.task.Source, r.task.Target, seed, selection, epoch,
					num(acc), num(meanClass), num(p.Headline(score)), num(res.TrainSeconds), r.dir})
			}
			if r.method != UniMoS {
				line("final", "", res.Final.Accuracy, res.Final.MeanClassAccuracy)
				continue
			}
			if te := res.TemporalEnsemble; te != nil && te.Score != nil {
				line(selectTemporalEnsemble, "", te.Score.Accuracy, te.Score.MeanClassAccuracy)
			}
			rules := append([]string{selectLast, selectOracle}, unimos.CriterionNames()...)
			for _, rule := range rules {
				i := p.selectEpoch(res.History, rule)
				if i < 0 {
					continue
				}
				e := res.History[i]
				line(rule, strconv.Itoa(e.Epoch), deref(e.Accuracy), deref(e.MeanClassAccuracy))
			}
		}
	}
	cw.Flush()
	return cw.Error()
}

func deref(v *float64) float64 {
	if v == nil {
		return math.NaN()
	}
	return *v
}

// runJSON is one run in results.json.
type runJSON struct {
	Protocol string `json:"protocol"`
	RunDir   string `json:"run_dir"`
	// Result is the run's result.json in the current format: one written
	// before epochs were counted as trained is renumbered.
	Result *unimos.Result `json:"result"`
}

func resultsJSON(bench []protocolRuns) []runJSON {
	out := []runJSON{}
	for _, pr := range bench {
		for _, r := range pr.records {
			out = append(out, runJSON{Protocol: pr.protocol.Name, RunDir: r.dir, Result: r.result})
		}
	}
	return out
}
