package main

import (
	"fmt"
	"strings"

	"github.com/unimos/unimos/synth"
)

func runSynth(ctx *context, args []string) error {
	fs := newFlags(ctx, "synth", "--out DIR [--preset NAME] [--seed N]", `
Writes a synthetic feature store whose geometry resembles real CLIP features
(modality gap, cosine logits, domain shift, class imbalance), sized like a
real benchmark. The same preset and seed always give the same bytes.

Presets: `+strings.Join(synth.PresetNames(), ", "))
	preset := fs.String("preset", "office-home", "benchmark `NAME` to imitate")
	out := fs.String("out", "", "feature store `DIR` to write")
	seed := fs.Uint64("seed", 2023, "random seed")
	if err := parseFlags(fs, args, 0); err != nil {
		return err
	}
	if err := requireFlags(fs, "preset", "out"); err != nil {
		return err
	}
	p, err := synth.PresetByName(*preset)
	if err != nil {
		return usageError{err.Error()}
	}
	if err := synth.Write(*out, p, *seed); err != nil {
		return err
	}
	fmt.Fprintf(ctx.stdout, "wrote %s (preset %s, seed %d)\n", *out, p.Name, *seed)
	return nil
}
