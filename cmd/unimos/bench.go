package main

import (
	"errors"
	"fmt"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"

	"github.com/unimos/unimos/bench"
	"github.com/unimos/unimos/features"
	"github.com/unimos/unimos/internal/progress"
	"github.com/unimos/unimos/internal/words"
	"github.com/unimos/unimos/unimos"
)

func runBench(ctx *context, args []string) error {
	fs := newFlags(ctx, "bench", "--features DIR --protocol NAME --out BENCH_DIR [--seeds 2023,1,2] [--methods LIST] [--tasks LIST] [--preset NAME] [--epochs E] [--batch B] [--select CRITERION] [--checkpoint-every E] [--jobs N|auto] [--shard i/n|auto]\n       unimos bench --report-only --out BENCH_DIR [MORE_BENCH_DIR...]", `
Runs a benchmark protocol on a feature store: every (method, task, seed),
--jobs at a time (default auto: one per core), each kept in
BENCH_DIR/runs/<protocol>/<method>/<Source>_to_<Target>/seed-<n> (CLIP
zero-shot runs once per task). Every run is made on one thread, so that its
result is the same bit for bit whatever --jobs is; the runs are reported in
order, a run's line waiting for the runs before it. A rerun skips the
finished runs. Ctrl-C (SIGINT or SIGTERM) stops a bench between two
training iterations and saves the UniMoS runs in progress; the same command
then continues them where they stopped, to the results they would have
had. A run that fails is reported, the others go on, and the exit status is
1 at the end.

Then writes BENCH_DIR/report.md (per protocol: methods x tasks with mean +-
std over seeds, the last epoch as the headline, the oracle best epoch in its
own row, the paper's published numbers beside them, label-free model
selection, plots), results.csv, results.json and plots/*.png, from every
finished run in BENCH_DIR (several protocols may share one). Epochs are
counted as trained: 0 is the test before training.

--shard i/n makes only every n-th run (in the order methods, tasks, seeds),
from the i-th, and writes no report; --shard auto takes i and n from a
Slurm array task or a Kubernetes Indexed Job, as extract does. The shards
may share BENCH_DIR (each run is its own folder, moved into place when
finished) or use one each. Then --report-only writes the report from the
finished runs of BENCH_DIR and of every MORE_BENCH_DIR given (the shards'
folders), the same report as one unsharded bench's.

Protocols: `+strings.Join(bench.ProtocolNames(), ", ")+`. The paper's
protocols need the store to have their domain names; `+bench.Pairs+` takes any
store and runs every ordered pair of its labelled domains (every row
labelled), or the pairs given with --tasks ('amazon->webcam,dslr->amazon',
domain names as in dataset.json), with the `+bench.PairsPreset+` preset unless --preset
says otherwise. --epochs and --batch replace the preset's epochs and batch
size (UniMoS needs a batch of source and one of target rows: a domain smaller
than the preset's batch of 32 needs a smaller --batch); each run's
result.json records them. Methods: `+strings.Join(bench.MethodNames(), ", ")+`.
Label-free criteria for --select: `+strings.Join(unimos.CriterionNames(), ", ")+`.`)
	dir := fs.String("features", "", "feature store `DIR`")
	protocolName := fs.String("protocol", "", "benchmark `NAME`")
	out := fs.String("out", "", "`BENCH_DIR` for the runs and the report")
	seedList := fs.String("seeds", "2023", "comma-separated random `SEEDS`")
	methodList := fs.String("methods", strings.Join(bench.MethodNames(), ","), "comma-separated `METHODS`")
	taskList := fs.String("tasks", "", "comma-separated `TASKS`, quoted for the shell: 'A->C,P->R' (default: every task of the protocol)")
	preset := fs.String("preset", "", "UniMoS hyperparameter preset `NAME` (default: the protocol's; "+bench.PairsPreset+" for "+bench.Pairs+"): "+strings.Join(unimos.PresetNames(), ", "))
	epochs := fs.Int("epochs", 0, "UniMoS epochs `E` instead of the preset's, for quick runs (0: the preset's)")
	batch := fs.Int("batch", 0, "UniMoS source and target rows per iteration `B`, each, instead of the preset's, for domains smaller than it (0: the preset's; at least 2)")
	selectRule := fs.String("select", unimos.DefaultCriterion, "label-free `CRITERION` whose epoch pick gets its own row in the tables ('' for none)")
	reportOnly := fs.Bool("report-only", false, "only write the report into BENCH_DIR, from the finished runs in BENCH_DIR and in the bench folders given as arguments")
	checkpointEvery := fs.Int("checkpoint-every", 0, "also save the UniMoS run in progress every `E` epochs, so that a crash loses little (a stopped bench always saves it)")
	jobs := fs.String("jobs", "auto", "make `N` runs at once, each on one thread ('auto': one per core, "+strconv.Itoa(runtime.GOMAXPROCS(0))+" here)")
	shardFlag := addShardFlags(fs, "runs")
	if err := parseFlags(fs, args, anyArgs); err != nil {
		return err
	}
	if fs.NArg() > 0 && !*reportOnly {
		return usagef("unexpected argument %q (more bench folders go with --report-only; flags go before arguments)", fs.Arg(0))
	}
	if err := requireFlags(fs, "out"); err != nil {
		return err
	}
	if *selectRule != "" {
		if _, err := unimos.CriterionByName(*selectRule); err != nil {
			return usageError{err.Error()}
		}
	}
	if *reportOnly {
		if *shardFlag.spec != "" {
			return usagef("--report-only reports every shard; drop --shard")
		}
		return writeBenchReport(ctx, *out, *selectRule, fs.Args()...)
	}
	if err := requireFlags(fs, "features", "protocol"); err != nil {
		return err
	}
	sh, err := shardFlag.resolve()
	if err != nil {
		return err
	}
	opts, err := benchOptions(*protocolName, *preset, *seedList, *methodList, *epochs, *batch, *jobs)
	if err != nil {
		return err
	}
	opts.Out, opts.CheckpointEvery, opts.Shard = *out, *checkpointEvery, sh
	store, err := features.Open(*dir)
	if err != nil {
		return err
	}
	// The pairs protocol's domains and tasks come from the store.
	if opts.Protocol, err = bench.ProtocolFor(*protocolName, store); err != nil {
		return err
	}
	if opts.Tasks, err = opts.Protocol.ParseTasks(*taskList); err != nil {
		return usagef("--tasks: %v", err)
	}
	interrupted, release := interruptible(ctx.stderr, "the finished runs and a checkpoint of the one in progress")
	defer release()
	opts.Stop = func() bool { return interrupted.Err() != nil }
	clearBar := observeBench(ctx, &opts)
	outcomes, runErr := bench.Execute(store, opts)
	clearBar()
	if errors.Is(runErr, bench.ErrStopped) {
		runErr = fmt.Errorf("%w; run the same command again to continue", runErr)
	}
	if sh.Count > 0 {
		// A report of one shard's runs would be mistaken for the bench's.
		fmt.Fprintf(ctx.stdout, "shard %v: %s of %s; when every shard is done: unimos bench --report-only --out %s [the other shards' folders]\n",
			sh, words.Count(len(outcomes), "run"), *out, *out)
		return runErr
	}
	switch err := writeBenchReport(ctx, *out, *selectRule); {
	case err == nil:
		return runErr
	case errors.Is(runErr, bench.ErrStopped) && errors.Is(err, bench.ErrNoFinishedRuns):
		return runErr // nothing to report yet: the command that continues the bench writes it
	case runErr != nil:
		return fmt.Errorf("%w; writing the report: %v", runErr, err)
	}
	return err
}

// benchOptions checks and converts the command-line settings that need no
// store; the protocol and its tasks are resolved on the store.
func benchOptions(protocolName, preset, seedList, methodList string, epochs, batch int, jobs string) (bench.Options, error) {
	opts := bench.Options{Preset: preset, Epochs: epochs, Batch: batch}
	if jobs == "auto" {
		opts.Jobs = runtime.GOMAXPROCS(0)
	} else if n, err := strconv.Atoi(jobs); err == nil && n >= 1 {
		opts.Jobs = n
	} else {
		return opts, usagef("--jobs: %q is neither a number of runs (1 or more) nor auto", jobs)
	}
	if !contains(bench.ProtocolNames(), protocolName) {
		return opts, usagef("--protocol: unknown protocol %q (choose from %s)", protocolName, strings.Join(bench.ProtocolNames(), ", "))
	}
	if preset != "" {
		if _, err := unimos.Preset(preset); err != nil {
			return opts, usagef("--preset: %v", err)
		}
	}
	if epochs < 0 {
		return opts, usagef("--epochs must be positive, got %d", epochs)
	}
	if batch != 0 && batch < 2 {
		return opts, usagef("--batch must be at least 2 (or 0 for the preset's), got %d", batch)
	}
	for _, s := range splitList(seedList) {
		seed, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			return opts, usagef("--seeds: %q is not a non-negative integer", s)
		}
		opts.Seeds = append(opts.Seeds, seed)
	}
	if len(opts.Seeds) == 0 {
		return opts, usagef("--seeds is empty")
	}
	for _, m := range splitList(methodList) {
		if !contains(bench.MethodNames(), m) {
			return opts, usagef("--methods: unknown method %q (choose from %s)", m, strings.Join(bench.MethodNames(), ", "))
		}
		opts.Methods = append(opts.Methods, m)
	}
	if len(opts.Methods) == 0 {
		return opts, usagef("--methods is empty")
	}
	return opts, nil
}

func splitList(s string) []string {
	var out []string
	for _, item := range strings.Split(s, ",") {
		if item = strings.TrimSpace(item); item != "" {
			out = append(out, item)
		}
	}
	return out
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// observeBench reports each run on stderr: one line when the run ends, in
// run order, and while UniMoS trains (on a terminal) a progress bar of its
// iterations, or with several jobs, which one bar cannot show, a bar of the
// runs finished (not the stopped or failed ones). It returns the function
// to call when the bench returns, which erases a bar left drawn.
func observeBench(ctx *context, opts *bench.Options) (clear func()) {
	var bar *progress.Bar
	total := 0    // runs in the bench, from OnStart
	finished := 0 // runs finished, now or by an earlier bench
	head := func(r bench.Run, i int) string { return fmt.Sprintf("[%d/%d] %s", i+1, total, r.Name()) }
	opts.OnStart = func(r bench.Run, i, n int) unimos.RunOptions {
		total = n
		if opts.Jobs > 1 {
			if bar == nil {
				bar = progress.New(ctx.stderr, "bench", "runs", n)
			}
			return unimos.RunOptions{}
		}
		bar = nil
		var status string
		return unimos.RunOptions{
			OnIteration: func(epoch, it, perEpoch int, loss float64) {
				if bar == nil {
					bar = progress.New(ctx.stderr, head(r, i), "it", perEpoch*r.Config.Epochs)
				}
				bar.Update(epoch*perEpoch+it+1, fmt.Sprintf("epoch %d/%d%s", epoch+1, r.Config.Epochs, status))
			},
			OnEpoch: func(e unimos.Evaluation) {
				if e.Accuracy != nil {
					status = fmt.Sprintf("  acc %.2f%%", *e.Accuracy)
				}
			},
		}
	}
	opts.OnEnd = func(o bench.Outcome) {
		// Printf erases the bar first; the runs' bar comes back below the line.
		h := head(o.Run, o.Index)
		switch {
		case errors.Is(o.Err, unimos.ErrStopped):
			progress.Printf(ctx.stderr, "%s: stopped, saved in %s.partial\n", h, o.Run.Dir)
		case o.Err != nil:
			progress.Printf(ctx.stderr, "%s: FAILED: %v\n", h, o.Err)
		case o.Skipped:
			progress.Printf(ctx.stderr, "%s: finished earlier, %s\n", h, outcomeScore(o))
		case o.Resumed:
			progress.Printf(ctx.stderr, "%s: %s  (%.1f s, continued from a stopped bench)\n", h, outcomeScore(o), o.Result.TrainSeconds)
		default:
			progress.Printf(ctx.stderr, "%s: %s  (%.1f s)\n", h, outcomeScore(o), o.Result.TrainSeconds)
		}
		if o.Err == nil {
			finished++
		}
		if opts.Jobs > 1 {
			bar.Update(finished, "")
		}
	}
	return func() {
		if bar != nil {
			bar.Clear()
		}
	}
}

// outcomeScore is the run's headline number, with the oracle for UniMoS.
func outcomeScore(o bench.Outcome) string {
	r, p := o.Result, o.Run.Protocol
	metric := "accuracy"
	if p.MeanClass {
		metric = "mean class accuracy"
	}
	s := fmt.Sprintf("%s %.2f%%", metric, p.Headline(r.Final.Score))
	if len(r.History) > 0 {
		best, epoch := p.Oracle(r.History)
		s += fmt.Sprintf(" at the last epoch (oracle best %.2f%%, %s)", best, epochName(epoch))
	}
	return s
}

// writeBenchReport writes the report into out from the finished runs of
// out and of the bench folders from.
func writeBenchReport(ctx *context, out, selectRule string, from ...string) error {
	if err := bench.WriteReport(out, selectRule, from...); err != nil {
		return err
	}
	fmt.Fprintf(ctx.stdout, "report: %s\n", filepath.Join(out, bench.ReportFile))
	return nil
}
