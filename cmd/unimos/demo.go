package main

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"text/tabwriter"

	"github.com/unimos/unimos/baseline"
	"github.com/unimos/unimos/features"
	"github.com/unimos/unimos/internal/words"
	"github.com/unimos/unimos/synth"
	"github.com/unimos/unimos/unimos"
)

func runDemo(ctx *context, args []string) error {
	fs := newFlags(ctx, "demo", "[--seed N] [--source D] [--target D] [--epochs E] [--out DIR]", `
Generates a synthetic Office-Home-like feature store (CLIP RN50-like, dim 1024,
65 classes, domains Art, Clipart, Product, Real_World), reports CLIP zero-shot
accuracy on every domain, then adapts from one domain to another with UniMoS
(Office-Home preset) and compares the two. Needs nothing downloaded.`)
	seed := fs.Uint64("seed", 2023, "random seed of the generated benchmark and of training")
	source := fs.String("source", "Art", "source `DOMAIN` of the adaptation task")
	target := fs.String("target", "Clipart", "target `DOMAIN` of the adaptation task")
	epochs := fs.Int("epochs", 20, "training epochs (the Office-Home preset trains 50; 20 keep the demo under a minute)")
	out := fs.String("out", "", "write the store and the run to `DIR` and keep them (default: a temporary folder, removed)")
	deprecatedFlag(ctx, fs, "keep", "out")
	if err := parseFlags(fs, args, 0); err != nil {
		return err
	}
	p, err := synth.PresetByName("office-home")
	if err != nil {
		return err
	}
	var domains []string
	for _, d := range p.Domains {
		domains = append(domains, d.Name)
	}
	for _, d := range []string{*source, *target} {
		if !slices.Contains(domains, d) {
			return usagef("domain %q is not in the demo benchmark (choose from %s)", d, strings.Join(domains, ", "))
		}
	}
	if *source == *target {
		return usagef("--source and --target are both %q", *source)
	}
	if *epochs < 1 {
		return usagef("--epochs must be at least 1, got %d", *epochs)
	}
	dir := *out
	if dir == "" {
		tmp, err := os.MkdirTemp("", "unimos-demo-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(tmp)
		dir = tmp
	}
	fmt.Fprintf(ctx.stdout, "Generating a synthetic %s benchmark (seed %d) in %s ...\n", p.Name, *seed, dir)
	if err := synth.Write(dir, p, *seed); err != nil {
		return err
	}
	store, err := features.Open(dir)
	if err != nil {
		return err
	}
	fmt.Fprintf(ctx.stdout, "%d classes, dim %d\n\n", len(store.Meta.Classes), store.Meta.Dim)
	tw := tabwriter.NewWriter(ctx.stdout, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "domain\timages\tzero-shot acc\tmean class acc\t")
	for _, name := range store.Meta.Domains {
		d, err := store.Domain(name)
		if err != nil {
			return err
		}
		m, err := baseline.EvaluateZeroShot(store, d)
		if err != nil {
			return err
		}
		fmt.Fprintf(tw, "%s\t%d\t%.2f%%\t%.2f%%\t\n", name, len(d.Labels), m.Accuracy, m.MeanClassAccuracy)
	}
	if err := tw.Flush(); err != nil {
		return err
	}

	cfg, err := unimos.Preset("office-home")
	if err != nil {
		return err
	}
	cfg.Seed, cfg.Epochs = *seed, *epochs
	fmt.Fprintf(ctx.stdout, "\nUniMoS %s -> %s (%s; progress on stderr) ...\n", *source, *target, words.Count(cfg.Epochs, "epoch"))
	runDir := filepath.Join(dir, "run")
	run, err := adapt(ctx, store, *source, *target, cfg, runDir, runOptions{})
	if err != nil {
		return err
	}
	fmt.Fprintln(ctx.stdout)
	if *out == "" {
		runDir = "" // removed on return
	}
	printAdaptSummary(ctx, run, runDir)
	return nil
}
