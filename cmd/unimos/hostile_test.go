package main

// Hostile inputs at the command line: small files that claim huge arrays
// or images, special files (named pipes, /dev/zero) where files are
// expected, and names a store cannot hold. Every command must answer with
// exit status 1 and a message naming the file, promptly and without
// spending memory on what the file only claims to hold.

import (
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/unimos/unimos/internal/testkit"
)

// labelsBombNPZ is the reliability probe's file, scaled down: a .npz of
// about 64 KB whose features are 2 rows and whose labels.npy inflates to
// 64 MiB of uint8 (512 MiB as int64).
func labelsBombNPZ(t *testing.T) []byte {
	t.Helper()
	return testkit.Zip(t,
		testkit.ZipMember{Name: "features.npy", Data: f32NPY("(2, 2)", []float32{1, 0, 0, 1}), Deflate: true},
		testkit.ZipMember{Name: "labels.npy", Data: testkit.NPY(1, testkit.NPYHeader("|u1", false, "(67108864,)"), make([]byte, 64<<20)), Deflate: true})
}

// f32NPY is a .npy file of little-endian float32 values of the given shape
// tuple ("(2, 3)").
func f32NPY(shape string, values []float32) []byte {
	return testkit.NPY(1, testkit.NPYHeader("<f4", false, shape), f32LE(values))
}

// hostileCall runs the command line, which must fail with status 1 within
// 30 s, naming every fragment, and allocate less than maxAlloc bytes.
func hostileCall(t *testing.T, maxAlloc uint64, want []string, args ...string) {
	t.Helper()
	var code int
	var stderr string
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	testkit.Within(t, 30*time.Second, func() { code, _, stderr = runCLI(t, args...) })
	runtime.ReadMemStats(&after)
	if code != 1 {
		t.Errorf("%q: status %d, want 1; stderr %q", args, code, stderr)
	}
	for _, w := range want {
		if !strings.Contains(stderr, w) {
			t.Errorf("%q: stderr %q does not say %q", args, stderr, w)
		}
	}
	if used := after.TotalAlloc - before.TotalAlloc; used > maxAlloc {
		t.Errorf("%q: allocated %d bytes, more than %d", args, used, maxAlloc)
	}
}

func TestHostileImportInputs(t *testing.T) {
	dir := t.TempDir()
	bomb := filepath.Join(dir, "bomb.npz")
	testkit.WriteFile(t, bomb, labelsBombNPZ(t))
	pipe := filepath.Join(dir, "pipe.npy")
	testkit.MakeFIFO(t, pipe)
	zero := filepath.Join(dir, "zero.npz")
	testkit.LinkToDevZero(t, zero)
	good := filepath.Join(dir, "good.npy")
	testkit.WriteFile(t, good, f32NPY("(2, 2)", []float32{1, 0, 0, 1}))
	out := filepath.Join(dir, "store")

	hostileCall(t, 16<<20, []string{bomb, "labels: want a 1-D integer array [2] to match the features, got uint8 [67108864]"},
		"import", "--out", out, "--domain", "A", "--from", bomb)
	hostileCall(t, 16<<20, []string{pipe, "is a named pipe, not a .npy file"},
		"import", "--out", out, "--domain", "A", "--from", pipe)
	hostileCall(t, 16<<20, []string{zero, "is a character device, not a .npz file"},
		"import", "--out", out, "--domain", "A", "--from", zero)
	hostileCall(t, 16<<20, []string{pipe, "is a named pipe, not a .npy file"},
		"import", "--out", out, "--domain", "A", "--from", good, "--labels", pipe)
	hostileCall(t, 16<<20, []string{`domain name "B\xff" is not valid UTF-8`},
		"import", "--out", out, "--domain", "B\xff", "--from", good, "--classes", writeClassFile(t, dir))
	hostileCall(t, 16<<20, []string{`domain name "two\nlines" contains the control character U+000A`},
		"import", "--out", out, "--domain", "two\nlines", "--from", good, "--classes", writeClassFile(t, dir))
	if _, err := os.Stat(out); err == nil {
		t.Errorf("failed imports left %s behind", out)
	}
}

// writeClassFile writes a class file of two classes in dir.
func writeClassFile(t *testing.T, dir string) string {
	path := filepath.Join(dir, "classes.txt")
	writeLines(t, path, "cat", "dog")
	return path
}

func TestHostileStoreFiles(t *testing.T) {
	good := filepath.Join(t.TempDir(), "good")
	tinyStore(t, good)
	for _, special := range []struct {
		name string
		make func(t *testing.T, path string)
		want string
	}{
		{"pipe", func(t *testing.T, p string) { testkit.MakeFIFO(t, p) }, "is a named pipe, not a"},
		{"zero", func(t *testing.T, p string) { testkit.LinkToDevZero(t, p) }, "is a character device, not a"},
	} {
		for _, file := range []string{"dataset.json", "photo.paths.txt", "photo.safetensors"} {
			store := filepath.Join(t.TempDir(), "store")
			testkit.CopyTree(t, good, store)
			path := filepath.Join(store, file)
			os.Remove(path)
			special.make(t, path)
			hostileCall(t, 64<<20, []string{path, special.want}, "inspect", store)
		}
	}
}

func TestHostileExtractInputs(t *testing.T) {
	dir := t.TempDir()
	weights := filepath.Join(dir, "no-weights.safetensors") // the inputs fail first
	pipe := filepath.Join(dir, "pipe.txt")
	testkit.MakeFIFO(t, pipe)
	root := filepath.Join(dir, "photos")
	tinyPNG(t, filepath.Join(root, "B\xff", "cat", "x.png"))
	out := filepath.Join(dir, "store")
	hostileCall(t, 16<<20, []string{pipe, "is a named pipe, not a text file"},
		"extract", "--weights", weights, "--list", "A="+pipe, "--out", out)
	hostileCall(t, 16<<20, []string{pipe, "is a named pipe, not a text file"},
		"extract", "--weights", weights, "--images", root, "--classes", pipe, "--out", out)
	hostileCall(t, 16<<20, []string{`domain name "B\xff" is not valid UTF-8; rename the folder`},
		"extract", "--weights", weights, "--images", root, "--out", out)
}

// TestHostilePredictImages gives predict, beside a good image, a named
// pipe, a link to /dev/zero and a decompression bomb: each is skipped with
// its reason; alone, each fails the command with it.
func TestHostilePredictImages(t *testing.T) {
	fx := newImageFixture(t)
	dir := t.TempDir()
	good := filepath.Join(dir, "good.png")
	tinyPNG(t, good)
	pipe, zero, bomb := filepath.Join(dir, "pipe.jpg"), filepath.Join(dir, "zero.jpg"), filepath.Join(dir, "bomb.png")
	testkit.MakeFIFO(t, pipe)
	testkit.LinkToDevZero(t, zero)
	testkit.WriteFile(t, bomb, testkit.PNGDeclaring(60000, 60000))
	reasons := map[string]string{
		pipe: "is a named pipe, not an image file",
		zero: "is a character device, not an image file",
		bomb: "png image of 60000×60000 pixels exceeds the limit of 178956970 pixels (Pillow's decompression-bomb limit)",
	}
	var code int
	var stdout, stderr string
	testkit.Within(t, 60*time.Second, func() {
		code, stdout, stderr = runCLI(t, "predict", "--model", fx.run, "--weights", fx.weights, dir)
	})
	if code != 0 || !strings.Contains(stdout, good) {
		t.Fatalf("status %d, stdout %q, stderr %q; want the good image classified", code, stdout, stderr)
	}
	for path, reason := range reasons {
		if !strings.Contains(stderr, "skipped "+path+": "+reason+"\n") {
			t.Errorf("stderr %q does not report %s skipped: %s", stderr, path, reason)
		}
		hostileCall(t, 256<<20, []string{"unimos predict: " + path + ": " + reason + "\n"},
			"predict", "--model", fx.run, "--weights", fx.weights, path)
	}
}
