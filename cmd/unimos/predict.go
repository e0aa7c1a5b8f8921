package main

import (
	gocontext "context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/unimos/unimos/clip"
	"github.com/unimos/unimos/eval"
	"github.com/unimos/unimos/extract"
	"github.com/unimos/unimos/features"
	"github.com/unimos/unimos/internal/atomicfile"
	"github.com/unimos/unimos/internal/imagefile"
	"github.com/unimos/unimos/internal/progress"
	"github.com/unimos/unimos/internal/words"
	"github.com/unimos/unimos/tensor"
	"github.com/unimos/unimos/unimos"
)

// skippedSuffix names the file beside --out FILE that lists the images
// predict could not decode: FILE.skipped.txt.
const skippedSuffix = ".skipped.txt"

func runPredict(ctx *context, args []string) error {
	fs := newFlags(ctx, "predict", "--model RUN_DIR (--features DIR --domain D | --weights WEIGHTS IMAGE...) [--json] [--out FILE] [--force]", fmt.Sprintf(`
Classifies with a model that "unimos adapt" or "unimos bench" trained
(RUN_DIR/model.safetensors), exactly as the run's test after its last epoch:
the ensemble of the vision-associated classifier and the debiased
language-associated classifier with the final mixing weight. The class
names and the text classifier come from the model.

Either every row of domain D of a feature store, or image files and folders
encoded with the CLIP weights --weights. Folders are searched recursively
for the image types %s (any case).
Image paths come after the flags, or each after --images.

The features must come from the CLIP weights the model was trained on: the
model records them (name and fingerprint, from its training store), and
predict refuses other weights, or a store of their features, unless
--force. Models saved before this was recorded, or trained on a store that
does not record its weights (imported or generated), cannot be checked: a
note on stderr says so.

Images that cannot be decoded are skipped, each with a line "skipped PATH:
reason" on stderr; the JSON lists them under "skipped", and with --out FILE
they are listed, one "PATH<tab>reason" per line, in FILE%s. When no
image can be decoded, the command fails.

Writes CSV (row, path, class, confidence) or, with --json, a JSON object, to
stdout or FILE. When the store's classes are the model's, the accuracy on the
labelled rows of D is printed on stderr (and included in the JSON), or
"unlabelled" when D has no labels.`, strings.Join(imagefile.Extensions, " "), skippedSuffix))
	model := fs.String("model", "", "`RUN_DIR` of a run, or its model.safetensors")
	dir := fs.String("features", "", "feature store `DIR`")
	domain := fs.String("domain", "", "`DOMAIN` of the store to classify")
	weights := fs.String("weights", "", weightsUsage)
	var images imagePaths
	fs.Var(&images, "images", "image file or folder `PATH` to classify, repeatable (paths after the flags need no --images)")
	asJSON := fs.Bool("json", false, "write JSON instead of CSV")
	out := fs.String("out", "", "write to `FILE` instead of stdout (and the skipped images to FILE"+skippedSuffix+")")
	force := fs.Bool("force", false, "classify even if the features come from other CLIP weights than the model's")
	deprecatedFlag(ctx, fs, "clip", "weights")
	deprecatedFlag(ctx, fs, "output", "out")
	if err := parseFlags(fs, args, anyArgs); err != nil {
		return err
	}
	if err := requireFlags(fs, "model"); err != nil {
		return err
	}
	for _, arg := range fs.Args() {
		if strings.HasPrefix(arg, "-") {
			return usagef("flag %s after the image paths: put the flags before the paths", arg)
		}
	}
	images = append(images, fs.Args()...)
	fromStore := *dir != "" || *domain != ""
	switch {
	case fromStore && len(images) > 0:
		return usagef("give either --features DIR --domain D or images, not both")
	case fromStore && *weights != "":
		return usagef("--weights encodes images; a store holds features already (leave out --weights)")
	case fromStore:
		if err := requireFlags(fs, "features", "domain"); err != nil {
			return err
		}
	case len(images) == 0:
		return usagef("give --features DIR --domain D, or image files and folders with --weights")
	case *weights == "":
		return usagef("classifying images needs --weights, the CLIP weights the model was trained on")
	}

	path := unimos.ModelPath(*model)
	m, err := unimos.LoadModel(path)
	if err != nil {
		return err
	}
	var in predictInput
	if fromStore {
		in, err = storeInput(ctx, *dir, *domain, m, *force)
	} else {
		in, err = encodeImages(ctx, *weights, images, m, *force)
	}
	if err != nil {
		return err
	}
	e, err := m.Predict(in.features, in.labels)
	if err != nil {
		return fmt.Errorf("%s: %w", in.source, err)
	}
	report := predictionReport{Model: path, Input: in.source, Rows: len(e.Predictions), Skipped: in.skipped}
	if in.labels != nil {
		printPredictAccuracy(ctx, &report, e.Metrics)
	}
	write := func(w io.Writer) error {
		if !*asJSON {
			return unimos.EncodePredictions(w, e, m.Classes, in.paths)
		}
		for i, c := range e.Predictions {
			p := predictionJSON{Row: i, Class: m.Classes[c], Confidence: e.Confidences[i]}
			if in.paths != nil {
				p.Path = in.paths[i]
			}
			report.Predictions = append(report.Predictions, p)
		}
		return writeJSON(w, report)
	}
	if *out == "" {
		return write(ctx.stdout)
	}
	if err := atomicfile.Write(*out, write); err != nil {
		return err
	}
	return writeSkipped(*out+skippedSuffix, in.skipped)
}

// printPredictAccuracy reports on stderr, and in the JSON report, the
// accuracy of predictions of labelled rows (metrics nil: none is
// labelled), saying which rows it is on when only some are labelled.
func printPredictAccuracy(ctx *context, report *predictionReport, metrics *eval.Metrics) {
	head := words.Count(report.Rows, "row") + " of " + report.Input
	if metrics == nil {
		report.Labelled = new(int)
		fmt.Fprintf(ctx.stderr, "%s: accuracy unlabelled, mean class accuracy unlabelled (no row has a label)\n", head)
		return
	}
	report.Labelled = &metrics.Labelled
	report.Accuracy, report.MeanClassAccuracy = &metrics.Accuracy, &metrics.MeanClassAccuracy
	which := onLabelled(metrics.Labelled, report.Rows, "row")
	if which == "" {
		which = "against its labels"
	}
	fmt.Fprintf(ctx.stderr, "%s: accuracy %.2f%%, mean class accuracy %.2f%% (%s)\n", head, metrics.Accuracy, metrics.MeanClassAccuracy, which)
}

// imagePaths collects the values of repeated --images flags.
type imagePaths []string

func (p *imagePaths) String() string { return strings.Join(*p, " ") }

func (p *imagePaths) Set(s string) error {
	*p = append(*p, s)
	return nil
}

// predictInput is what predict classifies.
type predictInput struct {
	source   string         // "domain D" or "N images", for messages
	features *tensor.Matrix // [N, d], unit-norm rows
	labels   []int          // nil when unknown or not comparable
	paths    []string       // nil when unknown
	skipped  []skippedImage // images that could not be decoded
}

// skippedImage is an image predict could not decode, and why.
type skippedImage struct {
	Path   string `json:"path"`
	Reason string `json:"reason"`
}

// storeInput loads a domain of a store, with its labels when the store's
// classes are the model's, after checking that its features come from the
// model's CLIP weights.
func storeInput(ctx *context, dir, domain string, m *unimos.SavedModel, force bool) (predictInput, error) {
	store, err := features.Open(dir)
	if err != nil {
		return predictInput{}, err
	}
	got := unimos.Backbone{Name: store.Meta.Backbone, Fingerprint: store.Meta.Fingerprint}
	if err := checkBackbone(ctx, m.Backbone, got, "store "+dir,
		"use a store extracted with the weights the model was trained on", force); err != nil {
		return predictInput{}, err
	}
	d, err := store.Domain(domain)
	if err != nil {
		return predictInput{}, err
	}
	in := predictInput{source: "domain " + domain, features: d.Features, paths: d.Paths}
	if slices.Equal(store.Meta.Classes, m.Classes) {
		in.labels = d.Labels
	} else {
		fmt.Fprintf(ctx.stderr, "note: the store's classes differ from the model's; its labels are not used\n")
	}
	return in, nil
}

// encodeImages collects the image files under paths and encodes them with
// the CLIP weights, after checking that those are the weights the model was
// trained on, into unit-norm features, as extract encodes (extract.EncodeFiles:
// decoding workers ahead of the model). Files that cannot be decoded are
// skipped and reported on stderr; it is an error when none can be.
func encodeImages(ctx *context, weights string, paths []string, m *unimos.SavedModel, force bool) (predictInput, error) {
	files, err := collectImages(paths)
	if err != nil {
		return predictInput{}, err
	}
	model, err := clip.Load(weights)
	if err != nil {
		return predictInput{}, err
	}
	note, err := m.CheckCLIP(model, weights, force)
	if note != "" {
		fmt.Fprintln(ctx.stderr, note)
	}
	if err != nil {
		return predictInput{}, err
	}

	bar := progress.New(ctx.stderr, "encoding", "img", len(files))
	enc, err := extract.EncodeFiles(gocontext.Background(), model, files, extract.DefaultWorkers(), func(done int, skipped []extract.Skip) {
		for _, s := range skipped {
			progress.Printf(ctx.stderr, "skipped %s: %s\n", s.Name, s.Reason) // the bar comes back below it
		}
		bar.Update(done, "")
	})
	bar.Clear()
	if err != nil {
		return predictInput{}, err
	}
	in := predictInput{features: enc.Features, paths: enc.Files}
	for _, s := range enc.Skipped {
		in.skipped = append(in.skipped, skippedImage{Path: s.Name, Reason: s.Reason})
	}
	if len(in.paths) == 0 {
		first := in.skipped[0]
		if len(files) == 1 {
			return predictInput{}, fmt.Errorf("%s: %s", first.Path, first.Reason)
		}
		return predictInput{}, fmt.Errorf("none of the %d image files could be decoded (first: %s: %s)",
			len(files), first.Path, first.Reason)
	}
	if len(in.skipped) > 0 {
		fmt.Fprintf(ctx.stderr, "skipped %d of %s: %s could not be decoded\n", len(in.skipped), words.Count(len(files), "image file"), words.Agree(len(in.skipped), "it", "they"))
	}
	in.source = words.Count(len(in.paths), "image")
	return in, nil
}

// checkBackbone is unimos.CheckBackbone, its note printed on stderr.
func checkBackbone(ctx *context, want, got unimos.Backbone, source, advice string, force bool) error {
	note, err := unimos.CheckBackbone(want, got, source, advice, force)
	if note != "" {
		fmt.Fprintln(ctx.stderr, note)
	}
	return err
}

// collectImages returns the files named and the image files
// (imagefile.Is) under the folders named, recursively, in lexical order.
func collectImages(paths []string) ([]string, error) {
	var files []string
	for _, p := range paths {
		info, err := os.Stat(p)
		if errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("%s: no such file or folder", p)
		} else if err != nil {
			return nil, err
		}
		if !info.IsDir() {
			files = append(files, p)
			continue
		}
		err = filepath.WalkDir(p, func(path string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if !d.IsDir() && imagefile.Is(path) {
				files = append(files, path)
			}
			return nil
		})
		if err != nil {
			return nil, err
		}
	}
	if len(files) == 0 {
		return nil, fmt.Errorf("no image files (%s) in %s", strings.Join(imagefile.Extensions, " "), strings.Join(paths, ", "))
	}
	return files, nil
}

// writeSkipped lists the skipped images in path, one "PATH<tab>reason" per
// line, or removes path when no image was skipped, so that a list left by an
// earlier run does not describe this one.
func writeSkipped(path string, skipped []skippedImage) error {
	if len(skipped) == 0 {
		if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return err
		}
		return nil
	}
	return atomicfile.Write(path, func(w io.Writer) error {
		for _, s := range skipped {
			if _, err := fmt.Fprintf(w, "%s\t%s\n", s.Path, s.Reason); err != nil {
				return err
			}
		}
		return nil
	})
}

// predictionReport is predict's JSON output.
type predictionReport struct {
	Model             string           `json:"model"`
	Input             string           `json:"input"`
	Rows              int              `json:"rows"`
	Labelled          *int             `json:"labelled,omitempty"` // rows with a label, for a domain of a store with the model's classes
	Accuracy          *float64         `json:"accuracy,omitempty"`
	MeanClassAccuracy *float64         `json:"mean_class_accuracy,omitempty"`
	Predictions       []predictionJSON `json:"predictions"`
	Skipped           []skippedImage   `json:"skipped,omitempty"`
}

type predictionJSON struct {
	Row        int     `json:"row"`
	Path       string  `json:"path,omitempty"`
	Class      string  `json:"class"`
	Confidence float32 `json:"confidence"`
}
