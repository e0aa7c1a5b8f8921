package main

// Robustness: every command fed malformed input fails with an error that
// names the file at fault and exit status 1 or 2, never a panic; and no
// failure (an unwritable folder, a full disk, a process killed mid-write)
// leaves a truncated file under a result's name.

import (
	"bufio"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime/debug"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/unimos/unimos/features"
	"github.com/unimos/unimos/internal/atomicfile"
	"github.com/unimos/unimos/internal/shareddata"
	"github.com/unimos/unimos/internal/testkit"
	"github.com/unimos/unimos/safetensors"
)

// commandFunc is the signature of every command's run function.
type commandFunc = func(*context, []string) error

// guardedStatus runs one command as run would and returns the exit status run
// gives its error and the error's text; a panic fails the test.
func guardedStatus(t *testing.T, fn commandFunc, args ...string) (status int, msg string) {
	t.Helper()
	var err error
	func() {
		defer func() {
			if r := recover(); r != nil {
				t.Errorf("%q panicked: %v\n%s", args, r, debug.Stack())
				err = fmt.Errorf("panic: %v", r)
			}
		}()
		err, _, _ = callCommand(fn, args...)
	}()
	var usage usageError
	switch {
	case err == nil, errors.Is(err, flag.ErrHelp):
		return 0, ""
	case errors.As(err, &usage):
		return 2, err.Error()
	}
	return 1, err.Error()
}

// tinyStore writes the synthetic "tiny" store (dim 64, 8 classes; domains
// photo, sketch and painting, each with text features).
func tinyStore(t *testing.T, dir string) {
	t.Helper()
	if err, _, stderr := callCommand(runSynth, "--preset", "tiny", "--out", dir); err != nil {
		t.Fatalf("synth: %v\n%s", err, stderr)
	}
}

// brokenStores writes, under root, a good store and variants of it with one
// defect each, and returns root.
func brokenStores(t *testing.T) string {
	t.Helper()
	root := t.TempDir()
	good := filepath.Join(root, "good")
	tinyStore(t, good)
	variant := func(name string) string {
		dir := filepath.Join(root, name)
		testkit.CopyTree(t, good, dir)
		return dir
	}
	testkit.WriteFile(t, filepath.Join(variant("empty-json"), "dataset.json"), nil)
	testkit.WriteFile(t, filepath.Join(variant("empty-domain"), "photo.safetensors"), nil)
	testkit.WriteFile(t, filepath.Join(variant("empty-text"), "text", "photo.safetensors"), nil)
	if err := os.Remove(filepath.Join(variant("no-text"), "text", "photo.safetensors")); err != nil {
		t.Fatal(err)
	}
	if err := features.WriteText(variant("text-dim"), "photo", testkit.UnitRows(8, 32, 1)); err != nil {
		t.Fatal(err)
	}
	if err := features.WriteText(variant("text-classes"), "photo", testkit.UnitRows(5, 64, 2)); err != nil {
		t.Fatal(err)
	}
	imageDim := variant("image-dim")
	d := &features.Domain{Name: "photo", Features: testkit.UnitRows(3, 32, 3), Labels: []int{0, 1, 2}}
	if err := features.WriteDomain(imageDim, d); err != nil {
		t.Fatal(err)
	}
	// Four classes where the domain files use eight.
	meta := `{"name":"tiny","backbone":"x","dim":64,"classes":["a","b","c","d"],"domains":["photo","sketch","painting"]}`
	testkit.WriteFile(t, filepath.Join(variant("fewer-classes"), "dataset.json"), []byte(meta))
	return root
}

// tinyPNG writes a 4x4 PNG image.
func tinyPNG(t *testing.T, path string) {
	t.Helper()
	img := image.NewRGBA(image.Rect(0, 0, 4, 4))
	for i := range 16 {
		img.Set(i%4, i/4, color.RGBA{uint8(16 * i), 128, 64, 255})
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := png.Encode(f, img); err != nil {
		t.Fatal(err)
	}
}

// robustnessCase is one malformed invocation and what its error must say.
type robustnessCase struct {
	name string
	fn   commandFunc
	args []string
	want []string // fragments of the error, among them the file at fault
}

// checkCases runs every case and requires exit status 1 or 2 with an error
// mentioning every wanted fragment.
func checkCases(t *testing.T, cases []robustnessCase) {
	t.Helper()
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			status, msg := guardedStatus(t, c.fn, c.args...)
			if status != 1 && status != 2 {
				t.Fatalf("%q: exit status %d, want 1 or 2", c.args, status)
			}
			for _, w := range c.want {
				if !strings.Contains(msg, w) {
					t.Errorf("%q: error %q does not mention %q", c.args, msg, w)
				}
			}
		})
	}
}

// TestMalformedStores feeds the commands that read a feature store every
// broken variant of brokenStores.
func TestMalformedStores(t *testing.T) {
	root := brokenStores(t)
	store := func(name string) string { return filepath.Join(root, name) }
	file := func(name, rel string) string { return filepath.Join(root, name, rel) }
	// The parent of this output folder is a regular file. Tests run as root,
	// where a read-only folder (chmod 0555) does not stop writes, so this is
	// how an unwritable output is made here; TestUnwritableAndFullDisk adds
	// a truly read-only file system where it can mount one.
	notDir := filepath.Join(root, "not-a-folder")
	testkit.WriteFile(t, notDir, []byte("x"))
	blocked := filepath.Join(notDir, "out")
	run := filepath.Join(root, "run")
	adapt := func(dir, source, target, out string) []string {
		return []string{"--features", dir, "--source", source, "--target", target, "--out", out, "--epochs", "1", "--quiet"}
	}
	checkCases(t, []robustnessCase{
		{"inspect/absent", runInspect, []string{store("absent")}, []string{file("absent", "dataset.json")}},
		{"inspect/empty dataset.json", runInspect, []string{store("empty-json")}, []string{file("empty-json", "dataset.json"), "invalid JSON"}},
		{"inspect/empty domain", runInspect, []string{store("empty-domain")}, []string{file("empty-domain", "photo.safetensors"), "0 bytes"}},
		{"inspect/image dim", runInspect, []string{store("image-dim")}, []string{file("image-dim", "photo.safetensors"), "dim 32", "says 64"}},
		{"inspect/fewer classes", runInspect, []string{store("fewer-classes")}, []string{file("fewer-classes", "photo.safetensors"), "outside [-1, 4)"}},
		{"inspect/text classes", runInspect, []string{store("text-classes")}, []string{file("text-classes", "text/photo.safetensors"), "5 rows", "want 8"}},
		{"inspect/extra argument", runInspect, []string{store("good"), "x"}, []string{"want 1 argument"}},

		{"zeroshot/empty text", runZeroShot, []string{"--features", store("empty-text"), "--target", "photo"},
			[]string{file("empty-text", "text/photo.safetensors"), "0 bytes"}},
		{"zeroshot/text dim", runZeroShot, []string{"--features", store("text-dim"), "--target", "photo"},
			[]string{file("text-dim", "text/photo.safetensors"), "dim 32", "says 64"}},
		{"zeroshot/text classes", runZeroShot, []string{"--features", store("text-classes"), "--target", "photo"},
			[]string{file("text-classes", "text/photo.safetensors"), "5 rows"}},
		{"zeroshot/no such domain", runZeroShot, []string{"--features", store("good"), "--target", "clipart"},
			[]string{`"clipart"`, file("good", "dataset.json"), "photo, sketch, painting"}},
		{"zeroshot/no text features", runZeroShot, []string{"--features", store("no-text"), "--target", "photo"},
			[]string{file("no-text", "text/photo.safetensors")}},
		{"zeroshot/empty dataset.json", runZeroShot, []string{"--features", store("empty-json"), "--target", "photo"},
			[]string{file("empty-json", "dataset.json")}},

		{"adapt/empty source", runAdapt, adapt(store("empty-domain"), "photo", "painting", run), []string{file("empty-domain", "photo.safetensors")}},
		{"adapt/text dim", runAdapt, adapt(store("text-dim"), "sketch", "photo", run), []string{file("text-dim", "text/photo.safetensors"), "dim 32"}},
		{"adapt/image dim", runAdapt, adapt(store("image-dim"), "photo", "painting", run), []string{file("image-dim", "photo.safetensors"), "dim 32"}},
		{"adapt/fewer classes", runAdapt, adapt(store("fewer-classes"), "photo", "painting", run), []string{file("fewer-classes", "photo.safetensors"), "label of row"}},
		{"adapt/no such domain", runAdapt, adapt(store("good"), "photo", "clipart", run), []string{`"clipart"`, file("good", "dataset.json")}},
		{"adapt/unwritable output", runAdapt, adapt(store("good"), "photo", "painting", blocked), []string{notDir, "not a directory"}},
		{"adapt/bad number", runAdapt, append(adapt(store("good"), "photo", "painting", run), "--lr", "fast"), []string{"-lr"}},

		{"synth/unwritable output", runSynth, []string{"--preset", "tiny", "--out", blocked}, []string{notDir, "not a directory"}},
		{"synth/bad seed", runSynth, []string{"--preset", "tiny", "--out", run, "--seed", "-1"}, []string{"-seed"}},

		{"demo/bad flag", runDemo, []string{"--epochs", "many"}, []string{"-epochs"}},
	})
	if _, err := os.Stat(run); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("failed commands left %s behind (%v)", run, err)
	}
}

// TestMalformedDemoFlags runs demo with flags that are only found wrong
// after the benchmark has been generated (about a second each).
func TestMalformedDemoFlags(t *testing.T) {
	if testing.Short() {
		t.Skip("generates the Office-Home-sized benchmark; skipped with -short")
	}
	notDir := filepath.Join(t.TempDir(), "not-a-folder")
	testkit.WriteFile(t, notDir, []byte("x"))
	checkCases(t, []robustnessCase{
		{"unwritable out", runDemo, []string{"--out", filepath.Join(notDir, "out")}, []string{notDir, "not a directory"}},
		{"epochs 0", runDemo, []string{"--epochs", "0"}, []string{"epochs must be at least 1"}},
		{"no such domain", runDemo, []string{"--source", "Nope", "--epochs", "1"}, []string{`"Nope"`, "Art, Clipart, Product, Real_World"}},
	})
}

// TestMalformedImportInputs feeds import empty and inconsistent files;
// import_test.go covers the mismatches in detail.
func TestMalformedImportInputs(t *testing.T) {
	tmp := t.TempDir()
	path := func(name string) string { return filepath.Join(tmp, name) }
	good := path("good")
	tinyStore(t, good)
	for _, name := range []string{"empty.npy", "empty.npz", "empty.pth"} {
		testkit.WriteFile(t, path(name), nil)
	}
	unit := testkit.UnitRows(3, 64, 4)
	writeMatrixNPY(t, path("f64.npy"), 3, 64, unit.Data)
	writeMatrixNPY(t, path("f32.npy"), 3, 32, testkit.UnitRows(3, 32, 5).Data)
	writeMatrixNPY(t, path("text7.npy"), 7, 64, testkit.UnitRows(7, 64, 6).Data)
	writeNPY(t, path("rows0.npy"), "<f4", []int{0, 64}, nil)
	writeLines(t, path("classes.txt"), "cat", "dog")
	notDir := path("not-a-folder")
	testkit.WriteFile(t, notDir, []byte("x"))
	imp := func(out string, args ...string) []string {
		return append([]string{"--out", out, "--domain", "new"}, args...)
	}
	checkCases(t, []robustnessCase{
		{"empty npy", runImport, imp(good, "--features", path("empty.npy")), []string{path("empty.npy")}},
		{"empty npz", runImport, imp(good, "--features", path("empty.npz")), []string{path("empty.npz")}},
		{"empty pth", runImport, imp(good, "--features", path("empty.pth")), []string{path("empty.pth")}},
		{"no rows", runImport, imp(good, "--features", path("rows0.npy")), []string{path("rows0.npy"), "[0, 64]"}},
		{"empty labels", runImport, imp(good, "--features", path("f64.npy"), "--labels", path("empty.npy")), []string{path("empty.npy")}},
		{"empty text", runImport, imp(good, "--features", path("f64.npy"), "--text", path("empty.npy")), []string{path("empty.npy")}},
		{"empty classes", runImport, imp(path("new"), "--features", path("f64.npy"), "--classes", path("empty.npy")),
			[]string{path("empty.npy"), "no class names"}},
		{"absent classes", runImport, imp(path("new"), "--features", path("f64.npy"), "--classes", path("absent.txt")),
			[]string{path("absent.txt")}},
		{"image dim", runImport, imp(good, "--features", path("f32.npy")), []string{path("f32.npy"), "dim 32", filepath.Join(good, "dataset.json")}},
		{"text classes", runImport, imp(good, "--features", path("f64.npy"), "--text", path("text7.npy")),
			[]string{path("text7.npy"), "7 rows", filepath.Join(good, "dataset.json")}},
		{"mismatched classes", runImport, imp(good, "--features", path("f64.npy"), "--classes", path("classes.txt")),
			[]string{path("classes.txt"), "2 classes", filepath.Join(good, "dataset.json")}},
		{"unwritable output", runImport, imp(filepath.Join(notDir, "store"), "--features", path("f64.npy")), []string{notDir, "not a directory"}},
	})
}

// TestMalformedExtractAndMerge feeds extract and merge broken weights,
// images, class lists and shards.
func TestMalformedExtractAndMerge(t *testing.T) {
	tmp := t.TempDir()
	path := func(name string) string { return filepath.Join(tmp, name) }
	images := path("images")
	tinyPNG(t, filepath.Join(images, "D", "c", "a.png"))
	testkit.WriteFile(t, path("empty.safetensors"), nil)
	testkit.WriteFile(t, path("empty.txt"), nil)
	testkit.WriteFile(t, filepath.Join(tmp, "weights-dir", "README"), nil)
	testkit.WriteFile(t, filepath.Join(tmp, "empty-shard", "shard.json"), nil)
	notDir := path("not-a-folder")
	testkit.WriteFile(t, notDir, []byte("x"))
	cases := []robustnessCase{
		{"extract/empty weights", runExtract, []string{"--weights", path("empty.safetensors"), "--images", images, "--out", path("o")},
			[]string{path("empty.safetensors"), "0 bytes"}},
		{"extract/weights folder", runExtract, []string{"--weights", path("weights-dir"), "--images", images, "--out", path("o")},
			[]string{path("weights-dir")}},
		{"extract/absent images", runExtract, []string{"--weights", path("empty.safetensors"), "--images", path("absent"), "--out", path("o")},
			[]string{path("absent")}},
		{"extract/empty classes", runExtract, []string{"--weights", path("empty.safetensors"), "--images", images, "--classes", path("empty.txt"), "--out", path("o")},
			[]string{path("empty.txt"), "no class names"}},
		{"extract/empty list", runExtract, []string{"--weights", path("empty.safetensors"), "--list", "D=" + path("empty.txt"), "--out", path("o")},
			[]string{path("empty.txt")}},
		{"merge/absent shard", runMerge, []string{"--out", path("m"), path("absent")}, []string{path("absent")}},
		{"merge/empty shard.json", runMerge, []string{"--out", path("m"), path("empty-shard")}, []string{path("empty-shard/shard.json")}},
	}
	checkCases(t, cases)

	t.Run("with a model", func(t *testing.T) {
		weights := filepath.Join(shareddata.Dir(t, "clip_reference"), "models", "vit_tiny.safetensors")
		var shards []string
		for i := range 2 {
			dir := path(fmt.Sprint("shard", i))
			if err, _, stderr := callCommand(runExtract, "--weights", weights, "--images", images, "--out", dir, "--shard", fmt.Sprintf("%d/2", i)); err != nil {
				t.Fatalf("shard %d: %v\n%s", i, err, stderr)
			}
			shards = append(shards, dir)
		}
		checkCases(t, []robustnessCase{
			{"extract/unwritable output", runExtract, []string{"--weights", weights, "--images", images, "--out", filepath.Join(notDir, "o")},
				[]string{notDir, "not a directory"}},
			{"merge/unwritable output", runMerge, append([]string{"--out", filepath.Join(notDir, "m")}, shards...), []string{notDir, "not a directory"}},
		})
	})
}

// Helper processes: the test binary re-executed with helperEnv naming a
// mode, the standard pattern for tests that need a process to crash or to
// run under limits that must not touch the test process itself.
const (
	helperEnv    = "UNIMOS_ROBUSTNESS_HELPER"
	helperDirEnv = "UNIMOS_ROBUSTNESS_DIR"
	helperMount  = "UNIMOS_ROBUSTNESS_MOUNT"  // "1": the helper is in its own mount namespace
	helperTarget = "UNIMOS_ROBUSTNESS_TARGET" // the file the crash helper writes
)

// helperCommand returns the command that runs TestRobustnessHelper in the
// given mode on dir.
func helperCommand(mode, dir string) *exec.Cmd {
	cmd := exec.Command(os.Args[0], "-test.run=^TestRobustnessHelper$", "-test.count=1", "-test.v")
	cmd.Env = append(os.Environ(), helperEnv+"="+mode, helperDirEnv+"="+dir)
	return cmd
}

// helperModes maps a helper mode to what the helper process does in dir.
// Platform-specific modes are added by the files of their platform.
var helperModes = map[string]func(t *testing.T, dir string){"crash": crashMidWrite}

// TestRobustnessHelper does nothing unless started by helperCommand.
func TestRobustnessHelper(t *testing.T) {
	mode := os.Getenv(helperEnv)
	if mode == "" {
		return
	}
	helper, ok := helperModes[mode]
	if !ok {
		t.Fatalf("unknown helper mode %q", mode)
	}
	helper(t, os.Getenv(helperDirEnv))
}

// Files of the crash test, inside its folder.
const (
	crashStore   = "store"             // a feature store with domain "photo"
	crashNew     = "new"               // a store whose crashTarget the helper starts writing
	crashMidway  = "midway"            // what the helper prints once it is midway
	crashTarget  = "photo.safetensors" // the file being replaced, in crashStore
	crashFresh   = "fresh.safetensors" // a file written where none was
	crashPattern = ".tmp-"             // in every atomicfile temporary name
)

// crashMidWrite writes the domain file of the store dir/crashNew over that
// of dir/crashStore (or, when the target is crashFresh, where no file was)
// through atomicfile, stops halfway, tells the parent, and waits to be
// killed.
func crashMidWrite(_ *testing.T, dir string) {
	data, err := os.ReadFile(filepath.Join(dir, crashNew, crashTarget))
	if err != nil {
		fmt.Println("helper:", err)
		os.Exit(3)
	}
	target := filepath.Join(dir, crashStore, os.Getenv(helperTarget))
	atomicfile.Write(target, func(w io.Writer) error {
		// Half the file, well past atomicfile's buffer, reaches the
		// temporary file before the parent is told to kill.
		if _, err := w.Write(data[:len(data)/2]); err != nil {
			return err
		}
		fmt.Println(crashMidway)
		time.Sleep(time.Minute)
		return errors.New("helper was not killed")
	})
	os.Exit(4)
}

// TestCrashMidWrite kills a process that is halfway through replacing a
// store's domain file (and, separately, writing a new file): the result
// must be the complete old file, or no file, never a truncated one, and the
// temporary file left behind must not pass for a result.
func TestCrashMidWrite(t *testing.T) {
	dir := t.TempDir()
	store := filepath.Join(dir, crashStore)
	meta := features.Dataset{Name: "crash", Backbone: "x", Dim: 256, Classes: []string{"a", "b"}}
	s := &features.Store{Dir: store, Meta: meta}
	old := &features.Domain{Name: "photo", Features: testkit.UnitRows(64, 256, 7), Labels: make([]int, 64), DType: features.F32}
	if _, err := s.PutDomain(old, testkit.UnitRows(2, 256, 11)); err != nil {
		t.Fatal(err)
	}
	oldBytes, err := os.ReadFile(filepath.Join(store, crashTarget))
	if err != nil {
		t.Fatal(err)
	}
	// The new version: 4 MiB of F32 features, four times atomicfile's buffer.
	newDomain := &features.Domain{Name: "photo", Features: testkit.UnitRows(4096, 256, 8), Labels: make([]int, 4096), DType: features.F32}
	if err := features.WriteDomain(filepath.Join(dir, crashNew), newDomain); err != nil {
		t.Fatal(err)
	}
	newSize := 4096 * 256 * 4

	for _, target := range []string{crashTarget, crashFresh} {
		t.Run(target, func(t *testing.T) {
			killMidway(t, dir, target)
			got, err := os.ReadFile(filepath.Join(store, target))
			switch {
			case target == crashFresh && !errors.Is(err, os.ErrNotExist):
				t.Errorf("%s exists after the crash (%d bytes, %v); want no file", target, len(got), err)
			case target == crashTarget && (err != nil || string(got) != string(oldBytes)):
				t.Errorf("%s: %d bytes (%v); want the complete old %d bytes", target, len(got), err, len(oldBytes))
			}
			temps, _ := filepath.Glob(filepath.Join(store, "."+target+crashPattern+"*"))
			if len(temps) != 1 {
				t.Fatalf("temporary files %q; want the one the killed process left", temps)
			}
			st, err := os.Stat(temps[0])
			if err != nil {
				t.Fatal(err)
			}
			if st.Size() == 0 || st.Size() >= int64(newSize) {
				t.Errorf("temporary file holds %d bytes; want part of the %d, as the process was killed midway", st.Size(), newSize)
			}
			// Readers find results by their names, which no temporary name matches.
			if results, _ := filepath.Glob(filepath.Join(store, "*.safetensors")); !slices.Equal(results, []string{filepath.Join(store, crashTarget)}) {
				t.Errorf("*.safetensors matches %q", results)
			}
		})
	}
	// The store still reads, and rewriting works in spite of the leftovers
	// and removes the one of the file it rewrites, whose writer is gone.
	code, out, errOut := runCLI(t, "inspect", "--json", store)
	var report storeReport
	if code != 0 || json.Unmarshal([]byte(out), &report) != nil || len(report.Domains) != 1 || report.Domains[0].Images != 64 {
		t.Fatalf("inspect after the crash: status %d, stdout %q, stderr %q", code, out, errOut)
	}
	if err := features.WriteDomain(store, newDomain); err != nil {
		t.Fatal(err)
	}
	if d, err := s.Domain("photo"); err != nil || d.Features.Rows != 4096 {
		t.Errorf("rewrite after the crash: %v", err)
	}
	for target, want := range map[string]int{crashTarget: 0, crashFresh: 1} {
		if temps, _ := filepath.Glob(filepath.Join(store, "."+target+crashPattern+"*")); len(temps) != want {
			t.Errorf("after the rewrite of %s: temporary files of %s %q, want %d", crashTarget, target, temps, want)
		}
	}
}

// killMidway starts the crash helper on target, waits until it is halfway
// through writing, and kills it.
func killMidway(t *testing.T, dir, target string) {
	t.Helper()
	cmd := helperCommand("crash", dir)
	cmd.Env = append(cmd.Env, helperTarget+"="+target)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	lines := bufio.NewScanner(stdout)
	midway := false
	for lines.Scan() {
		if lines.Text() == crashMidway {
			midway = true
			break
		}
	}
	if midway {
		// SIGKILL on Unix: the process gets no chance to clean up.
		if err := cmd.Process.Kill(); err != nil {
			t.Fatalf("kill: %v", err)
		}
	}
	werr := cmd.Wait()
	if !midway || werr == nil {
		t.Fatalf("helper ended without being killed midway: %v", werr)
	}
}

// checkNoPartialResults fails if a temporary file is left under dir, or a
// result file there is incomplete: every .json must parse and every
// .safetensors file must open.
func checkNoPartialResults(t *testing.T, dir string) {
	t.Helper()
	filepath.WalkDir(dir, func(path string, e os.DirEntry, err error) error {
		if err != nil || e.IsDir() {
			return err
		}
		switch {
		case strings.Contains(e.Name(), crashPattern):
			t.Errorf("temporary file left behind: %s", path)
		case strings.HasSuffix(path, ".json"):
			raw, _ := os.ReadFile(path)
			if !json.Valid(raw) {
				t.Errorf("%s is not complete JSON", path)
			}
		case strings.HasSuffix(path, ".safetensors"):
			f, err := safetensors.Open(path)
			if err != nil {
				t.Errorf("%s is not a complete safetensors file: %v", path, err)
				return nil
			}
			f.Close()
		}
		return nil
	})
}
