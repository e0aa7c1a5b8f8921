package extract

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/unimos/unimos/internal/shareddata"
)

// touch creates the named files (empty) below root, and the named folders
// for names ending in "/".
func touch(t *testing.T, root string, names ...string) {
	t.Helper()
	for _, n := range names {
		path := filepath.Join(root, filepath.FromSlash(n))
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if strings.HasSuffix(n, "/") {
			must(t, os.MkdirAll(path, 0o755))
			continue
		}
		if err := os.WriteFile(path, nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func names(d Domain) []string {
	var out []string
	for _, im := range d.Images {
		out = append(out, im.Name)
	}
	return out
}

func TestScanFolders(t *testing.T) {
	root := filepath.Join(t.TempDir(), "MyData")
	touch(t, root,
		"b_dom/zebra/2.jpg", "b_dom/zebra/10.jpg", "b_dom/apple/x.PNG", "b_dom/apple/notes.txt",
		"b_dom/apple/sub/y.webp", "b_dom/apple/.hidden.jpg", "b_dom/stray.jpg",
		"a_dom/mango/m.jpeg", "a_dom/apple/a.bmp",
		".partial/x/y.jpg", // hidden: not a domain
	)
	elsewhere := t.TempDir()
	touch(t, elsewhere, "linked/l.jpg", "file.jpg")
	must(t, os.Symlink(filepath.Join(elsewhere, "linked"), filepath.Join(root, "a_dom", "kiwi")))
	must(t, os.Symlink(filepath.Join(elsewhere, "file.jpg"), filepath.Join(root, "a_dom", "apple", "b.jpg")))
	must(t, os.Symlink(filepath.Join(elsewhere, "gone.jpg"), filepath.Join(root, "a_dom", "apple", "c.jpg")))

	ds, err := ScanFolders(root, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if ds.Name != "MyData" {
		t.Errorf("name %q, want MyData", ds.Name)
	}
	if want := []string{"apple", "kiwi", "mango", "zebra"}; !slices.Equal(ds.Classes, want) {
		t.Errorf("classes %q, want %q", ds.Classes, want)
	}
	if len(ds.Domains) != 2 || ds.Domains[0].Name != "a_dom" || ds.Domains[1].Name != "b_dom" {
		t.Fatalf("domains %+v", ds.Domains)
	}
	wantA := []string{"a_dom/apple/a.bmp", "a_dom/apple/b.jpg", "a_dom/kiwi/l.jpg", "a_dom/mango/m.jpeg"}
	// b_dom/stray.jpg is a loose image: unlabelled, after the class folders.
	wantB := []string{"b_dom/apple/sub/y.webp", "b_dom/apple/x.PNG", "b_dom/zebra/10.jpg", "b_dom/zebra/2.jpg", "b_dom/stray.jpg"}
	if got := names(ds.Domains[0]); !slices.Equal(got, wantA) {
		t.Errorf("a_dom images %q, want %q", got, wantA)
	}
	if got := names(ds.Domains[1]); !slices.Equal(got, wantB) {
		t.Errorf("b_dom images %q, want %q", got, wantB)
	}
	var labels []int
	for _, d := range ds.Domains {
		for _, im := range d.Images {
			labels = append(labels, im.Label)
			if want := filepath.Join(root, filepath.FromSlash(im.Name)); im.Path != want {
				t.Errorf("path %q, want %q", im.Path, want)
			}
		}
	}
	if want := []int{0, 0, 1, 2, 0, 0, 3, 3, -1}; !slices.Equal(labels, want) {
		t.Errorf("labels %v, want %v", labels, want)
	}
	if len(ds.Warnings) != 0 {
		t.Errorf("warnings %q, want none", ds.Warnings)
	}

	// Chosen domains keep their order; given classes set the label order.
	ds, err = ScanFolders(root, []string{"b_dom", "a_dom"}, []string{"zebra", "mango", "kiwi", "apple"})
	if err != nil {
		t.Fatal(err)
	}
	if got := names(ds.Domains[0]); ds.Domains[0].Name != "b_dom" || got[0] != "b_dom/zebra/10.jpg" || ds.Domains[0].Images[0].Label != 0 {
		t.Errorf("b_dom first: %q label %d", got[0], ds.Domains[0].Images[0].Label)
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func TestScanFoldersErrors(t *testing.T) {
	root := t.TempDir()
	touch(t, root, "d/c/1.jpg", "empty/c/readme.md")
	looseOnly := t.TempDir()
	touch(t, looseOnly, "source/1.jpg", "target/2.jpg")
	cases := []struct {
		root             string
		domains, classes []string
		want             string
	}{
		{t.TempDir(), nil, nil, "has no domain folders"},
		{filepath.Join(root, "nope"), nil, nil, "no such file"},
		{root, []string{"x"}, nil, `domain "x"`},
		{root, []string{"d"}, []string{"other"}, `class folder "c" is not one of the classes given (1 class)`},
		{root, nil, nil, `domain "empty": no images`},
		{looseOnly, nil, nil, "no domain has class folders, so the class names that the prompts need are unknown; give them with --classes FILE"},
	}
	for _, c := range cases {
		if _, err := ScanFolders(c.root, c.domains, c.classes); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("ScanFolders(%s, %q, %q): err = %v, want %q", c.root, c.domains, c.classes, err, c.want)
		}
	}
}

// TestScanFoldersUnlabelled checks the images directly in a domain folder:
// unlabelled, after the domain's class folders, sorted by path.
func TestScanFoldersUnlabelled(t *testing.T) {
	cases := []struct {
		name    string
		files   []string
		classes []string
		want    string // the images.txt of every domain, "LABEL NAME" lines
	}{
		{"a loose target domain",
			[]string{"source/mug/1.jpg", "source/bike/2.jpg", "target/b.jpg", "target/a.PNG", "target/notes.txt", "target/.hidden.jpg"}, nil,
			"0 source/bike/2.jpg\n1 source/mug/1.jpg\n-1 target/a.PNG\n-1 target/b.jpg\n"},
		{"a domain of class folders and loose images",
			[]string{"d/z.jpg", "d/mug/1.jpg", "d/a.jpg", "d/bike/2.jpg", "d/bike/sub/3.jpg"}, nil,
			"0 d/bike/2.jpg\n0 d/bike/sub/3.jpg\n1 d/mug/1.jpg\n-1 d/a.jpg\n-1 d/z.jpg\n"},
		{"only loose images, classes given",
			[]string{"target/x.jpg", "target/y.png"}, []string{"cat", "dog"},
			"-1 target/x.jpg\n-1 target/y.png\n"},
	}
	for _, c := range cases {
		root := filepath.Join(t.TempDir(), "Office", "images")
		touch(t, root, c.files...)
		ds, err := ScanFolders(root, nil, c.classes)
		if err != nil {
			t.Errorf("%s: %v", c.name, err)
			continue
		}
		var got strings.Builder
		for _, d := range ds.Domains {
			got.Write(imageList(d.Images))
			for _, im := range d.Images {
				if want := filepath.Join(root, filepath.FromSlash(im.Name)); im.Path != want {
					t.Errorf("%s: %s: path %q, want %q", c.name, im.Name, im.Path, want)
				}
			}
		}
		if got.String() != c.want {
			t.Errorf("%s: images\n%s\nwant\n%s", c.name, got.String(), c.want)
		}
		if ds.Name != "Office" || len(ds.Warnings) != 0 {
			t.Errorf("%s: name %q, warnings %q; want Office and none", c.name, ds.Name, ds.Warnings)
		}
	}
}

// TestDatasetWarnings checks the warnings about empty class folders and
// classes without a labelled image.
func TestDatasetWarnings(t *testing.T) {
	many := []string{"bike"}
	for i := range 12 {
		many = append(many, fmt.Sprintf("c%02d", i))
	}
	cases := []struct {
		name    string
		files   []string
		classes []string
		want    []string
	}{
		{"empty class folders",
			[]string{"amazon/bike/1.jpg", "amazon/mug/", "webcam/bike/2.jpg", "webcam/mug/readme.txt", "webcam/3.jpg"}, nil,
			[]string{"domain amazon: class folder mug has no images", "domain webcam: class folder mug has no images",
				"class mug has no labelled image in any domain"}},
		{"a given class without images",
			[]string{"amazon/bike/1.jpg", "amazon/mug/2.jpg"}, []string{"bike", "mug", "ring_binder"},
			[]string{"class ring_binder has no labelled image in any domain"}},
		{"many given classes without images",
			[]string{"amazon/bike/1.jpg"}, many,
			[]string{"12 classes have no labelled image in any domain: c00, c01, c02, c03, c04, c05, c06, c07, c08, c09 and 2 more"}},
		{"no labelled image at all", []string{"target/1.jpg"}, []string{"bike", "mug"}, nil},
	}
	for _, c := range cases {
		root := t.TempDir()
		touch(t, root, c.files...)
		ds, err := ScanFolders(root, nil, c.classes)
		if err != nil {
			t.Errorf("%s: %v", c.name, err)
			continue
		}
		if !slices.Equal(ds.Warnings, c.want) {
			t.Errorf("%s: warnings\n%q\nwant\n%q", c.name, ds.Warnings, c.want)
		}
	}
	// Image lists: the given classes that no line is labelled with.
	f := writeText(t, filepath.Join(t.TempDir(), "L.txt"), "a/B/1.jpg 0\na/x.jpg\n")
	ds, err := ReadLists(".", []List{{"L", f}}, []string{"B", "C"})
	if err != nil || !slices.Equal(ds.Warnings, []string{"class C has no labelled image in any domain"}) {
		t.Errorf("lists: warnings %q, %v", ds.Warnings, err)
	}
}

// TestDatasetName checks the default dataset name: the folder's name, going
// up past generic names.
func TestDatasetName(t *testing.T) {
	wd, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	cases := map[string]string{
		"/work/shared/data/office_caltech10/images": "office_caltech10",
		"/x/OfficeHome":                  "OfficeHome",
		"/x/Office/data/Images/":         "Office",
		"/x/my_photos/pictures/imgs/img": "pictures",
		"/home/alice/photos":             "photos",
		"/data/images":                   "images", // nothing but generic names: the folder's own
		"/":                              "dataset",
		"rel/images":                     "rel",
		".":                              filepath.Base(wd),
	}
	for dir, want := range cases {
		if got := datasetName(filepath.FromSlash(dir)); got != want {
			t.Errorf("datasetName(%q) = %q, want %q", dir, got, want)
		}
	}
}

func writeText(t *testing.T, path, text string) string {
	t.Helper()
	must(t, os.MkdirAll(filepath.Dir(path), 0o755))
	must(t, os.WriteFile(path, []byte(text), 0o644))
	return path
}

func TestReadLists(t *testing.T) {
	dir := t.TempDir()
	art := writeText(t, filepath.Join(dir, "Art.txt"),
		"./dataset/OfficeHome/Art/Exit_Sign/1.jpg 1\n./dataset/OfficeHome/Art/Drill/2.jpg 0\n\n/abs/Art/Drill/3.jpg 0\n")
	clip := writeText(t, filepath.Join(dir, "lists", "Clipart.txt"), "./dataset/OfficeHome/Clipart/Drill/9.jpg  0\n")
	lists := []List{{"Art", art}, {"Clipart", clip}}
	ds, err := ReadLists("/data", lists, nil)
	if err != nil {
		t.Fatal(err)
	}
	if ds.Name != "OfficeHome" || !slices.Equal(ds.Classes, []string{"Drill", "Exit_Sign"}) {
		t.Errorf("name %q classes %q", ds.Name, ds.Classes)
	}
	want := []Image{
		{Path: "/data/dataset/OfficeHome/Art/Exit_Sign/1.jpg", Name: "./dataset/OfficeHome/Art/Exit_Sign/1.jpg", Label: 1},
		{Path: "/data/dataset/OfficeHome/Art/Drill/2.jpg", Name: "./dataset/OfficeHome/Art/Drill/2.jpg", Label: 0},
		{Path: "/abs/Art/Drill/3.jpg", Name: "/abs/Art/Drill/3.jpg", Label: 0},
	}
	if !slices.Equal(ds.Domains[0].Images, want) || ds.Domains[1].Name != "Clipart" || len(ds.Domains[1].Images) != 1 {
		t.Errorf("domains %+v", ds.Domains)
	}

	bad := []struct{ text, want string }{
		{"a/B/1.jpg 0\na/C/2.jpg 0\n", `label 0 is for folder "C" here but for "B" at`},
		{"a/B/1.jpg 0\na/B/2.jpg 1\n", `folder "B" has label 1 here but 0 at`},
		{"a/B/1.jpg -2\n", `L.txt:1: label -2 in "a/B/1.jpg -2": want a class index (0, 1, ...) or -1 for an unlabelled image`},
		{"a/B/1.jpg 1\n", "no image has label 0 (labels go up to 1)"},
		{"a/B/1.jpg 0\na/D/1.jpg 3\n", "no image has label 1 (labels go up to 3)"},
		{"a/B/1.jpg\na/B/2.jpg -1\n", "no line of the image lists has a label, so the class names that the prompts need are unknown; give them with --classes FILE"},
		{"\n", "lists no images"},
	}
	for _, c := range bad {
		f := writeText(t, filepath.Join(t.TempDir(), "L.txt"), c.text)
		if _, err := ReadLists(".", []List{{"L", f}}, nil); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("list %q: err = %v, want %q", c.text, err, c.want)
		}
	}
	f := writeText(t, filepath.Join(t.TempDir(), "L.txt"), "a/B/1.jpg 0\na/C/2.jpg 1\n")
	if ds, err := ReadLists(".", []List{{"L", f}}, []string{"B", "C", "D"}); err != nil || len(ds.Classes) != 3 {
		t.Errorf("with classes: %v", err)
	}
	for classes, want := range map[string]string{"C,B": `label 0 is class "C" but the image is in folder "B"`, "B": "label 1 is outside the classes given (1 class)"} {
		if _, err := ReadLists(".", []List{{"L", f}}, strings.Split(classes, ",")); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("classes %s: err = %v, want %q", classes, err, want)
		}
	}
}

// TestReadListsUnlabelled reads lines without a label or with label -1:
// unlabelled images that bind no class folder.
func TestReadListsUnlabelled(t *testing.T) {
	dir := t.TempDir()
	source := writeText(t, filepath.Join(dir, "source.txt"), "data/Office/amazon/mug/1.jpg 1\ndata/Office/amazon/bike/2.jpg 0\n")
	target := writeText(t, filepath.Join(dir, "target.txt"),
		"data/Office/target/x.jpg\ndata/Office/target/y.jpg -1\n  data/Office/target/w.jpg \t -1  \nmy photos/target/z 2.jpg\n"+
			"data/Office/target/17\n./data/Office/target/No 5\tx.jpg\n")
	ds, err := ReadLists("/root", []List{{"target", target}, {"source", source}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	// The dataset is named after the folder above the domain folder of the
	// first labelled image.
	if ds.Name != "Office" || !slices.Equal(ds.Classes, []string{"bike", "mug"}) || len(ds.Warnings) != 0 {
		t.Errorf("name %q, classes %q, warnings %q", ds.Name, ds.Classes, ds.Warnings)
	}
	want := []Image{
		{Path: "/root/data/Office/target/x.jpg", Name: "data/Office/target/x.jpg", Label: -1},
		{Path: "/root/data/Office/target/y.jpg", Name: "data/Office/target/y.jpg", Label: -1},
		{Path: "/root/data/Office/target/w.jpg", Name: "data/Office/target/w.jpg", Label: -1},
		{Path: "/root/my photos/target/z 2.jpg", Name: "my photos/target/z 2.jpg", Label: -1}, // "2.jpg" is no label
		{Path: "/root/data/Office/target/17", Name: "data/Office/target/17", Label: -1},       // one field: the path
		{Path: "/root/data/Office/target/No 5\tx.jpg", Name: "./data/Office/target/No 5\tx.jpg", Label: -1},
	}
	want[5].Path = filepath.Join("/root", want[5].Name)
	if !slices.Equal(ds.Domains[0].Images, want) {
		t.Errorf("target images\n%+v\nwant\n%+v", ds.Domains[0].Images, want)
	}
	if got := ds.Domains[1].Images; len(got) != 2 || got[0].Label != 1 || got[1].Label != 0 {
		t.Errorf("source images %+v", got)
	}

	// A list of unlabelled images only, with the classes given; its images
	// may sit in folders named like no class. The dataset is named after the
	// folder above the first image's folder, generic names skipped.
	only := writeText(t, filepath.Join(dir, "only.txt"), "Proj/images/target/1.jpg -1\nProj/images/target/other/2.jpg\n")
	ds, err = ReadLists(dir, []List{{"target", only}}, []string{"bike", "mug"})
	if err != nil {
		t.Fatal(err)
	}
	if ds.Name != "Proj" || len(ds.Domains[0].Images) != 2 || ds.Domains[0].Images[0].Label != -1 {
		t.Errorf("unlabelled only: name %q, images %+v", ds.Name, ds.Domains[0].Images)
	}
}

// TestReadReferenceLists reads the reference code's Office-Home lists: the
// classes must come out as classnames.txt gives them, which was derived
// independently (order of first appearance).
func TestReadReferenceLists(t *testing.T) {
	dir := shareddata.Dir(t, "unimos_officehome_lists")
	var lists []List
	for _, d := range []string{"Art", "Clipart", "Product", "Real_World"} {
		l, err := ParseList(filepath.Join(dir, d+".txt"))
		if err != nil || l.Domain != d {
			t.Fatalf("ParseList: %+v, %v", l, err)
		}
		lists = append(lists, l)
	}
	ds, err := ReadLists("/unimos", lists, nil)
	if err != nil {
		t.Fatal(err)
	}
	want, err := ReadClassFile(filepath.Join(dir, "classnames.txt"))
	if err != nil {
		t.Fatal(err)
	}
	if len(want) != 65 || want[1] != "Exit_Sign" || !slices.Equal(ds.Classes, want) {
		t.Errorf("classes %q, want classnames.txt %q", ds.Classes, want)
	}
	if ds.Name != "OfficeHome" {
		t.Errorf("name %q", ds.Name)
	}
	for i, n := range []int{2427, 4365, 4439, 4357} {
		if len(ds.Domains[i].Images) != n {
			t.Errorf("%s: %d images, want %d", ds.Domains[i].Name, len(ds.Domains[i].Images), n)
		}
	}
	if im := ds.Domains[0].Images[0]; im.Name != "./dataset/OfficeHome/Art/Drill/00014.jpg" || im.Path != "/unimos/dataset/OfficeHome/Art/Drill/00014.jpg" {
		t.Errorf("first image %+v", im)
	}
	// With the classes given, the lists must agree with them.
	if _, err := ReadLists("/unimos", lists, want); err != nil {
		t.Error(err)
	}
}

func TestReadClassFile(t *testing.T) {
	dir := t.TempDir()
	cases := []struct {
		text string
		want []string
		err  string
	}{
		{"cat\ndog house\n\nbird\n", []string{"cat", "dog house", "bird"}, ""},
		{"0 Drill\n1 Exit_Sign\n2 Bottle\n", []string{"Drill", "Exit_Sign", "Bottle"}, ""},
		{"0 Drill\n2 Exit_Sign\n", []string{"0 Drill", "2 Exit_Sign"}, ""}, // not numbered in order: names as written
		{"a\nb\na\n", nil, `class "a" is listed twice (entries 1 and 3)`},
		{"\n\n", nil, "no class names"},
	}
	for i, c := range cases {
		path := writeText(t, filepath.Join(dir, "c"+string(rune('0'+i))), c.text)
		got, err := ReadClassFile(path)
		if c.err != "" {
			if err == nil || !strings.Contains(err.Error(), c.err) {
				t.Errorf("%q: err = %v, want %q", c.text, err, c.err)
			}
			continue
		}
		if err != nil || !slices.Equal(got, c.want) {
			t.Errorf("%q: %q, %v; want %q", c.text, got, err, c.want)
		}
	}
}

func TestParseList(t *testing.T) {
	cases := map[string]List{
		"Art=/x/a.txt":      {"Art", "/x/a.txt"},
		"/x/Real_World.txt": {"Real_World", "/x/Real_World.txt"},
		"a=b=c":             {"a", "b=c"},
	}
	for s, want := range cases {
		if got, err := ParseList(s); err != nil || got != want {
			t.Errorf("ParseList(%q) = %+v, %v", s, got, err)
		}
	}
	for _, s := range []string{"", "=x", "x="} {
		if _, err := ParseList(s); err == nil {
			t.Errorf("ParseList(%q) accepted", s)
		}
	}
}
