package extract

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/unimos/unimos/internal/shareddata"
)

// touch creates the named files (empty) below root.
func touch(t *testing.T, root string, names ...string) {
	t.Helper()
	for _, n := range names {
		path := filepath.Join(root, filepath.FromSlash(n))
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
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
	wantB := []string{"b_dom/apple/sub/y.webp", "b_dom/apple/x.PNG", "b_dom/zebra/10.jpg", "b_dom/zebra/2.jpg"}
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
	if want := []int{0, 0, 1, 2, 0, 0, 3, 3}; !slices.Equal(labels, want) {
		t.Errorf("labels %v, want %v", labels, want)
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
	cases := []struct {
		root             string
		domains, classes []string
		want             string
	}{
		{t.TempDir(), nil, nil, "has no domain folders"},
		{filepath.Join(root, "nope"), nil, nil, "no such file"},
		{root, []string{"x"}, nil, `domain "x"`},
		{root, []string{"d"}, []string{"other"}, `class folder "c" is not one of the 1 given classes`},
		{root, nil, nil, `domain "empty": no images`},
	}
	for _, c := range cases {
		if _, err := ScanFolders(c.root, c.domains, c.classes); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("ScanFolders(%s, %q, %q): err = %v, want %q", c.root, c.domains, c.classes, err, c.want)
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
		{"a/B/1.jpg\n", `want "PATH LABEL"`},
		{"a/B/1.jpg x\n", "non-negative integer label"},
		{"a/B/1.jpg -1\n", "non-negative integer label"},
		{"a/B/1.jpg 1\n", "no image has label 0"},
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
	for classes, want := range map[string]string{"C,B": `label 0 is class "C" but the image is in folder "B"`, "B": "outside the 1 given classes"} {
		if _, err := ReadLists(".", []List{{"L", f}}, strings.Split(classes, ",")); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("classes %s: err = %v, want %q", classes, err, want)
		}
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
