package extract

import (
	"bufio"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/unimos/unimos/internal/imagefile"
)

// Image is one image to extract.
type Image struct {
	Path  string // the file to read
	Name  string // the path recorded in <Domain>.paths.txt and skipped.txt
	Label int    // index into Dataset.Classes
}

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
}

// ScanFolders lists ROOT/<Domain>/<Class>/<image> like torchvision's
// ImageFolder. Domains are the named subfolders of root, or all of them,
// sorted, when domains is empty. Classes are the given names, or the sorted
// union of the class folders of the domains when classes is empty; with
// given names, a class folder not among them is an error (so that a typo
// does not silently drop images). A domain may lack a class. Images are the
// files with an image extension anywhere below a class folder (symbolic
// links followed), ordered by class, then by path; names starting with "."
// are ignored. Image names are paths relative to root with forward
// slashes. The dataset is named after root.
func ScanFolders(root string, domains, classes []string) (*Dataset, error) {
	abs, err := filepath.Abs(root)
	if err != nil {
		return nil, fmt.Errorf("extract: %w", err)
	}
	if len(domains) == 0 {
		if domains, err = subfolders(root); err != nil {
			return nil, err
		}
		if len(domains) == 0 {
			return nil, fmt.Errorf("extract: %s has no domain folders (want ROOT/<Domain>/<Class>/<image>)", root)
		}
	}
	// classFolders[d] lists the class folders of domain d.
	classFolders := make([][]string, len(domains))
	for d, name := range domains {
		dir := filepath.Join(root, name)
		if st, err := os.Stat(dir); err != nil || !st.IsDir() {
			return nil, fmt.Errorf("extract: domain %q: %s is not a folder", name, dir)
		}
		if classFolders[d], err = subfolders(dir); err != nil {
			return nil, err
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
		slices.Sort(classes)
	}
	index := make(map[string]int, len(classes))
	for i, c := range classes {
		index[c] = i
	}
	ds := &Dataset{Name: filepath.Base(abs), Classes: classes}
	for d, name := range domains {
		dom := Domain{Name: name}
		for _, c := range classFolders[d] {
			if _, ok := index[c]; !ok {
				return nil, fmt.Errorf("extract: %s: class folder %q is not one of the %d given classes",
					filepath.Join(root, name, c), c, len(classes))
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
			for _, r := range rel {
				dom.Images = append(dom.Images, Image{
					Path:  filepath.Join(root, name, c, r),
					Name:  name + "/" + c + "/" + filepath.ToSlash(r),
					Label: label,
				})
			}
		}
		if len(dom.Images) == 0 {
			return nil, fmt.Errorf("extract: domain %q: no images in %s", name, filepath.Join(root, name))
		}
		ds.Domains = append(ds.Domains, dom)
	}
	return ds, nil
}

// subfolders returns the sorted names of the folders in dir (symbolic links
// to folders included), hidden ones left out.
func subfolders(dir string) ([]string, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("extract: %w", err)
	}
	var names []string
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), ".") {
			continue
		}
		st, err := os.Stat(filepath.Join(dir, e.Name()))
		if err == nil && st.IsDir() {
			names = append(names, e.Name())
		}
	}
	return names, nil // os.ReadDir sorts by name
}

// imagesBelow returns the image files below dir as sorted relative paths,
// following symbolic links to files and to folders.
func imagesBelow(dir string) ([]string, error) {
	var out []string
	var walk func(rel string) error
	walk = func(rel string) error {
		entries, err := os.ReadDir(filepath.Join(dir, rel))
		if err != nil {
			return fmt.Errorf("extract: %w", err)
		}
		for _, e := range entries {
			if strings.HasPrefix(e.Name(), ".") {
				continue
			}
			r := filepath.Join(rel, e.Name())
			st, err := os.Stat(filepath.Join(dir, r))
			if err != nil {
				if errors.Is(err, fs.ErrNotExist) {
					continue // a dangling symbolic link
				}
				return fmt.Errorf("extract: %w", err)
			}
			switch {
			case st.IsDir():
				if err := walk(r); err != nil {
					return err
				}
			case st.Mode().IsRegular() && imagefile.Is(e.Name()):
				out = append(out, r)
			}
		}
		return nil
	}
	if err := walk(""); err != nil {
		return nil, err
	}
	slices.Sort(out)
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
// index. The class of label k is the name of the folder holding the images
// labelled k (for the reference lists this is also the order in which the
// classes first appear); every label must name one folder and every folder
// one label. With classes given, labels index into them and each image's
// folder must be its class's name. Images keep the order of the lists. Image
// names are the paths as written. The dataset is named after the folder
// holding the domain folders of the first image
// (./dataset/OfficeHome/Art/Drill/00014.jpg: OfficeHome).
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
		dom := Domain{Name: l.Domain}
		err := readLines(l.File, func(line int, text string) error {
			at := fmt.Sprintf("%s:%d", l.File, line)
			cut := strings.LastIndexAny(text, " \t")
			if cut < 0 {
				return fmt.Errorf("extract: %s: want \"PATH LABEL\", got %q", at, text)
			}
			path := strings.TrimSpace(text[:cut])
			label, err := strconv.Atoi(text[cut+1:])
			if err != nil || label < 0 || path == "" {
				return fmt.Errorf("extract: %s: want \"PATH LABEL\" with a non-negative integer label, got %q", at, text)
			}
			folder := filepath.Base(filepath.Dir(filepath.FromSlash(path)))
			if err := bindLabel(names, labels, where, label, folder, at, fixed); err != nil {
				return err
			}
			file := filepath.FromSlash(path)
			if !filepath.IsAbs(file) {
				file = filepath.Join(root, file)
			}
			dom.Images = append(dom.Images, Image{Path: file, Name: path, Label: label})
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
		classes = make([]string, len(names))
		for k := range classes {
			if names[k] == "" {
				return nil, fmt.Errorf("extract: no image has label %d (labels go up to %d), so its class name is unknown; give the classes with a class file", k, len(names)-1)
			}
			classes[k] = names[k]
		}
	}
	ds.Classes = classes
	first := filepath.FromSlash(ds.Domains[0].Images[0].Name)
	ds.Name = filepath.Base(filepath.Dir(filepath.Dir(filepath.Dir(first))))
	if ds.Name == "." || ds.Name == string(filepath.Separator) {
		ds.Name = filepath.Base(filepath.Dir(lists[0].File))
	}
	return ds, nil
}

// bindLabel records that label names the class folder, or checks that it
// agrees with what earlier lines (or the given classes, when fixed) said.
func bindLabel(names map[int]string, labels map[string]int, where map[int]string, label int, folder, at string, fixed bool) error {
	if fixed {
		switch {
		case label >= len(names):
			return fmt.Errorf("extract: %s: label %d is outside the %d given classes", at, label, len(names))
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
		if j, dup := seen[c]; dup {
			return nil, fmt.Errorf("extract: %s: class %q is listed twice (entries %d and %d)", path, c, j+1, i+1)
		}
		seen[c] = i
	}
	return lines, nil
}

// readLines calls fn with each non-blank line of the file, trimmed of
// surrounding white space, and its 1-based line number.
func readLines(path string, fn func(line int, text string) error) error {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("extract: %w", err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
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
