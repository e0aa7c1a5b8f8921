package features

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/unimos/unimos/internal/testkit"
	"github.com/unimos/unimos/tensor"
)

// TestSpecialStoreFiles replaces each file a reader opens with a named
// pipe, a link to /dev/zero or an oversized file, and checks that the
// reader refuses it at once with an error naming it, instead of hanging or
// running out of memory.
func TestSpecialStoreFiles(t *testing.T) {
	replacements := []struct {
		name string
		make func(t *testing.T, path string)
		want string
	}{
		{"named pipe", func(t *testing.T, p string) { testkit.MakeFIFO(t, p) }, "is a named pipe, not a"},
		{"/dev/zero", func(t *testing.T, p string) { testkit.LinkToDevZero(t, p) }, "is a character device, not a"},
		{"folder", func(t *testing.T, p string) { os.Mkdir(p, 0o755) }, "is a folder, not a"},
	}
	files := []struct {
		file string
		read func(dir string) error
	}{
		{DatasetFile, func(dir string) error { _, err := Open(dir); return err }},
		{"src.paths.txt", func(dir string) error { return domainOf(dir, "src") }},
		{"src.safetensors", func(dir string) error { return domainOf(dir, "src") }},
		{"text/src.safetensors", func(dir string) error {
			s, err := Open(dir)
			if err == nil {
				_, err = s.Text("src")
			}
			return err
		}},
	}
	for _, r := range replacements {
		for _, f := range files {
			t.Run(r.name+" as "+f.file, func(t *testing.T) {
				dir := makeStore(t, testDataset, map[string][]byte{"src.safetensors": validSrc()})
				path := filepath.Join(dir, f.file)
				os.Remove(path)
				os.MkdirAll(filepath.Dir(path), 0o755)
				r.make(t, path)
				var err error
				testkit.Within(t, 5*time.Second, func() { err = f.read(dir) })
				wantError(t, err, path, r.want)
			})
		}
	}
}

// domainOf loads a domain of the store in dir.
func domainOf(dir, domain string) error {
	s, err := Open(dir)
	if err != nil {
		return err
	}
	s.Warn = func(string) {}
	_, err = s.Domain(domain)
	return err
}

// TestOversizedStoreFiles checks the caps on the files read whole.
func TestOversizedStoreFiles(t *testing.T) {
	big := func(n int) []byte { return []byte(strings.Repeat("x\n", n/2+1)) }
	dir := makeStore(t, testDataset, map[string][]byte{"src.safetensors": validSrc(), "src.paths.txt": big(maxPathsBytes)})
	wantError(t, domainOf(dir, "src"), "src.paths.txt", "more than the 64 MiB that a text file may be")

	dir = makeStore(t, testDataset, map[string][]byte{})
	if err := os.WriteFile(filepath.Join(dir, DatasetFile), big(maxDatasetBytes), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := Open(dir)
	wantError(t, err, DatasetFile, "more than the 16 MiB that a JSON file may be")
}

// TestNames checks the names a store refuses, in every writer and reader:
// invalid UTF-8, which dataset.json would record as U+FFFD while the
// domain's files keep the raw bytes, and control characters.
func TestNames(t *testing.T) {
	unit := tensor.FromSlice(1, 2, []float32{1, 0})
	cases := []struct {
		kind NameKind
		name string
		want string // "" when accepted
	}{
		{DomainName, "Real_World", ""},
		{DomainName, "Clip art é", ""},
		{ClassName, "a/b", ""}, // a class is no file name
		{DomainName, "B\xff", `domain name "B\xff" is not valid UTF-8`},
		{ClassName, "mug\xc3", `class name "mug\xc3" is not valid UTF-8`},
		{DomainName, "two\nlines", `domain name "two\nlines" contains the control character U+000A`},
		{ClassName, "tab\tbed", `class name "tab\tbed" contains the control character U+0009`},
		{ClassName, "nul\x00", "U+0000"},
		{ClassName, "del\x7f", "U+007F"},
		{ClassName, "c1\u0085", "U+0085"},
		{DomainName, "a/b", "cannot be used as a file name"},
		{DomainName, "..", "cannot be used as a file name"},
	}
	for _, c := range cases {
		err := CheckName(c.kind, c.name)
		if c.want == "" {
			if err != nil {
				t.Errorf("%s %q: %v", c.kind, c.name, err)
			}
			continue
		}
		wantError(t, err, c.want)

		// Every writer refuses it, and so does Open.
		meta := Dataset{Name: "x", Dim: 2, Classes: []string{"a"}, Domains: []string{"d"}}
		if c.kind == DomainName {
			meta.Domains = []string{c.name}
			wantError(t, WriteDomain(t.TempDir(), &Domain{Name: c.name, Features: unit, Labels: []int{0}}), c.want)
			wantError(t, WriteText(t.TempDir(), c.name, unit), c.want)
		} else {
			meta.Classes = []string{c.name}
		}
		dir := t.TempDir()
		wantError(t, WriteDataset(dir, meta), c.want)
		if entries, _ := os.ReadDir(dir); len(entries) != 0 {
			t.Errorf("%q: a refused write left %d files", c.name, len(entries))
		}
		_, err = Open(makeStore(t, jsonDataset(meta), map[string][]byte{}))
		if utf8.ValidString(c.name) {
			wantError(t, err, c.want)
		} else {
			wantError(t, err, "is not valid UTF-8; names must be UTF-8 text")
		}
	}
}

// jsonDataset writes meta as another tool might: names that are not UTF-8
// go in as raw bytes (encoding/json would write U+FFFD).
func jsonDataset(meta Dataset) string {
	list := func(names []string) string {
		quoted := make([]string, len(names))
		for i, n := range names {
			if utf8.ValidString(n) {
				b, _ := json.Marshal(n)
				quoted[i] = string(b)
			} else {
				quoted[i] = `"` + n + `"`
			}
		}
		return "[" + strings.Join(quoted, ",") + "]"
	}
	return fmt.Sprintf(`{"name":%q,"backbone":"b","dim":%d,"classes":%s,"domains":%s}`, meta.Name, meta.Dim, list(meta.Classes), list(meta.Domains))
}
