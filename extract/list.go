package extract

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/unimos/unimos/features"
	"github.com/unimos/unimos/internal/imagefile"
	"github.com/unimos/unimos/internal/regularfile"
	"github.com/unimos/unimos/internal/words"
)

// Image is one image to extract.
type Image struct {
	Path  string // the file to read
	Name  string // the path recorded in <Domain>.paths.txt and skipped.txt
	Label int    // index into Dataset.Classes, or Unlabelled
	// SkipReason, when set, says why the image gets no row without being
	// read: its name cannot be recorded (see newImage).
	SkipReason string
}

// newImage describes the image file path, named name. A name with a line
// break cannot be written to paths.txt, one name a line, so such an image
// is skipped (listed in skipped.txt with the reason) rather than stopping
// the extraction; its Name is then quoted, Go-style, to stay on one line.
func newImage(path, name string, label int) Image {
	if strings.ContainsAny(name, "\r\n") {
		return Image{Path: path, Name: strconv.Quote(name), Label: label,
			SkipReason: "its name holds a line break, which the store's list of image paths cannot record; rename the file"}
	}
	return Image{Path: path, Name: name, Label: label}
}

// checkName checks a domain or class name with features.CheckName before
// any work is done, saying where the name comes from and what to do.
func checkName(kind features.NameKind, name, where, fix string) error {
	if err := features.CheckName(kind, name); err != nil {
		return fmt.Errorf("extract: %s: %w; %s", where, err, fix)
	}
	return nil
}

// Unlabelled is the label of an image whose class is unknown (the store's
// -1): a loose image of a domain folder, or a list line without a label.
const Unlabelled = -1

// Domain is the images of one domain, in extraction order.
type Domain struct {
	Name   string
	Images []Image
}

// Dataset is what to extract: a name, the classes and the images of each
// domain.
type Dataset struct {
	Name    string
	Classes []string
	Domains []Domain
	// Warnings are problems of the inputs that do not stop an extraction
	// but probably deserve a look (an empty class folder, a class without
	// a labelled image), one sentence each, without a "warning:" prefix.
	Warnings []string
}

// Counts returns the number of images of the dataset and how many of them
// are unlabelled.
func (ds *Dataset) Counts() (images, unlabelled int) {
	for _, d := range ds.Domains {
		images += len(d.Images)
		unlabelled += countUnlabelled(d.Images)
	}
	return images, unlabelled
}

// countUnlabelled returns the number of images with label Unlabelled.
func countUnlabelled(images []Image) int {
	n := 0
	for _, im := range images {
		if im.Label == Unlabelled {
			n++
		}
	}
	return n
}

// warnUnusedClasses adds a warning naming the classes that no image is
// labelled with: a source-trained classifier never sees them. A dataset
// without any labelled image (only a target domain) gets no such warning,
// since every class would be named.
func (ds *Dataset) warnUnusedClasses() {
	used := make([]bool, len(ds.Classes))
	labelled := false
	for _, d := range ds.Domains {
		for _, im := range d.Images {
			if im.Label != Unlabelled {
				used[im.Label], labelled = true, true
			}
		}
	}
	var unused []string
	for k, c := range ds.Classes {
		if !used[k] {
			unused = append(unused, c)
		}
	}
	if !labelled || len(unused) == 0 {
		return
	}
	if len(unused) == 1 {
		ds.Warnings = append(ds.Warnings, fmt.Sprintf("class %s has no labelled image in any domain", unused[0]))
		return
	}
	ds.Warnings = append(ds.Warnings, fmt.Sprintf("%s have no labelled image in any domain: %s",
		words.Count(len(unused), "class"), nameList(unused)))
}

// nameList joins names with commas, the first ten of them, so that a
// message stays one line for a dataset of hundreds of classes.
func nameList(names []string) string {
	const shown = 10
	if len(names) <= shown {
		return strings.Join(names, ", ")
	}
	return strings.Join(names[:shown], ", ") + fmt.Sprintf(" and %d more", len(names)-shown)
}

// genericNames are folder names that say nothing about the dataset, which
// datasetName skips (compared case-insensitively): the inner folders of
// downloaded datasets. "photos" and the like are left out: a user's own
// collection is often called so, and its parent (a home folder) would be a
// worse name.
var genericNames = []string{"images", "image", "imgs", "img", "data", "dataset", "datasets"}

// datasetName names a dataset after the folder dir: its base name, or, when
// that is generic (images, data, ...), the first name going up the path
// that is not (/work/office_caltech10/images: office_caltech10). When every
// folder up to the file-system root is generic, it is dir's base name.
func datasetName(dir string) string {
	if abs, err := filepath.Abs(dir); err == nil {
		dir = abs
	}
	for d := dir; ; d = filepath.Dir(d) {
		base := filepath.Base(d)
		if base == string(filepath.Separator) || base == "." {
			break // the root: nothing above
		}
		if !slices.Contains(genericNames, strings.ToLower(base)) {
			return base
		}
	}
	if base := filepath.Base(dir); base != string(filepath.Separator) && base != "." {
		return base
	}
	return "dataset"
}

// ScanFolders lists ROOT/<Domain>/<Class>/<image> like torchvision's
// ImageFolder, and ROOT/<Domain>/<image> as unlabelled images. Domains are
// the named subfolders of root, or all of them, sorted, when domains is
// empty. Classes are the given names, or the sorted union of the class
// folders of the domains when classes is empty; with given names, a class
// folder not among them is an error (so that a typo does not silently drop
// images), and with none given, at least one domain must have class
// folders, since the prompts need the class names. A domain may lack a
// class, and may have no class folder at all.
//
// A domain's images are the files with an image extension anywhere below
// its class folders, ordered by class, then by path, and then those
// directly in the domain folder ("loose" images, label Unlabelled), ordered
// by path. Symbolic links are followed; names starting with "." are
// ignored. Image names are paths relative to root with forward slashes. The
// dataset is named after root, generic folder names skipped (see
// datasetName). An empty class folder, or a class with no labelled image,
// gets a warning in Dataset.Warnings.
func ScanFolders(root string, domains, classes []string) (*Dataset, error) {
	if len(domains) == 0 {
		var err error
		if domains, _, err = readFolder(root); err != nil {
			return nil, err
		}
		if len(domains) == 0 {
			return nil, fmt.Errorf("extract: %s has no domain folders (want ROOT/<Domain>/<Class>/<image>)", root)
		}
	}
	// classFolders[d] and loose[d] are the class folders and the loose
	// images of domain d.
	classFolders := make([][]string, len(domains))
	loose := make([][]string, len(domains))
	for d, name := range domains {
		dir := filepath.Join(root, name)
		if err := checkName(features.DomainName, name, dir, "rename the folder"); err != nil {
			return nil, err
		}
		if st, err := os.Stat(dir); err != nil || !st.IsDir() {
			return nil, fmt.Errorf("extract: domain %q: %s is not a folder", name, dir)
		}
		var err error
		if classFolders[d], loose[d], err = readFolder(dir); err != nil {
			return nil, err
		}
		for _, c := range classFolders[d] {
			if err := checkName(features.ClassName, c, filepath.Join(dir, c), "rename the folder"); err != nil {
				return nil, err
			}
		}
	}
	if len(classes) == 0 {
		seen := map[string]bool{}
		for _, cs := range classFolders {
			for _, c := range cs {
				if !seen[c] {
					seen[c] = true
					classes = append(classes, c)
				}
			}
		}
		if len(classes) == 0 {
			return nil, fmt.Errorf("extract: %s: no domain has class folders, so the class names that the prompts need are unknown; give them with --classes FILE (one name per line)", root)
		}
		slices.Sort(classes)
	}
	index := make(map[string]int, len(classes))
	for i, c := range classes {
		index[c] = i
	}
	ds := &Dataset{Name: datasetName(root), Classes: classes}
	for d, name := range domains {
		dom := Domain{Name: name}
		for _, c := range classFolders[d] {
			if _, ok := index[c]; !ok {
				return nil, fmt.Errorf("extract: %s: class folder %q is not one of the classes given (%s)",
					filepath.Join(root, name, c), c, words.Count(len(classes), "class"))
			}
		}
		for label, c := range classes {
			if !slices.Contains(classFolders[d], c) {
				continue
			}
			rel, err := imagesBelow(filepath.Join(root, name, c))
			if err != nil {
				return nil, err
			}
			if len(rel) == 0 {
				ds.Warnings = append(ds.Warnings, fmt.Sprintf("domain %s: class folder %s has no images", name, c))
			}
			for _, r := range rel {
				dom.Images = append(dom.Images, newImage(filepath.Join(root, name, c, r), name+"/"+c+"/"+filepath.ToSlash(r), label))
			}
		}
		for _, f := range loose[d] {
			dom.Images = append(dom.Images, newImage(filepath.Join(root, name, f), name+"/"+f, Unlabelled))
		}
		if len(dom.Images) == 0 {
			return nil, fmt.Errorf("extract: domain %q: no images in %s (want class folders of images, or images directly in it for an unlabelled domain)",
				name, filepath.Join(root, name))
		}
		ds.Domains = append(ds.Domains, dom)
	}
	ds.warnUnusedClasses()
	return ds, nil
}

// readFolder returns the sorted names of the folders and of the files named
// as images in dir, following symbolic links; hidden names (starting with
// ".") and dangling links are left out.
func readFolder(dir string) (folders, images []string, err error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, nil, fmt.Errorf("extract: %w", err)
	}
	for _, e := range entries { // os.ReadDir sorts by name
		if strings.HasPrefix(e.Name(), ".") {
			continue
		}
		st, err := os.Stat(filepath.Join(dir, e.Name()))
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				continue // a dangling symbolic link
			}
			return nil, nil, fmt.Errorf("extract: %w", err)
		}
		switch {
		case st.IsDir():
			folders = append(folders, e.Name())
		case imagefile.Is(e.Name()):
			// A named pipe or a device named as an image is listed too, so
			// that the extraction skips it with its reason into
			// skipped.txt, as it does for one named in a list, instead of
			// leaving it out unsaid. It is never opened.
			images = append(images, e.Name())
		}
	}
	return folders, images, nil
}

// imagesBelow returns the image files below dir as sorted relative paths,
// following symbolic links to files and to folders.
func imagesBelow(dir string) ([]string, error) {
	var out []string
	var walk func(rel string) error
	walk = func(rel string) error {
		folders, images, err := readFolder(filepath.Join(dir, rel))
		if err != nil {
			return err
		}
		for _, im := range images {
			out = append(out, filepath.Join(rel, im))
		}
		for _, f := range folders {
			if err := walk(filepath.Join(rel, f)); err != nil {
				return err
			}
		}
		return nil
	}
	if err := walk(""); err != nil {
		return nil, err
	}
	slices.Sort(out) // the walk lists a folder's files before its subfolders; sort by path
	return out, nil
}

// List names an image-list file and the domain it describes.
type List struct {
	Domain string
	File   string
}

// ParseList reads a --list argument, DOMAIN=FILE or FILE; a bare FILE names
// the domain after the file without its extension (Art.txt: Art).
func ParseList(s string) (List, error) {
	if domain, file, ok := strings.Cut(s, "="); ok {
		if domain == "" || file == "" {
			return List{}, fmt.Errorf("list %q: want DOMAIN=FILE or FILE", s)
		}
		return List{Domain: domain, File: file}, nil
	}
	if s == "" {
		return List{}, errors.New("empty list file name")
	}
	base := filepath.Base(s)
	return List{Domain: strings.TrimSuffix(base, filepath.Ext(base)), File: s}, nil
}

// ReadLists reads image lists in the reference code's format: one image per
// line, "PATH LABEL", PATH relative to root (or absolute) and LABEL a class
// index, or Unlabelled (-1). A line "PATH" without a label is unlabelled
// too: when the last whitespace-separated field of a line is an integer it
// is the label, otherwise the whole line is the path (which may then hold
// spaces). The class of label k is the name of the folder holding the
// images labelled k (for the reference lists this is also the order in
// which the classes first appear); every label must name one folder and
// every folder one label. With classes given, labels index into them and
// each labelled image's folder must be its class's name; without, some
// line must have a label, since the prompts need the class names. Images
// keep the order of the lists. Image names are the paths as written. The
// dataset is named after the folder holding the domain folders of the
// first labelled image (./dataset/OfficeHome/Art/Drill/00014.jpg:
// OfficeHome), or of the first image when none is labelled
// (./dataset/OfficeHome/Art/00014.jpg), generic folder names skipped (see
// datasetName). A class with no labelled image gets a warning
// in Dataset.Warnings.
func ReadLists(root string, lists []List, classes []string) (*Dataset, error) {
	if len(lists) == 0 {
		return nil, errors.New("extract: no image lists")
	}
	fixed := len(classes) > 0
	names := map[int]string{} // label -> class folder
	labels := map[string]int{}
	where := map[int]string{} // label -> "file:line" that first used it
	for i, c := range classes {
		names[i], labels[c] = c, i
	}
	ds := &Dataset{}
	for _, l := range lists {
		if err := checkName(features.DomainName, l.Domain, "list "+l.File, "name the domain with --list DOMAIN=FILE"); err != nil {
			return nil, err
		}
		dom := Domain{Name: l.Domain}
		err := readLines(l.File, func(line int, text string) error {
			at := fmt.Sprintf("%s:%d", l.File, line)
			path, label, err := parseListLine(text)
			if err != nil {
				return fmt.Errorf("extract: %s: %w", at, err)
			}
			if label != Unlabelled {
				folder := filepath.Base(filepath.Dir(filepath.FromSlash(path)))
				if err := checkName(features.ClassName, folder, at, "the class of a labelled image is the name of its folder; rename the folder"); err != nil {
					return err
				}
				if err := bindLabel(names, labels, where, label, folder, at, fixed); err != nil {
					return err
				}
			}
			file := filepath.FromSlash(path)
			if !filepath.IsAbs(file) {
				file = filepath.Join(root, file)
			}
			dom.Images = append(dom.Images, newImage(file, path, label))
			return nil
		})
		if err != nil {
			return nil, err
		}
		if len(dom.Images) == 0 {
			return nil, fmt.Errorf("extract: %s lists no images", l.File)
		}
		ds.Domains = append(ds.Domains, dom)
	}
	if !fixed {
		if len(names) == 0 {
			return nil, errors.New("extract: no line of the image lists has a label, so the class names that the prompts need are unknown; give them with --classes FILE (one name per line)")
		}
		top := slices.Max(slices.Collect(maps.Keys(names)))
		classes = make([]string, top+1)
		for k := range classes {
			if names[k] == "" {
				return nil, fmt.Errorf("extract: no image has label %d (labels go up to %d), so its class name is unknown; give the class names with --classes FILE", k, top)
			}
			classes[k] = names[k]
		}
	}
	ds.Classes = classes
	ds.Name = datasetName(domainsFolder(ds))
	ds.warnUnusedClasses()
	return ds, nil
}

// domainsFolder guesses the folder holding the domain folders of a listed
// dataset: two levels above the first labelled image (above its class
// folder), or, when no image is labelled, one level above the first image.
func domainsFolder(ds *Dataset) string {
	for _, d := range ds.Domains {
		for _, im := range d.Images {
			if im.Label != Unlabelled {
				return filepath.Dir(filepath.Dir(filepath.Dir(im.Path)))
			}
		}
	}
	return filepath.Dir(filepath.Dir(ds.Domains[0].Images[0].Path))
}

// parseListLine splits a non-blank image-list line into its path and label:
// the last field is the label when it is an integer (Unlabelled or a class
// index), else the whole line is the path of an unlabelled image.
func parseListLine(text string) (path string, label int, err error) {
	cut := strings.LastIndexAny(text, " \t")
	if cut < 0 {
		return text, Unlabelled, nil
	}
	label, err = strconv.Atoi(text[cut+1:])
	if err != nil {
		return text, Unlabelled, nil
	}
	if label < Unlabelled {
		return "", 0, fmt.Errorf("label %d in %q: want a class index (0, 1, ...) or -1 for an unlabelled image", label, text)
	}
	return strings.TrimSpace(text[:cut]), label, nil
}

// bindLabel records that label names the class folder, or checks that it
// agrees with what earlier lines (or the given classes, when fixed) said.
func bindLabel(names map[int]string, labels map[string]int, where map[int]string, label int, folder, at string, fixed bool) error {
	if fixed {
		switch {
		case label >= len(names):
			return fmt.Errorf("extract: %s: label %d is outside the classes given (%s)", at, label, words.Count(len(names), "class"))
		case names[label] != folder:
			return fmt.Errorf("extract: %s: label %d is class %q but the image is in folder %q", at, label, names[label], folder)
		}
		return nil
	}
	if name, ok := names[label]; ok {
		if name != folder {
			return fmt.Errorf("extract: %s: label %d is for folder %q here but for %q at %s", at, label, folder, name, where[label])
		}
		return nil
	}
	if other, ok := labels[folder]; ok {
		return fmt.Errorf("extract: %s: folder %q has label %d here but %d at %s", at, folder, label, other, where[other])
	}
	names[label], labels[folder], where[label] = folder, label, at
	return nil
}

// ReadClassFile reads class names, one per line; blank lines are ignored. A
// file whose every line is "INDEX NAME" with INDEX counting up from 0 (the
// reference's classnames.txt) gives the names after the index.
func ReadClassFile(path string) ([]string, error) {
	var lines []string
	err := readLines(path, func(_ int, text string) error {
		lines = append(lines, text)
		return nil
	})
	if err != nil {
		return nil, err
	}
	if len(lines) == 0 {
		return nil, fmt.Errorf("extract: %s: no class names", path)
	}
	numbered := make([]string, 0, len(lines))
	for i, l := range lines {
		index, name, ok := strings.Cut(l, " ")
		if !ok || index != strconv.Itoa(i) || strings.TrimSpace(name) == "" {
			numbered = nil
			break
		}
		numbered = append(numbered, strings.TrimSpace(name))
	}
	if numbered != nil {
		lines = numbered
	}
	seen := map[string]int{}
	for i, c := range lines {
		if err := checkName(features.ClassName, c, fmt.Sprintf("%s: entry %d", path, i+1), "correct the class file"); err != nil {
			return nil, err
		}
		if j, dup := seen[c]; dup {
			return nil, fmt.Errorf("extract: %s: class %q is listed twice (entries %d and %d)", path, c, j+1, i+1)
		}
		seen[c] = i
	}
	return lines, nil
}

// maxListBytes bounds an image list or class file, which is read whole: far
// above real lists (DomainNet's largest domain lists 175 000 images in
// about 10 MB), low enough that a wrong file gets an error.
const maxListBytes = 64 << 20

// readLines calls fn with each non-blank line of the file, trimmed of
// surrounding white space, and its 1-based line number. Only a regular
// file of at most maxListBytes is read: a named pipe would block, and
// /dev/zero would never end.
func readLines(path string, fn func(line int, text string) error) error {
	data, err := regularfile.ReadFile(path, "a text file", maxListBytes)
	if err != nil {
		return fmt.Errorf("extract: %w", err)
	}
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for n := 1; sc.Scan(); n++ {
		if text := strings.TrimSpace(sc.Text()); text != "" {
			if err := fn(n, text); err != nil {
				return err
			}
		}
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("extract: %s: %w", path, err)
	}
	return nil
}
