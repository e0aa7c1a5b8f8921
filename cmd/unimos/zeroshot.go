package main

import (
	"encoding/json"
	"fmt"
	"io"

	"github.com/unimos/unimos/baseline"
	"github.com/unimos/unimos/features"
)

// accuracyJSON is the machine-readable form of an evaluation, in percent.
type accuracyJSON struct {
	Accuracy          float64 `json:"accuracy"`
	MeanClassAccuracy float64 `json:"mean_class_accuracy"`
}

func runZeroShot(ctx *context, args []string) error {
	fs := newFlags(ctx, "zeroshot", "--features DIR --target DOMAIN [--json]", `
Classifies every image of the target domain by CLIP zero-shot: the class whose
text embedding ("a {domain} photo of a {class}.") has the highest cosine
similarity with the image embedding. Prints accuracy and mean class accuracy
in percent; the domain must have labels.`)
	dir := fs.String("features", "", "feature store `DIR`")
	target := fs.String("target", "", "`DOMAIN` to classify")
	asJSON := fs.Bool("json", false, `print {"accuracy": pct, "mean_class_accuracy": pct}`)
	if err := parseFlags(fs, args, 0); err != nil {
		return err
	}
	if err := requireFlags(fs, "features", "target"); err != nil {
		return err
	}
	store, err := features.Open(*dir)
	if err != nil {
		return err
	}
	d, err := store.Domain(*target)
	if err != nil {
		return err
	}
	m, err := baseline.EvaluateZeroShot(store, d)
	if err != nil {
		return err
	}
	if *asJSON {
		return writeJSON(ctx.stdout, accuracyJSON{m.Accuracy, m.MeanClassAccuracy})
	}
	fmt.Fprintf(ctx.stdout, "zero-shot on %s (%d labelled images, %d classes)\n", *target, m.Labelled, len(store.Meta.Classes))
	fmt.Fprintf(ctx.stdout, "accuracy            %6.2f%%\nmean class accuracy %6.2f%%\n", m.Accuracy, m.MeanClassAccuracy)
	return nil
}

func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}
