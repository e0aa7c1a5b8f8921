package main

import (
	"fmt"
	"slices"
	"text/tabwriter"

	"github.com/unimos/unimos/baseline"
	"github.com/unimos/unimos/features"
	"github.com/unimos/unimos/internal/words"
)

// domainReport describes one domain of a feature store.
type domainReport struct {
	Name       string `json:"name"`
	Images     int    `json:"images"`
	Labelled   int    `json:"labelled"`
	Unlabelled int    `json:"unlabelled"`
	DType      string `json:"dtype"`
	// ClassCounts[k] is the number of images labelled with class k.
	ClassCounts []int `json:"class_counts"`
	// ZeroShot is nil when the domain has no labels.
	ZeroShot *accuracyJSON `json:"zero_shot,omitempty"`
}

// storeReport is what `unimos inspect --json` prints.
type storeReport struct {
	Dir      string `json:"dir"`
	Name     string `json:"name"`
	Backbone string `json:"backbone"`
	Dim      int    `json:"dim"`
	// Precision is the encoders' product precision the store records, f32
	// when it records none.
	Precision string         `json:"precision"`
	Classes   []string       `json:"classes"`
	Domains   []domainReport `json:"domains"`
}

func runInspect(ctx *context, args []string) error {
	fs := newFlags(ctx, "inspect", "[--json] [--per-class] (--features DIR | DIR)", `
Describes the feature store DIR: its backbone, embedding dimension and
classes, and per domain the number of images, how many are labelled, the
storage type, the images per class and the CLIP zero-shot accuracy on the
labelled images. A domain without labels shows "unlabelled" for its
accuracies (and has no "zero_shot" in the JSON); a domain with some
unlabelled images is named below the table with their number.`)
	dir := fs.String("features", "", "feature store `DIR` (or give DIR as the argument)")
	asJSON := fs.Bool("json", false, "print the report as JSON")
	perClass := fs.Bool("per-class", false, "also print the number of images of every class in every domain")
	deprecatedFlag(ctx, fs, "classes", "per-class")
	if err := parseFlags(fs, args, anyArgs); err != nil {
		return err
	}
	switch {
	case *dir != "" && fs.NArg() > 0:
		return usagef("unexpected argument %q: --features already names the store", fs.Arg(0))
	case *dir == "" && fs.NArg() != 1:
		return usagef("want 1 argument, the feature store DIR (or --features DIR), got %d", fs.NArg())
	case *dir == "":
		*dir = fs.Arg(0)
	}
	store, err := features.Open(*dir)
	if err != nil {
		return err
	}
	report, err := inspectStore(store)
	if err != nil {
		return err
	}
	if *asJSON {
		return writeJSON(ctx.stdout, report)
	}
	printStoreReport(ctx, report, *perClass)
	return nil
}

func inspectStore(store *features.Store) (*storeReport, error) {
	meta := store.Meta
	report := &storeReport{Dir: store.Dir, Name: meta.Name, Backbone: meta.Backbone, Dim: meta.Dim, Precision: meta.ProductPrecision(), Classes: meta.Classes}
	for _, name := range meta.Domains {
		d, err := store.Domain(name)
		if err != nil {
			return nil, err
		}
		r := domainReport{Name: name, Images: len(d.Labels), DType: string(d.DType), ClassCounts: make([]int, len(meta.Classes))}
		for _, y := range d.Labels {
			if y >= 0 {
				r.ClassCounts[y]++
				r.Labelled++
			}
		}
		r.Unlabelled = r.Images - r.Labelled
		if r.Labelled > 0 {
			m, err := baseline.EvaluateZeroShot(store, d)
			if err != nil {
				return nil, err
			}
			r.ZeroShot = &accuracyJSON{m.Accuracy, m.MeanClassAccuracy}
		}
		report.Domains = append(report.Domains, r)
	}
	return report, nil
}

func printStoreReport(ctx *context, r *storeReport, perClass bool) {
	backbone := r.Backbone
	if r.Precision != "f32" {
		backbone += " (" + r.Precision + " products)"
	}
	fmt.Fprintf(ctx.stdout, "%s: %s, backbone %s, dim %d, %s\n\n", r.Dir, r.Name, backbone, r.Dim, words.Count(len(r.Classes), "class"))
	tw := tabwriter.NewWriter(ctx.stdout, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "domain\timages\tlabelled\tdtype\timages/class min\tmedian\tmax\tzero-shot acc\tmean class acc\t")
	for _, d := range r.Domains {
		counts := slices.Clone(d.ClassCounts)
		slices.Sort(counts)
		least, median, most := fmt.Sprint(counts[0]), fmt.Sprint(counts[len(counts)/2]), fmt.Sprint(counts[len(counts)-1])
		zs, mca := "unlabelled", "unlabelled"
		if d.ZeroShot != nil {
			zs, mca = fmt.Sprintf("%.2f%%", d.ZeroShot.Accuracy), fmt.Sprintf("%.2f%%", d.ZeroShot.MeanClassAccuracy)
		}
		if d.Labelled == 0 { // no class is known: no counts per class
			least, median, most = "-", "-", "-"
		}
		fmt.Fprintf(tw, "%s\t%d\t%d\t%s\t%s\t%s\t%s\t%s\t%s\t\n", d.Name, d.Images, d.Labelled, d.DType,
			least, median, most, zs, mca)
	}
	tw.Flush()
	for _, d := range r.Domains {
		if d.Labelled > 0 && d.Unlabelled > 0 {
			fmt.Fprintf(ctx.stdout, "%s: %s unlabelled, %d labelled; the zero-shot accuracies are on the labelled ones\n",
				d.Name, words.Count(d.Unlabelled, "image"), d.Labelled)
		}
	}
	if !perClass {
		return
	}
	fmt.Fprintln(ctx.stdout)
	tw = tabwriter.NewWriter(ctx.stdout, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprint(tw, "class\t")
	for _, d := range r.Domains {
		fmt.Fprintf(tw, "%s\t", d.Name)
	}
	fmt.Fprintln(tw)
	for k, class := range r.Classes {
		fmt.Fprintf(tw, "%s\t", class)
		for _, d := range r.Domains {
			fmt.Fprintf(tw, "%d\t", d.ClassCounts[k])
		}
		fmt.Fprintln(tw)
	}
	tw.Flush()
}
