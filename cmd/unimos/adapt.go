package main

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"time"

	"github.com/unimos/unimos/features"
	"github.com/unimos/unimos/internal/progress"
	"github.com/unimos/unimos/internal/words"
	"github.com/unimos/unimos/unimos"
)

// bindAdaptFlags defines every hyperparameter flag of adapt, writing into cfg.
func bindAdaptFlags(fs *flag.FlagSet, cfg *unimos.Config) {
	fs.Uint64Var(&cfg.Seed, "seed", cfg.Seed, "random seed (initialisation, batches, dropout)")
	fs.IntVar(&cfg.Epochs, "epochs", cfg.Epochs, "training epochs, 1 to 100000")
	fs.Float64Var(&cfg.LR, "lr", cfg.LR, "initial learning rate, in (0, 10]")
	fs.Float64Var(&cfg.Alpha, "alpha", cfg.Alpha, "weight of the source cross-entropy on the language-associated logits, in [0, 1000]")
	fs.Float64Var(&cfg.Beta, "beta", cfg.Beta, "weight of the source cross-entropy on the vision-associated logits, in [0, 1000]")
	fs.Float64Var(&cfg.Gamma, "gamma", cfg.Gamma, "weight of the orthogonality and discriminator losses, in [0, 1000]")
	fs.Float64Var(&cfg.Tau, "tau", cfg.Tau, "debiasing strength, in [0, 10]")
	fs.Float64Var(&cfg.PriorMomentum, "prior-momentum", cfg.PriorMomentum, "EMA momentum of the class prior, in [0, 1)")
	fs.IntVar(&cfg.BatchSize, "batch", cfg.BatchSize, "source and target rows per iteration, each: at least 2")
	fs.IntVar(&cfg.MaxIters, "max-iterations", cfg.MaxIters, "cap on iterations per epoch, at least 1")
	fs.Float64Var(&cfg.FixedTestWeight, "test-weight", cfg.FixedTestWeight, "fixed test weight l_e of the vision logits in the test ensemble, at most 1 (negative: the 0.8 → 0.3 ramp)")
	fs.StringVar(&cfg.Variants.Ortho, "ortho", cfg.Variants.Ortho, "orthogonality loss: diagonal (code), elementwise (first release) or paper")
	fs.BoolVar(&cfg.Variants.CosineLAC, "cosine-lac", cfg.Variants.CosineLAC, "score the language component by cosine (paper) instead of dot product (code)")
	fs.BoolVar(&cfg.Variants.FullPrecisionText, "text-f32", cfg.Variants.FullPrecisionText, "use the text features in float32 as stored instead of rounded to float16 (code)")
	fs.BoolVar(&cfg.Variants.CentroidLabelsOnly, "centroid-labels", cfg.Variants.CentroidLabelsOnly, "centroid pseudo-labels every epoch (paper) instead of alternating (code)")
	fs.BoolVar(&cfg.Variants.DebiasedEnsemble, "debiased-ensemble", cfg.Variants.DebiasedEnsemble, "debiased language logits in the training ensemble (paper)")
	fs.BoolVar(&cfg.Ablations.NoOrtho, "no-ortho", cfg.Ablations.NoOrtho, "ablation: drop the orthogonality loss")
	fs.BoolVar(&cfg.Ablations.NoDebias, "no-debias", cfg.Ablations.NoDebias, "ablation: no debiasing of the language logits")
	fs.BoolVar(&cfg.Ablations.NoEntropy, "no-entropy", cfg.Ablations.NoEntropy, "ablation: drop the entropy-minus-diversity loss")
	fs.BoolVar(&cfg.Ablations.NoDistill, "no-distill", cfg.Ablations.NoDistill, "ablation: drop the zero-shot distillation")
	fs.BoolVar(&cfg.Ablations.FixedMETWeight, "fixed-met-weight", cfg.Ablations.FixedMETWeight, "ablation: MET weight w = 0.5 instead of learned")
	fs.BoolVar(&cfg.Ablations.NoDiscriminator, "no-discriminator", cfg.Ablations.NoDiscriminator, "ablation: drop the modality discriminator")
}

// adaptConfig builds the configuration from the preset named on the command
// line, then applies the flags the user set explicitly on top of it.
func adaptConfig(fs *flag.FlagSet, preset string) (unimos.Config, error) {
	cfg, err := unimos.Preset(preset)
	if err != nil {
		return cfg, usageError{err.Error()}
	}
	onto := flag.NewFlagSet("", flag.ContinueOnError)
	bindAdaptFlags(onto, &cfg)
	var setErr error
	fs.Visit(func(f *flag.Flag) {
		if onto.Lookup(f.Name) != nil && setErr == nil {
			setErr = onto.Set(f.Name, f.Value.String())
		}
	})
	if setErr != nil {
		return cfg, setErr
	}
	if err := cfg.Validate(); err != nil {
		return cfg, usageError{err.Error()}
	}
	return cfg, nil
}

func runAdapt(ctx *context, args []string) error {
	fs := newFlags(ctx, "adapt", "--features DIR --source S --target T --out RUN_DIR [--preset NAME] [flags]", `
Adapts from the labelled source domain S to the target domain T of the
feature store DIR with UniMoS, and writes RUN_DIR/result.json (accuracies per
epoch, final and oracle-best), RUN_DIR/model.safetensors (every trained
tensor, the configuration in its metadata) and RUN_DIR/predictions.csv.

Target labels, where present, are used only to report accuracy. The number to
quote is "final" (last epoch); "best" picks the epoch with target labels, as
the reference code does, and is reported for comparison only. --select
CRITERION records the epoch a label-free criterion picks as "selected"
(docs/selection.md; by default `+unimos.DefaultCriterion+`, unimos's own); the model and predictions stay the last epoch's.
result.json also scores the temporal ensemble, the mean of every trained
epoch's outputs (unimos's own addition, not the paper's method).

Label-free criteria: `+strings.Join(unimos.CriterionNames(), ", ")+`.

Presets (per-dataset settings of the paper): `+strings.Join(unimos.PresetNames(), ", ")+`.
Flags set explicitly override the preset.`)
	dir := fs.String("features", "", "feature store `DIR`")
	source := fs.String("source", "", "labelled source `DOMAIN`")
	target := fs.String("target", "", "target `DOMAIN`")
	out := fs.String("out", "", "`RUN_DIR` for the results")
	preset := fs.String("preset", "office-home", "hyperparameter preset `NAME`")
	quiet := fs.Bool("quiet", false, "print only the final summary")
	force := fs.Bool("force", false, "replace the run already in RUN_DIR")
	checkpointEvery := fs.Int("checkpoint-every", 0, "save RUN_DIR/checkpoint.safetensors every `E` epochs (a stopped run always saves one)")
	resume := fs.String("resume", "", "continue the stopped run in `RUN_DIR` with the store, task and settings saved in its checkpoint")
	selectRule := fs.String("select", unimos.DefaultCriterion, "label-free `CRITERION` whose epoch pick result.json records as \"selected\" ('' for none)")
	defaults := unimos.DefaultConfig()
	bindAdaptFlags(fs, &defaults)
	deprecatedFlag(ctx, fs, "mix", "test-weight")
	deprecatedFlag(ctx, fs, "fixed-weight", "fixed-met-weight")
	if err := parseFlags(fs, args, 0); err != nil {
		return err
	}
	opts := runOptions{checkpointEvery: *checkpointEvery, quiet: *quiet, selectRule: *selectRule}
	if *checkpointEvery < 0 {
		return usagef("--checkpoint-every %d: want 0 (only when stopped) or more", *checkpointEvery)
	}
	if *selectRule != "" {
		if _, err := unimos.CriterionByName(*selectRule); err != nil {
			return usageError{err.Error()}
		}
	}

	if *resume != "" {
		return resumeAdapt(ctx, fs, *resume, opts)
	}
	if err := requireFlags(fs, "features", "source", "target", "out"); err != nil {
		return err
	}
	if *source == *target {
		return usagef("--source and --target are both %q", *source)
	}
	cfg, err := adaptConfig(fs, *preset)
	if err != nil {
		return err
	}
	store, err := features.Open(*dir)
	if err != nil {
		return err
	}
	// Locked before it is cleared: --force must not remove the files of a
	// run still training there.
	lock, err := unimos.LockRunDir(*out)
	if err != nil {
		return err
	}
	defer lock.Release()
	if err := clearRunDir(*out, *force); err != nil {
		return err
	}
	opts.lock = lock
	run, err := adapt(ctx, store, *source, *target, cfg, *out, opts)
	if err != nil {
		return err
	}
	printAdaptSummary(ctx, run, *out)
	return nil
}

// runFiles are the files of a run directory, finished or stopped.
var runFiles = []string{unimos.ResultFile, unimos.ModelFile, unimos.PredictionsFile, unimos.CheckpointFile, unimos.EnsembleFile}

// clearRunDir refuses to train into a directory that holds a run, unless
// force, in which case that run's files are removed first, so that the
// directory never mixes two runs.
func clearRunDir(out string, force bool) error {
	var found []string
	for _, f := range runFiles {
		if _, err := os.Stat(filepath.Join(out, f)); err == nil {
			found = append(found, f)
		}
	}
	switch {
	case len(found) == 0:
		return nil
	case !force && slices.Contains(found, unimos.CheckpointFile):
		return usagef("%s holds a stopped run (%s): continue it with 'unimos adapt --resume %s', or replace it with --force", out, unimos.CheckpointFile, out)
	case !force:
		return usagef("%s already holds a run (%s): choose another --out, or replace it with --force", out, strings.Join(found, ", "))
	}
	for _, f := range found {
		if err := os.Remove(filepath.Join(out, f)); err != nil {
			return fmt.Errorf("replacing the run in %s: %w", out, err)
		}
	}
	return nil
}

// resumeFlags may be given with --resume: they change how the run is
// watched, not what it computes.
var resumeFlags = []string{"resume", "quiet", "checkpoint-every", "select"}

// resumeAdapt continues the stopped run in dir. Flags that would change what
// the run computes are refused when they differ from what its checkpoint
// saved: a resumed run must end as the uninterrupted run would have.
func resumeAdapt(ctx *context, fs *flag.FlagSet, dir string, opts runOptions) error {
	checkpoint := filepath.Join(dir, unimos.CheckpointFile)
	if _, err := os.Stat(checkpoint); err != nil {
		if _, done := os.Stat(filepath.Join(dir, unimos.ResultFile)); done == nil {
			return fmt.Errorf("%s is a finished run (see its %s): there is nothing to resume; start a new run with another --out", dir, unimos.ResultFile)
		}
		return fmt.Errorf("%s holds no stopped run (no %s): 'unimos adapt --resume' continues a run that was stopped with Ctrl-C or saved with --checkpoint-every", dir, unimos.CheckpointFile)
	}
	// Locked before the checkpoint is read: a run still going there may be
	// about to replace it.
	lock, err := unimos.LockRunDir(dir)
	if err != nil {
		return err
	}
	defer lock.Release()
	opts.lock = lock
	saved, err := unimos.ReadSavedRun(checkpoint)
	if err != nil {
		return fmt.Errorf("cannot resume %s: %w", dir, err)
	}
	if conflicts := resumeConflicts(fs, dir, saved); len(conflicts) > 0 {
		flags := "that flag"
		if len(conflicts) > 1 {
			flags = "those flags"
		}
		return usagef("--resume continues %s with the settings saved in its checkpoint, and the command line differs from them: %s. Drop %s, or start a new run with another --out",
			dir, strings.Join(conflicts, ", "), flags)
	}
	store, err := features.Open(saved.Features)
	if err != nil {
		return fmt.Errorf("cannot resume %s: its feature store: %w", dir, err)
	}
	opts.resume = true
	run, err := adapt(ctx, store, saved.Source, saved.Target, saved.Config, dir, opts)
	if err != nil {
		return err
	}
	printAdaptSummary(ctx, run, dir)
	return nil
}

// resumeConflicts lists the flags set on the command line that differ from
// the stopped run's checkpoint, each as "--name value (saved: value)".
func resumeConflicts(fs *flag.FlagSet, dir string, run *unimos.SavedRun) []string {
	saved := run.Config
	savedFlags := flag.NewFlagSet("", flag.ContinueOnError)
	savedCfg := saved
	bindAdaptFlags(savedFlags, &savedCfg)
	absDir, _ := filepath.Abs(dir)
	same := func(path, want string) bool {
		abs, err := filepath.Abs(path)
		return err == nil && abs == want
	}
	var conflicts []string
	fs.Visit(func(f *flag.Flag) {
		if slices.Contains(resumeFlags, f.Name) {
			return
		}
		given := f.Value.String()
		var was string
		switch f.Name {
		case "features":
			if same(given, run.Features) {
				return
			}
			was = run.Features
		case "source", "target":
			was = run.Source
			if f.Name == "target" {
				was = run.Target
			}
			if given == was {
				return
			}
		case "out":
			if same(given, absDir) {
				return
			}
			was = dir
		case "preset":
			if given == saved.Preset {
				return
			}
			was = saved.Preset
		case "force":
			conflicts = append(conflicts, "--force (nothing is replaced when a run is continued)")
			return
		default: // a hyperparameter: compare its value after parsing
			sf := savedFlags.Lookup(f.Name)
			if sf == nil {
				return
			}
			was = sf.Value.String()
			probe := saved
			probeFlags := flag.NewFlagSet("", flag.ContinueOnError)
			bindAdaptFlags(probeFlags, &probe)
			if probeFlags.Set(f.Name, given) == nil && reflect.DeepEqual(probe, saved) {
				return
			}
		}
		conflicts = append(conflicts, fmt.Sprintf("--%s %s (saved: %s)", f.Name, given, was))
	})
	return conflicts
}

// runOptions are adapt's command-line controls of a run.
type runOptions struct {
	quiet           bool
	checkpointEvery int
	resume          bool
	selectRule      string          // label-free criterion recorded as "selected"
	lock            *unimos.RunLock // the caller's lock on the run directory, if it took one
}

// adapt trains UniMoS on one task of a store, reporting progress on stderr
// unless quiet, and writes the run directory. SIGINT or SIGTERM stops the
// run between two iterations and leaves a checkpoint to resume from.
func adapt(ctx *context, store *features.Store, source, target string, cfg unimos.Config, out string, o runOptions) (*unimos.Result, error) {
	interrupted, release := interruptible(ctx.stderr, "a checkpoint to resume from")
	defer release()
	opts := unimos.RunOptions{
		Stop:            func() bool { return interrupted.Err() != nil },
		CheckpointEvery: o.checkpointEvery,
		Resume:          o.resume,
		Lock:            o.lock,
		Warn:            func(msg string) { progress.Printf(ctx.stderr, "warning: %s\n", msg) },
		Select:          o.selectRule,
	}
	if !o.quiet {
		var bar *progress.Bar
		start := time.Now()
		opts.OnIteration = func(epoch, i, perEpoch int, loss float64) {
			if i == 0 || bar == nil {
				bar = progress.New(ctx.stderr, fmt.Sprintf("epoch %d/%d", epoch+1, cfg.Epochs), "it", perEpoch)
			}
			bar.Update(i+1, fmt.Sprintf("loss %.3f", loss))
		}
		opts.OnEpoch = func(e unimos.Evaluation) {
			if bar != nil {
				bar.Clear()
			}
			fmt.Fprintln(ctx.stderr, epochLine(e, cfg.Epochs, time.Since(start)))
		}
	}
	result, err := unimos.AdaptStore(store, source, target, cfg, out, opts)
	if errors.Is(err, unimos.ErrStopped) {
		return nil, fmt.Errorf("interrupted: the run is saved in %s; continue it with: unimos adapt --resume %s", filepath.Join(out, unimos.CheckpointFile), out)
	}
	return result, err
}

// epochLine is the one-line account of an evaluation.
func epochLine(e unimos.Evaluation, epochs int, elapsed time.Duration) string {
	head := "before training"
	if e.Epoch > 0 {
		head = fmt.Sprintf("epoch %d/%d", e.Epoch, epochs)
	}
	acc := fmt.Sprintf("%-37s", "acc unlabelled") // as wide as the accuracies
	if e.Accuracy != nil {
		acc = fmt.Sprintf("acc %6.2f%%  vac %6.2f%%  lac %6.2f%%", *e.Accuracy, *e.VisionAccuracy, *e.LanguageAccuracy)
	}
	return fmt.Sprintf("%-15s %s  w %.3f  loss %7.3f  %6.1fs", head, acc, e.METWeight, e.Loss, elapsed.Seconds())
}

// printAdaptSummary reports a finished run on stdout: its accuracies, or
// that the target is unlabelled, and where the predictions are (unless out
// is "", for a run that is not kept). Every value starts in one column:
// text where the accuracies' digits do (" 57.87%").
func printAdaptSummary(ctx *context, r *unimos.Result, out string) {
	text := func(label, value string) { fmt.Fprintf(ctx.stdout, "  %-21s %s\n", label, value) }
	score := func(label string, acc float64, rest string) {
		fmt.Fprintf(ctx.stdout, "  %-21s%6.2f%%  %s\n", label, acc, rest)
	}
	fmt.Fprintf(ctx.stdout, "%s  (%s, %.1f s)\n", r.Task, words.Count(r.Epochs, "epoch"), r.TrainSeconds)
	switch {
	case r.Final == nil:
		text("accuracy", fmt.Sprintf("unlabelled (the target %s has no labels)", r.Target))
		if r.Selected != nil {
			text("selected", fmt.Sprintf("%s (chosen by %s without target labels)", epochName(r.Selected.Epoch), r.Selected.Criterion))
		}
	default:
		// The last test was made by this process, so its predictions and
		// metrics are at hand (result.json keeps neither).
		if last := r.History[len(r.History)-1]; last.Metrics != nil {
			if which := onLabelled(last.Metrics.Labelled, len(last.Predictions), "target image"); which != "" {
				text("accuracies", which)
			}
		}
		score("zero-shot CLIP", r.ZeroShot.Accuracy, fmt.Sprintf("(mean class %6.2f%%)", r.ZeroShot.MeanClassAccuracy))
		score("UniMoS, last epoch", r.Final.Accuracy, fmt.Sprintf("(mean class %6.2f%%)", r.Final.MeanClassAccuracy))
		score("oracle best epoch", r.Best.Accuracy, fmt.Sprintf("(%s, chosen with target labels)", epochName(r.Best.Epoch)))
		if r.Selected != nil && r.Selected.Accuracy != nil {
			score("selected epoch", *r.Selected.Accuracy, fmt.Sprintf("(%s, chosen by %s without target labels)", epochName(r.Selected.Epoch), r.Selected.Criterion))
		}
		if te := r.TemporalEnsemble; te != nil && te.Score != nil {
			score("temporal ensemble", te.Score.Accuracy, fmt.Sprintf("(mean of the outputs of %s; unimos's own addition)", words.Count(te.Epochs, "epoch")))
		}
	}
	if out != "" {
		text("predictions", filepath.Join(out, unimos.PredictionsFile))
	}
}
