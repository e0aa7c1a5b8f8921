package main

import (
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/unimos/unimos/clip"
	"github.com/unimos/unimos/features"
	"github.com/unimos/unimos/internal/atomicfile"
	"github.com/unimos/unimos/internal/progress"
	"github.com/unimos/unimos/tensor"
	"github.com/unimos/unimos/unimos"
)

func runPredict(ctx *context, args []string) error {
	fs := newFlags(ctx, "predict", "--model RUN_DIR (--features DIR --domain D | --clip WEIGHTS --images PATH...) [--json] [--output FILE]", `
Classifies images with a model that "unimos adapt" or "unimos bench" trained
(RUN_DIR/model.safetensors), exactly as the run's test after its last epoch:
the ensemble of the vision-associated classifier and the debiased
language-associated classifier with the final mixing weight. The class
names and the text classifier come from the model.

Either every row of domain D of a feature store (features of the model's
CLIP backbone), or image files and folders (searched recursively for
.jpg, .jpeg, .png, .bmp, .gif, .webp) encoded with the CLIP
weights WEIGHTS; the image paths come last on the command line.

Writes CSV (row, path, class, confidence) or, with --json, a JSON object, to
stdout or FILE. When D has labels and the store's classes are the model's,
the accuracy is printed on stderr (and included in the JSON).`)
	model := fs.String("model", "", "`RUN_DIR` of a run, or its model.safetensors")
	dir := fs.String("features", "", "feature store `DIR`")
	domain := fs.String("domain", "", "`DOMAIN` of the store to classify")
	weights := fs.String("clip", "", "CLIP `WEIGHTS` (safetensors) to encode --images with")
	images := fs.Bool("images", false, "classify the image files and folders given as arguments")
	asJSON := fs.Bool("json", false, "write JSON instead of CSV")
	output := fs.String("output", "", "write to `FILE` instead of stdout")
	if err := parseFlags(fs, args, anyArgs); err != nil {
		return err
	}
	if err := requireFlags(fs, "model"); err != nil {
		return err
	}
	switch {
	case *images && (*dir != "" || *domain != ""):
		return usagef("give either --features and --domain or --images, not both")
	case *images && *weights == "":
		return usagef("--images needs --clip WEIGHTS")
	case *images && fs.NArg() == 0:
		return usagef("--images needs at least one image file or folder")
	case !*images:
		if err := requireFlags(fs, "features", "domain"); err != nil {
			return err
		}
		if fs.NArg() > 0 {
			return usagef("unexpected argument %q (image paths need --images)", fs.Arg(0))
		}
	}

	path := *model
	if info, err := os.Stat(path); err == nil && info.IsDir() {
		path = filepath.Join(path, unimos.ModelFile)
	}
	m, err := unimos.LoadModel(path)
	if err != nil {
		return err
	}
	var in predictInput
	if *images {
		in, err = encodeImages(ctx, *weights, fs.Args(), m.Dim())
	} else {
		in, err = storeInput(ctx, *dir, *domain, m)
	}
	if err != nil {
		return err
	}
	e, err := m.Predict(in.features, in.labels)
	if err != nil {
		return fmt.Errorf("%s: %w", in.source, err)
	}
	report := predictionReport{Model: path, Input: in.source, Rows: len(e.Predictions)}
	if e.Metrics != nil {
		report.Accuracy, report.MeanClassAccuracy = &e.Metrics.Accuracy, &e.Metrics.MeanClassAccuracy
		fmt.Fprintf(ctx.stderr, "%d rows of %s: accuracy %.2f%%, mean class accuracy %.2f%% (against its labels)\n",
			len(e.Predictions), in.source, e.Metrics.Accuracy, e.Metrics.MeanClassAccuracy)
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
	if *output == "" {
		return write(ctx.stdout)
	}
	return atomicfile.Write(*output, write)
}

// predictInput is what predict classifies.
type predictInput struct {
	source   string         // the domain or "N images", for messages
	features *tensor.Matrix // [N, d], unit-norm rows
	labels   []int          // nil when unknown or not comparable
	paths    []string       // nil when unknown
}

// storeInput loads a domain of a store, with its labels when the store's
// classes are the model's.
func storeInput(ctx *context, dir, domain string, m *unimos.SavedModel) (predictInput, error) {
	store, err := features.Open(dir)
	if err != nil {
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

// predictImageTypes are the file extensions searched for in folders: the
// formats clip.LoadImage decodes.
var predictImageTypes = []string{".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp"}

// encodeBatch bounds the preprocessed images held at once ([3, n, n] each).
const encodeBatch = 64

// encodeImages collects the image files under paths and encodes them with
// the CLIP weights into unit-norm features of dimension dim.
func encodeImages(ctx *context, weights string, paths []string, dim int) (predictInput, error) {
	files, err := collectImages(paths)
	if err != nil {
		return predictInput{}, err
	}
	model, err := clip.Load(weights)
	if err != nil {
		return predictInput{}, err
	}
	if model.EmbedDim() != dim {
		return predictInput{}, fmt.Errorf("CLIP weights %s give %d-dimensional features but the UniMoS model takes %d: use the backbone the model was trained on",
			weights, model.EmbedDim(), dim)
	}
	x := tensor.New(len(files), dim)
	bar := progress.New(ctx.stderr, "encoding", "img", len(files))
	for lo := 0; lo < len(files); lo += encodeBatch {
		hi := min(lo+encodeBatch, len(files))
		batch := make([][]float32, 0, hi-lo)
		for _, f := range files[lo:hi] {
			img, err := clip.PreprocessFile(f, model.InputResolution())
			if err != nil {
				return predictInput{}, err
			}
			batch = append(batch, img)
		}
		enc, err := model.EncodeImages(batch)
		if err != nil {
			return predictInput{}, err
		}
		clip.NormalizeRows(enc)
		for i := range enc.Rows {
			copy(x.Row(lo+i), enc.Row(i))
		}
		bar.Update(hi, "")
	}
	bar.Clear()
	return predictInput{source: fmt.Sprintf("%d images", len(files)), features: x, paths: files}, nil
}

// collectImages returns the files named and the image files under the
// folders named (recursively, in lexical order).
func collectImages(paths []string) ([]string, error) {
	var files []string
	for _, p := range paths {
		info, err := os.Stat(p)
		if err != nil {
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
			if !d.IsDir() && slices.Contains(predictImageTypes, strings.ToLower(filepath.Ext(path))) {
				files = append(files, path)
			}
			return nil
		})
		if err != nil {
			return nil, err
		}
	}
	if len(files) == 0 {
		return nil, fmt.Errorf("no image files in %s", strings.Join(paths, ", "))
	}
	return files, nil
}

// predictionReport is predict's JSON output.
type predictionReport struct {
	Model             string           `json:"model"`
	Input             string           `json:"input"`
	Rows              int              `json:"rows"`
	Accuracy          *float64         `json:"accuracy,omitempty"`
	MeanClassAccuracy *float64         `json:"mean_class_accuracy,omitempty"`
	Predictions       []predictionJSON `json:"predictions"`
}

type predictionJSON struct {
	Row        int     `json:"row"`
	Path       string  `json:"path,omitempty"`
	Class      string  `json:"class"`
	Confidence float32 `json:"confidence"`
}
