package extract

import (
	"context"
	"maps"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/unimos/unimos/internal/testkit"
)

// TestHostileImages names, beside good images, a named pipe, a link to
// /dev/zero, a decompression bomb and (in a list) a missing file, in a list
// and in class folders: each is skipped into skipped.txt with its reason
// (the pipe without being opened, which would block for ever), and the
// extraction finishes.
func TestHostileImages(t *testing.T) {
	m := fixtureModel(t, "vit_tiny.safetensors")
	root := t.TempDir()
	writeNoisePNG(t, filepath.Join(root, "A", "cat", "good1.png"), 40, 30, 1)
	writeNoisePNG(t, filepath.Join(root, "A", "dog", "good2.png"), 30, 40, 2)
	testkit.MakeFIFO(t, filepath.Join(root, "A", "cat", "pipe.jpg"))
	testkit.LinkToDevZero(t, filepath.Join(root, "A", "cat", "zero.jpg"))
	if err := os.WriteFile(filepath.Join(root, "A", "dog", "bomb.png"), testkit.PNGDeclaring(60000, 60000), 0o644); err != nil {
		t.Fatal(err)
	}
	list := filepath.Join(root, "A.txt")
	if err := os.WriteFile(list, []byte("A/cat/good1.png 0\nA/cat/pipe.jpg 0\nA/cat/zero.jpg 0\nA/dog/bomb.png 1\nA/dog/gone.png 1\nA/dog/good2.png 1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	hostile := map[string]string{
		"A/cat/pipe.jpg": "is a named pipe, not an image file",
		"A/cat/zero.jpg": "is a character device, not an image file",
		"A/dog/bomb.png": "png image of 60000×60000 pixels exceeds the limit of 178956970 pixels",
	}
	cases := []struct {
		name string
		read func() (*Dataset, error)
		want map[string]string // skipped image: reason
	}{
		{"list", func() (*Dataset, error) { return ReadLists(root, []List{{Domain: "A", File: list}}, nil) },
			merged(hostile, map[string]string{"A/dog/gone.png": "no such file or directory"})},
		{"folders", func() (*Dataset, error) { return ScanFolders(root, nil, nil) }, hostile},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			ds, err := c.read()
			if err != nil {
				t.Fatal(err)
			}
			out := filepath.Join(t.TempDir(), "store")
			var sum *Summary
			testkit.Within(t, 60*time.Second, func() {
				sum, err = run(t, context.Background(), m, ds, Options{Out: out, Batch: 2})
			})
			if err != nil {
				t.Fatal(err)
			}
			if len(sum.Skipped) != len(c.want) {
				t.Fatalf("skipped %v; want %d images", sum.Skipped, len(c.want))
			}
			skipped, err := os.ReadFile(filepath.Join(out, SkippedFile))
			if err != nil {
				t.Fatal(err)
			}
			for _, s := range sum.Skipped {
				if !strings.Contains(s.Reason, c.want[s.Name]) || c.want[s.Name] == "" {
					t.Errorf("skipped %s: %q; want %q", s.Name, s.Reason, c.want[s.Name])
				}
				if !strings.Contains(string(skipped), s.Name+"\t") {
					t.Errorf("skipped.txt does not list %s:\n%s", s.Name, skipped)
				}
			}
		})
	}
}

// merged returns the entries of a and b in a new map.
func merged(a, b map[string]string) map[string]string {
	out := maps.Clone(a)
	maps.Copy(out, b)
	return out
}

// TestLineBreakInImageName checks that an image whose name holds a line
// break, which paths.txt cannot record, is skipped into skipped.txt (its
// name quoted) instead of stopping the extraction.
func TestLineBreakInImageName(t *testing.T) {
	m := fixtureModel(t, "vit_tiny.safetensors")
	root := filepath.Join(t.TempDir(), "photos")
	writeNoisePNG(t, filepath.Join(root, "A", "cat", "good.png"), 40, 30, 1)
	writeNoisePNG(t, filepath.Join(root, "A", "cat", "two\nlines.png"), 40, 30, 2)
	ds, err := ScanFolders(root, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(t.TempDir(), "store")
	sum := mustRun(t, m, ds, Options{Out: out, Batch: 4})
	if len(sum.Skipped) != 1 || sum.Skipped[0].Name != `"A/cat/two\nlines.png"` {
		t.Fatalf("skipped %v; want the image with the line break, its name quoted", sum.Skipped)
	}
	skipped, err := os.ReadFile(filepath.Join(out, SkippedFile))
	if err != nil {
		t.Fatal(err)
	}
	if want := "\"A/cat/two\\nlines.png\"\tits name holds a line break, which the store's list of image paths cannot record; rename the file\n"; string(skipped) != want {
		t.Errorf("skipped.txt is %q, want %q", skipped, want)
	}
	paths, err := os.ReadFile(filepath.Join(out, "A.paths.txt"))
	if err != nil || string(paths) != "A/cat/good.png\n" {
		t.Errorf("A.paths.txt is %q (%v), want the good image alone", paths, err)
	}
}

// TestBadNames checks that domain and class names that a store cannot
// hold (not UTF-8, control characters) are refused when the folders, lists
// and class files are read, before any work, saying where the name is.
func TestBadNames(t *testing.T) {
	mkdir := func(t *testing.T, parts ...string) string {
		dir := filepath.Join(parts...)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		return dir
	}
	write := func(t *testing.T, path, content string) string {
		if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
		return path
	}
	cases := []struct {
		name string
		read func(t *testing.T, root string) error
		want string
	}{
		{"domain folder not UTF-8", func(t *testing.T, root string) error {
			writeNoisePNG(t, filepath.Join(mkdir(t, root, "B\xff", "cat"), "x.png"), 8, 8, 1)
			_, err := ScanFolders(root, nil, nil)
			return err
		}, `B` + "\xff" + `: domain name "B\xff" is not valid UTF-8; rename the folder`},
		{"class folder with a tab", func(t *testing.T, root string) error {
			writeNoisePNG(t, filepath.Join(mkdir(t, root, "A", "big\tcat"), "x.png"), 8, 8, 1)
			_, err := ScanFolders(root, nil, nil)
			return err
		}, `class name "big\tcat" contains the control character U+0009; rename the folder`},
		{"domain named by a list", func(t *testing.T, root string) error {
			list := write(t, filepath.Join(root, "l.txt"), "A/cat/x.png 0\n")
			_, err := ReadLists(root, []List{{Domain: "B\xfe", File: list}}, nil)
			return err
		}, `domain name "B\xfe" is not valid UTF-8; name the domain with --list DOMAIN=FILE`},
		{"class folder of a listed image", func(t *testing.T, root string) error {
			list := write(t, filepath.Join(root, "l.txt"), "A/cat/x.png 0\nA/d\x01g/y.png 1\n")
			_, err := ReadLists(root, []List{{Domain: "A", File: list}}, nil)
			return err
		}, `l.txt:2: class name "d\x01g" contains the control character U+0001`},
		{"class file", func(t *testing.T, root string) error {
			_, err := ReadClassFile(write(t, filepath.Join(root, "classes.txt"), "cat\nd\xc3g\n"))
			return err
		}, `classes.txt: entry 2: class name "d\xc3g" is not valid UTF-8; correct the class file`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			err := c.read(t, t.TempDir())
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Errorf("got %v, want an error saying %q", err, c.want)
			}
		})
	}
}

// TestSpecialListFiles checks that image lists and class files are read
// only when they are regular files of a sensible size.
func TestSpecialListFiles(t *testing.T) {
	dir := t.TempDir()
	pipe, zero, big := filepath.Join(dir, "pipe.txt"), filepath.Join(dir, "zero.txt"), filepath.Join(dir, "big.txt")
	testkit.MakeFIFO(t, pipe)
	testkit.LinkToDevZero(t, zero)
	if err := os.WriteFile(big, []byte(strings.Repeat("a/b/c.png 0\n", maxListBytes/12+1)), 0o644); err != nil {
		t.Fatal(err)
	}
	for path, want := range map[string]string{
		pipe: "is a named pipe, not a text file",
		zero: "is a character device, not a text file",
		big:  "more than the 64 MiB that a text file may be",
	} {
		var errList, errClasses error
		testkit.Within(t, 10*time.Second, func() {
			_, errList = ReadLists(dir, []List{{Domain: "A", File: path}}, nil)
			_, errClasses = ReadClassFile(path)
		})
		for _, err := range []error{errList, errClasses} {
			if err == nil || !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), path) {
				t.Errorf("%s: got %v, want an error naming it and saying %q", path, err, want)
			}
		}
	}
}

// TestStopDoesNotWaitForAStuckDecoder cancels an extraction whose decoder
// never returns (a read hanging on a broken network mount): decodeAhead
// must return after stopGrace rather than wait for ever.
func TestStopDoesNotWaitForAStuckDecoder(t *testing.T) {
	defer func(old time.Duration) { stopGrace = old }(stopGrace)
	stopGrace = 50 * time.Millisecond
	stuck := make(chan struct{})
	defer close(stuck)
	p := &Plan{Batch: 2, Domains: []DomainPlan{{Name: "A", Images: 4}}}
	images := make([]Image, 4)
	decode := func(Image) ([]float32, string) {
		<-stuck
		return nil, "released"
	}
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	var err error
	testkit.Within(t, 10*time.Second, func() {
		err = decodeAhead(ctx, p, 0, []int{0, 1}, images, decode, 2, func(*batchWork) error { return nil })
	})
	if err != context.DeadlineExceeded {
		t.Errorf("got %v, want the context's error", err)
	}
}

// TestSpecialShardFiles checks that the files merge reads whole from a
// shard, its plan and its image lists, are refused at once, naming them,
// when they are not regular files.
func TestSpecialShardFiles(t *testing.T) {
	shard := t.TempDir()
	plan := filepath.Join(shard, shardFile)
	testkit.RefusesSpecialFiles(t, plan, func() error { _, err := readPlan(plan); return err })
	p := &Plan{Domains: []DomainPlan{{Name: "A", Images: 1}}}
	testkit.RefusesSpecialFiles(t, filepath.Join(shard, chunksDir, "A", imagesFile), func() error {
		_, err := readImageList(shard, p, 0)
		return err
	})
}
