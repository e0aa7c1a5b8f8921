package main

import (
	"encoding/json"
	"fmt"
	"io"

	"github.com/unimos/unimos/baseline"
	"github.com/unimos/unimos/features"
	"github.com/unimos/unimos/internal/words"
)

// accuracyJSON is the machine-readable form of an evaluation, in percent.
type accuracyJSON struct {
	Accuracy          float64 `json:"accuracy"`
	MeanClassAccuracy float64 `json:"mean_class_accuracy"`
}

// zeroShotJSON is what `unimos zeroshot --json` prints. A domain without
// labels has no accuracies: the embedded pointer is nil and its fields are
// left out, so that no number is mistaken for one.
type zeroShotJSON struct {
	Domain   string `json:"domain"`
	Images   int    `json:"images"`
	Labelled int    `json:"labelled"`
	*accuracyJSON
}

func runZeroShot(ctx *context, args []string) error {
	fs := newFlags(ctx, "zeroshot", "--features DIR --domain DOMAIN [--json]", `
Classifies every image of a domain by CLIP zero-shot: the class whose text
embedding ("a {domain} photo of a {class}.") has the highest cosine
similarity with the image embedding. Prints accuracy and mean class accuracy
in percent over the labelled images; for a domain without labels it prints
"unlabelled" instead.

--json prints {"domain": D, "images": M, "labelled": N, "accuracy": pct,
"mean_class_accuracy": pct}; for a domain without labels, {"domain": D,
"images": M, "labelled": 0} with no accuracy fields.`)
	dir := fs.String("features", "", "feature store `DIR`")
	domain := fs.String("domain", "", "`DOMAIN` to classify")
	asJSON := fs.Bool("json", false, "print the result as JSON (see above)")
	deprecatedFlag(ctx, fs, "target", "domain")
	if err := parseFlags(fs, args, 0); err != nil {
		return err
	}
	if err := requireFlags(fs, "features", "domain"); err != nil {
		return err
	}
	store, err := features.Open(*dir)
	if err != nil {
		return err
	}
	d, err := store.Domain(*domain)
	if err != nil {
		return err
	}
	result := zeroShotJSON{Domain: *domain, Images: len(d.Labels)}
	for _, y := range d.Labels {
		if y >= 0 {
			result.Labelled++
		}
	}
	if result.Labelled > 0 {
		m, err := baseline.EvaluateZeroShot(store, d)
		if err != nil {
			return err
		}
		result.accuracyJSON = &accuracyJSON{m.Accuracy, m.MeanClassAccuracy}
	}
	if *asJSON {
		return writeJSON(ctx.stdout, result)
	}
	printZeroShot(ctx, result, len(store.Meta.Classes))
	return nil
}

// printZeroShot writes the result as a heading and two lines, with
// "unlabelled" in place of the accuracies of a domain without labels.
func printZeroShot(ctx *context, r zeroShotJSON, classes int) {
	heading := fmt.Sprintf("zero-shot on %s (%s)", r.Domain, words.Count(classes, "class"))
	acc, mca := "unlabelled", "unlabelled"
	switch {
	case r.accuracyJSON == nil:
		heading += fmt.Sprintf(": %s, none labelled", words.Count(r.Images, "image"))
	case r.Labelled < r.Images:
		heading += fmt.Sprintf(", on %s of %d", words.Count(r.Labelled, "labelled image"), r.Images)
	default:
		heading += ", on " + words.Count(r.Labelled, "labelled image")
	}
	if r.accuracyJSON != nil {
		acc, mca = fmt.Sprintf("%6.2f%%", r.Accuracy), fmt.Sprintf("%6.2f%%", r.MeanClassAccuracy)
	}
	fmt.Fprintf(ctx.stdout, "%s\naccuracy            %s\nmean class accuracy %s\n", heading, acc, mca)
}

func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}
