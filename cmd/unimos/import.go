package main

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/unimos/unimos/extract"
	"github.com/unimos/unimos/features"
	"github.com/unimos/unimos/internal/words"
	"github.com/unimos/unimos/interop"
	"github.com/unimos/unimos/tensor"
)

// importedFromKey is the metadata entry of an imported domain file that
// names the file its features came from.
const importedFromKey = "imported_from"

// maxClassesFromLabels bounds the number of classes inferred from labels,
// so that one corrupt label cannot make import allocate millions of class
// names; ImageNet-21k, among the largest label sets, has 21,841.
const maxClassesFromLabels = 1 << 20

func runImport(ctx *context, args []string) error {
	fs := newFlags(ctx, "import", "--out DIR --domain NAME --from FILE [--labels FILE] [--paths FILE] [--text FILE] [--classes FILE] [flags]", `
Adds one domain to the feature store DIR, or replaces the domain of that
name, from features another tool wrote. DIR and its dataset.json are created
when DIR holds no store yet.

--from FILE is one of
  .npy        a float16/32/64 array [N, d] (numpy.save); labels from --labels
  .npz        arrays "features" [N, d] and "labels" [N] (numpy.savez)
  .pth, .pt   the reference UniMoS feature cache, torch.save of
              {'fea': [N, d], 'label': [N]}; the pickle is read by a
              restricted reader that rebuilds tensors and refuses anything else
--labels (.npy, integers [N]) overrides the labels of a .npz or .pth. Label -1
marks an unlabelled image; without labels every image is unlabelled, as for
a target domain. Rows that are not unit-norm are L2-normalised.

--paths FILE names the image of every feature row, one path a line (no blank
lines, as many lines as rows); it becomes the domain's <NAME>.paths.txt, so
that predictions name their images. A domain replaced without --paths loses
the paths file of its old rows.

--text FILE holds the domain's class text features [K, d] in any of these
formats (in a .npz or .pth file, the array "text_features" or the only one).
Zero-shot evaluation needs them, and so does UniMoS when this domain is its
target.

The number of classes K is that of the existing store's dataset.json; for a
new store, the number of --classes lines, else the rows of --text, else the
largest label + 1. --classes and --text must agree with K, and labels must
lie in [-1, K). Classes without a name file are called class_0, class_1, ...`)
	dir := fs.String("out", "", "feature store `DIR` to create or add to")
	domain := fs.String("domain", "", "`NAME` of the domain to add or replace")
	from := fs.String("from", "", "image features `FILE` (.npy, .npz, .pth or .pt)")
	labelsFile := fs.String("labels", "", "labels `FILE` (.npy, integers [N], -1 = unlabelled)")
	pathsFile := fs.String("paths", "", "image paths `FILE`, one line per feature row")
	textFile := fs.String("text", "", "class text features `FILE` [K, d] (.npy, .npz, .pth or .pt)")
	classFile := fs.String("classes", "", "class names `FILE`, one per line (or \"INDEX NAME\" lines)")
	name := fs.String("name", "", "dataset `NAME` of a new store (default: the base name of DIR)")
	backbone := fs.String("backbone", "", "`MODEL` the features come from, recorded in a new store's dataset.json (default \"unknown\")")
	dtype := fs.String("dtype", "", "storage `TYPE` of the features, f16 or f32 (default: f16 for float16 input, else f32)")
	deprecatedFlag(ctx, fs, "features", "from")
	if err := parseFlags(fs, args, 0); err != nil {
		return err
	}
	if err := requireFlags(fs, "out", "domain", "from"); err != nil {
		return err
	}
	storeType, err := parseDType(*dtype)
	if err != nil {
		return err
	}
	store, isNew, err := openOrNewStore(*dir)
	if err != nil {
		return err
	}
	if err := checkStoreNames(store, isNew, *name, *backbone); err != nil {
		return err
	}
	in, err := readImportInputs(ctx, importFiles{*from, *labelsFile, *pathsFile, *textFile, *classFile})
	if err != nil {
		return err
	}
	if err := in.fitStore(ctx, store, isNew); err != nil {
		return err
	}
	labels, labelled, err := in.domainLabels(len(store.Meta.Classes))
	if err != nil {
		return err
	}
	if in.labels == nil {
		fmt.Fprintf(ctx.stderr, "note: %s has no labels (and no --labels given): domain %q is unlabelled (%s), as a target domain may be\n",
			*from, *domain, words.Count(len(labels), "image"))
	}
	if storeType == "" {
		storeType = features.F32
		if in.inputDType == "float16" {
			storeType = features.F16
		}
	}
	d := &features.Domain{
		Name:     *domain,
		Features: in.image,
		Labels:   labels,
		Paths:    in.paths,
		DType:    storeType,
		Metadata: map[string]string{importedFromKey: *from},
	}
	textPath := filepath.Join(*dir, features.TextDir, *domain+".safetensors")
	hadText := fileExists(textPath)
	oldPaths := filepath.Join(*dir, *domain+".paths.txt")
	hadPaths := fileExists(oldPaths)
	replaced, err := store.PutDomain(d, in.text)
	if err != nil {
		return err
	}
	switch {
	case replaced:
		fmt.Fprintf(ctx.stderr, "note: replaced the domain %q of %s\n", *domain, *dir)
	case isNew:
		fmt.Fprintf(ctx.stderr, "note: created the feature store %s\n", *dir)
	}
	if hadPaths && in.paths == nil {
		fmt.Fprintf(ctx.stderr, "note: removed %s, the image paths of the replaced rows; give --paths to name the images of the new ones\n", oldPaths)
	}
	switch {
	case in.text == nil && hadText:
		fmt.Fprintf(ctx.stderr, "note: kept the text features %s written before\n", textPath)
	case in.text == nil:
		fmt.Fprintf(ctx.stderr, "warning: no text features for %q (--text): zero-shot evaluation, and UniMoS with %q as its target, need %s\n",
			*domain, *domain, textPath)
	}
	fmt.Fprintf(ctx.stdout, "%s: domain %s imported from %s: %s (%d labelled), %s features [%d], %s\n",
		*dir, *domain, *from, words.Count(len(labels), "image"), labelled, storeType, in.image.Cols, words.Count(len(store.Meta.Classes), "class"))
	return nil
}

// importFiles names the input files of an import; all but features may be
// empty.
type importFiles struct {
	features, labels, paths, text, classes string
}

// importInputs is what an import read from its input files.
type importInputs struct {
	files       importFiles
	image       *tensor.Matrix // [N, d], rows unit-norm
	inputDType  string         // element type of the features file
	labels      *interop.Array // [N] integers, or nil when there are none
	labelSource string         // the file the labels came from
	paths       []string       // [N] image paths, or nil
	text        *tensor.Matrix // [K, d], rows unit-norm, or nil
	classNames  []string       // from the class file, or nil
	kSource     string         // the file that set the number of classes
}

// readImportInputs reads and checks the input files: features, labels,
// text features and class names; rows off unit norm are normalised.
func readImportInputs(ctx *context, files importFiles) (*importInputs, error) {
	feats, labels, err := interop.ReadFeatures(files.features)
	if err != nil {
		return nil, err
	}
	in := &importInputs{files: files, inputDType: feats.DType, labels: labels, labelSource: files.features}
	if files.labels != "" {
		fileLabels, err := readLabels(files.labels, feats.Shape[0])
		if err != nil {
			return nil, err
		}
		if labels != nil {
			fmt.Fprintf(ctx.stderr, "note: using the labels of %s instead of those in %s\n", files.labels, files.features)
		}
		in.labels, in.labelSource = fileLabels, files.labels
	}
	n, dim := feats.Shape[0], feats.Shape[1]
	if n == 0 || dim == 0 {
		return nil, fmt.Errorf("%s: features have shape [%d, %d]; want at least one row and one column", files.features, n, dim)
	}
	in.image = tensor.FromSlice(n, dim, feats.Float32)
	if err := normaliseRows(ctx, files.features, "image features", in.image); err != nil {
		return nil, err
	}
	if files.paths != "" {
		if in.paths, err = features.ReadPaths(files.paths, n); err != nil {
			return nil, err
		}
	}
	if files.text != "" {
		a, err := interop.ReadMatrix(files.text)
		if err != nil {
			return nil, err
		}
		in.text = tensor.FromSlice(a.Shape[0], a.Shape[1], a.Float32)
		if in.text.Cols != dim {
			return nil, fmt.Errorf("%s: text features have dim %d but the image features in %s have dim %d",
				files.text, in.text.Cols, files.features, dim)
		}
		if in.text.Rows == 0 {
			return nil, fmt.Errorf("%s: text features have no rows", files.text)
		}
		if err := normaliseRows(ctx, files.text, "text features", in.text); err != nil {
			return nil, err
		}
	}
	if files.classes != "" {
		if in.classNames, err = extract.ReadClassFile(files.classes); err != nil {
			return nil, classFileError(files.classes, err)
		}
	}
	return in, nil
}

// classFileError words an error of extract.ReadClassFile as "--classes
// PATH: PROBLEM", naming the file once: its "extract: " prefix would read
// as the extract command's name inside the import command's message.
func classFileError(path string, err error) error {
	var pathErr *fs.PathError
	if errors.As(err, &pathErr) {
		return fmt.Errorf("--classes %s: %w", path, pathErr.Err)
	}
	return fmt.Errorf("--classes %s: %s", path, strings.TrimPrefix(err.Error(), "extract: "+path+": "))
}

// fitStore gives a new store its dim and classes (see newClasses), or
// checks the inputs against an existing store's dim and classes.
func (in *importInputs) fitStore(ctx *context, store *features.Store, isNew bool) error {
	if !isNew {
		in.kSource = filepath.Join(store.Dir, features.DatasetFile)
		return in.checkAgainst(store.Meta)
	}
	classes, err := in.newClasses(ctx)
	if err != nil {
		return err
	}
	store.Meta.Dim, store.Meta.Classes = in.image.Cols, classes
	return nil
}

// newClasses chooses the class names of a new store: those of the class
// file; else class_0 ... class_{K-1} with K the rows of the text features,
// else the largest label + 1. The text rows must match the class file.
func (in *importInputs) newClasses(ctx *context) ([]string, error) {
	if in.classNames != nil {
		in.kSource = in.files.classes
		if in.text != nil && in.text.Rows != len(in.classNames) {
			return nil, fmt.Errorf("%s: %s of text features, but %s lists %s",
				in.files.text, words.Count(in.text.Rows, "row"), in.files.classes, words.Count(len(in.classNames), "class"))
		}
		return in.classNames, nil
	}
	var k int
	switch {
	case in.text != nil:
		k, in.kSource = in.text.Rows, in.files.text
	case in.labels != nil:
		largest := slices.Max(in.labels.Int64)
		if largest >= maxClassesFromLabels {
			return nil, fmt.Errorf("%s: largest label %d is not a plausible class index; give --classes", in.labelSource, largest)
		}
		k, in.kSource = int(largest)+1, in.labelSource
		if k > 0 {
			fmt.Fprintf(ctx.stderr, "note: %s, from the largest label in %s; give --classes if the last classes have no images here\n", words.Count(k, "class"), in.labelSource)
		}
	}
	if k <= 0 {
		return nil, errors.New("cannot tell the number of classes of a new store: give --classes or --text (the features have no labels)")
	}
	classes := make([]string, k)
	for i := range classes {
		classes[i] = fmt.Sprintf("class_%d", i)
	}
	return classes, nil
}

// checkAgainst requires the dim, the class names and the text features of
// the inputs to agree with an existing store's dataset.json.
func (in *importInputs) checkAgainst(meta features.Dataset) error {
	datasetPath := in.kSource
	if in.image.Cols != meta.Dim {
		return fmt.Errorf("%s: features have dim %d, but the store's %s says %d", in.files.features, in.image.Cols, datasetPath, meta.Dim)
	}
	k := len(meta.Classes)
	if in.classNames != nil {
		if len(in.classNames) != k {
			return fmt.Errorf("%s lists %s, but the store's %s has %d", in.files.classes, words.Count(len(in.classNames), "class"), datasetPath, k)
		}
		for i, name := range in.classNames {
			if name != meta.Classes[i] {
				return fmt.Errorf("%s: class %d is %q, but the store's %s calls it %q", in.files.classes, i, name, datasetPath, meta.Classes[i])
			}
		}
	}
	if in.text != nil && in.text.Rows != k {
		return fmt.Errorf("%s: %s of text features, but the store's %s has %s", in.files.text, words.Count(in.text.Rows, "row"), datasetPath, words.Count(k, "class"))
	}
	return nil
}

// domainLabels converts the labels to the store's form, all -1 when there
// are none, and counts the labelled rows; labels must lie in [-1, k).
func (in *importInputs) domainLabels(k int) (labels []int, labelled int, err error) {
	labels = make([]int, in.image.Rows)
	for i := range labels {
		labels[i] = -1
		if in.labels == nil {
			continue
		}
		l := in.labels.Int64[i]
		if l < -1 || l >= int64(k) {
			return nil, 0, fmt.Errorf("%s: label of row %d is %d, outside [-1, %d) for the %s set by %s",
				in.labelSource, i, l, k, words.Count(k, "class"), in.kSource)
		}
		labels[i] = int(l)
		if l >= 0 {
			labelled++
		}
	}
	return labels, labelled, nil
}

// parseDType reads --dtype; "" leaves the choice to the input's type.
func parseDType(s string) (features.DType, error) {
	switch strings.ToLower(s) {
	case "":
		return "", nil
	case "f16":
		return features.F16, nil
	case "f32":
		return features.F32, nil
	}
	return "", usagef("--dtype %q: want f16 or f32", s)
}

// openOrNewStore opens the store in dir, or returns an empty one with isNew
// set when dir has no dataset.json. Any other problem with dataset.json is
// an error: an unreadable store is never silently overwritten.
func openOrNewStore(dir string) (store *features.Store, isNew bool, err error) {
	store, err = features.Open(dir)
	if err == nil {
		return store, false, nil
	}
	if !errors.Is(err, os.ErrNotExist) {
		return nil, false, err
	}
	return &features.Store{Dir: dir}, true, nil
}

// checkStoreNames sets the name and backbone of a new store, and requires
// those given for an existing store to match its dataset.json.
func checkStoreNames(store *features.Store, isNew bool, name, backbone string) error {
	if isNew {
		store.Meta.Name = name
		if name == "" {
			store.Meta.Name = filepath.Base(filepath.Clean(store.Dir))
		}
		store.Meta.Backbone = backbone
		if backbone == "" {
			store.Meta.Backbone = "unknown"
		}
		return nil
	}
	path := filepath.Join(store.Dir, features.DatasetFile)
	if name != "" && name != store.Meta.Name {
		return fmt.Errorf("--name %q: the store's %s names the dataset %q", name, path, store.Meta.Name)
	}
	if backbone != "" && backbone != store.Meta.Backbone {
		return fmt.Errorf("--backbone %q: the store's %s holds %q features; features of different models cannot share a store", backbone, path, store.Meta.Backbone)
	}
	return nil
}

// readLabels reads a 1-D integer .npy array of n labels.
func readLabels(path string, n int) (*interop.Array, error) {
	if ext := strings.ToLower(filepath.Ext(path)); ext != ".npy" {
		return nil, fmt.Errorf("%s: unknown labels file type %q (want .npy)", path, ext)
	}
	a, err := interop.ReadNPY(path)
	if err != nil {
		return nil, err
	}
	if a.Int64 == nil || len(a.Shape) != 1 {
		return nil, fmt.Errorf("%s: labels are %s %v; want a 1-D integer array", path, a.DType, a.Shape)
	}
	if a.Shape[0] != n {
		return nil, fmt.Errorf("%s: %s for %s", path, words.Count(a.Shape[0], "label"), words.Count(n, "feature row"))
	}
	return a, nil
}

// normaliseRows makes the rows of m unit-norm (features.UnitRows), saying
// so once when some were not.
func normaliseRows(ctx *context, path, what string, m *tensor.Matrix) error {
	fixed, _, err := features.UnitRows(m)
	if err != nil {
		return fmt.Errorf("%s: the %s: %w", path, what, err)
	}
	if fixed > 0 {
		fmt.Fprintf(ctx.stderr, "note: L2-normalised %d of the %s of the %s in %s\n", fixed, words.Count(m.Rows, "row"), what, path)
	}
	return nil
}

func fileExists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}
