package main

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/unimos/unimos/features"
	"github.com/unimos/unimos/internal/testkit"
	"github.com/unimos/unimos/synth"
	"github.com/unimos/unimos/unimos"
)

// officeHomeStore writes a small Office-Home-shaped synthetic store.
func officeHomeStore(t *testing.T) string {
	t.Helper()
	p, err := synth.PresetByName("office-home")
	if err != nil {
		t.Fatal(err)
	}
	p.Dim = 80
	if p, err = p.Scaled(0.03); err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(t.TempDir(), "office-home")
	if err := synth.Write(dir, p, 1); err != nil {
		t.Fatal(err)
	}
	return dir
}

func TestBenchCommand(t *testing.T) {
	store := officeHomeStore(t)
	out := filepath.Join(t.TempDir(), "bench")
	args := []string{"--features", store, "--protocol", "office-home", "--tasks", "A->C,C->A", "--epochs", "1",
		"--seeds", "1,2", "--select", "infomax", "--out", out}
	err, stdout, stderr := callCommand(runBench, args...)
	if err != nil {
		t.Fatalf("bench: %v\n%s", err, stderr)
	}
	if !strings.Contains(stdout, "report: "+filepath.Join(out, "report.md")) || !strings.Contains(stderr, "[10/10] unimos C->A seed 2: accuracy") {
		t.Errorf("stdout %q\nstderr %q", stdout, stderr)
	}
	for _, f := range []string{"report.md", "results.csv", "results.json", "plots/office-home-tasks.png"} {
		if _, err := os.Stat(filepath.Join(out, f)); err != nil {
			t.Error(err)
		}
	}
	report, _ := os.ReadFile(filepath.Join(out, "report.md"))
	if !strings.Contains(string(report), "UniMoS, epoch picked by infomax (label-free)") {
		t.Errorf("report lacks the --select row")
	}
	// A rerun makes nothing.
	err, _, stderr = callCommand(runBench, args...)
	if err != nil || strings.Count(stderr, "finished earlier") != 10 {
		t.Errorf("rerun: %v\n%s", err, stderr)
	}
	// --report-only needs neither the store nor the protocol.
	if err, stdout, _ := callCommand(runBench, "--out", out, "--report-only"); err != nil || !strings.Contains(stdout, "report:") {
		t.Errorf("--report-only: %v", err)
	}
}

// TestBenchCommandJobs makes one bench with --jobs 1, 2 and 3 (more jobs
// than the 2 runs of its second half): the lines on stderr, timings aside,
// stdout and report.md are the same.
func TestBenchCommandJobs(t *testing.T) {
	store := officeHomeStore(t)
	timing := regexp.MustCompile(`\(\d+\.\d s`)
	var want [3]string // stdout, stderr, report.md of --jobs 1, the bench folder's name replaced
	for _, jobs := range []string{"1", "2", "3"} {
		out := filepath.Join(t.TempDir(), "bench")
		err, stdout, stderr := callCommand(runBench, "--features", store, "--protocol", "office-home", "--tasks", "A->C,C->A",
			"--methods", "source-only,unimos", "--epochs", "2", "--jobs", jobs, "--out", out)
		if err != nil {
			t.Fatalf("--jobs %s: %v\n%s", jobs, err, stderr)
		}
		report, err := os.ReadFile(filepath.Join(out, "report.md"))
		if err != nil {
			t.Fatal(err)
		}
		got := [3]string{stdout, timing.ReplaceAllString(stderr, "(T s"), string(report)}
		for i := range got {
			got[i] = strings.ReplaceAll(got[i], out, "BENCH")
		}
		if !strings.Contains(got[1], "[4/4] unimos C->A seed 2023: accuracy") {
			t.Errorf("--jobs %s: stderr %q", jobs, stderr)
		}
		if jobs == "1" {
			want = got
		} else if got != want {
			t.Errorf("--jobs %s: stdout, stderr, report.md\n%q\nwant (--jobs 1)\n%q", jobs, got, want)
		}
	}
}

// TestBenchCommandFailure: a run that fails (UniMoS onto a target without
// text features) makes the command fail at the end, after the other runs
// and the report.
func TestBenchCommandFailure(t *testing.T) {
	dir := officeHomeStore(t)
	if err := os.Remove(filepath.Join(dir, features.TextDir, "Clipart.safetensors")); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(t.TempDir(), "bench")
	err, stdout, stderr := callCommand(runBench, "--features", dir, "--protocol", "office-home", "--tasks", "C->A,A->C",
		"--methods", "unimos", "--epochs", "1", "--out", out)
	var usage usageError
	if err == nil || errors.As(err, &usage) || !strings.Contains(err.Error(), "1 of 2 runs failed") {
		t.Errorf("error %v", err)
	}
	if !strings.Contains(stderr, "[1/2] unimos C->A seed 2023: accuracy") || !strings.Contains(stderr, "[2/2] unimos A->C seed 2023: FAILED") ||
		!strings.Contains(stdout, "report:") {
		t.Errorf("stdout %q\nstderr %q", stdout, stderr)
	}
}

func TestBenchUsageErrors(t *testing.T) {
	cases := [][]string{
		{"--features", "x", "--protocol", "office-home"},            // --out missing
		{"--features", "x", "--out", "o"},                           // --protocol missing
		{"--features", "x", "--protocol", "office31", "--out", "o"}, // unknown protocol
		{"--features", "x", "--protocol", "visda", "--out", "o", "--seeds", "a"},
		{"--features", "x", "--protocol", "visda", "--out", "o", "--methods", "dann"},
		{"--features", "x", "--protocol", "visda", "--out", "o", "--preset", "office31"},
		{"--features", "x", "--protocol", "visda", "--out", "o", "--select", "accuracy"},
		{"--features", "x", "--protocol", "visda", "--out", "o", "--epochs", "-1"},
	}
	for _, args := range cases {
		err, _, _ := callCommand(runBench, args...)
		var usage usageError
		if !errors.As(err, &usage) {
			t.Errorf("%q: error %v, want a usage error", args, err)
		}
	}
	for _, jobs := range []string{"0", "-1", "two", "", "1.5", "Auto"} {
		err, _, _ := callCommand(runBench, "--features", "x", "--protocol", "visda", "--out", "o", "--jobs", jobs)
		var usage usageError
		if !errors.As(err, &usage) || !strings.Contains(err.Error(), fmt.Sprintf("--jobs: %q is neither", jobs)) {
			t.Errorf("--jobs %q: error %v, want a usage error naming --jobs", jobs, err)
		}
	}
}

// TestBenchInterruptAndContinue stops `unimos bench` with SIGINT during its
// UniMoS runs, with one job and one run, and with two jobs and two runs in
// progress, its stderr on a terminal (where two jobs draw a bar of the
// runs finished), and reruns it: each run continues from its checkpoint to
// its last epoch. The stopped bench says how to continue it and nothing
// else (no report of no run), and its bar never counts a stopped run as
// finished. (That a continued run equals an uninterrupted one, bit for
// bit, is bench.TestStopAndContinue and bench.TestStopJobs.)
func TestBenchInterruptAndContinue(t *testing.T) {
	store := officeHomeStore(t)
	const epochs = 200 // the signal comes after the first epoch, seconds before the last
	for _, c := range []struct {
		jobs, tasks string
		runs        []string
		stopped     string // the count in the last line
	}{
		{"1", "A->C", []string{"Art_to_Clipart"}, "0 of 1 run finished"},
		{"2", "A->C,C->A", []string{"Art_to_Clipart", "Clipart_to_Art"}, "0 of 2 runs finished"},
	} {
		out := filepath.Join(t.TempDir(), "bench")
		args := []string{"--features", store, "--protocol", "office-home", "--tasks", c.tasks, "--methods", "unimos",
			"--epochs", strconv.Itoa(epochs), "--checkpoint-every", "1", "--jobs", c.jobs, "--out", out}
		cmd := exec.Command(os.Args[0], append([]string{"-test.run=^$", "--", "bench"}, args...)...)
		cmd.Env = append(os.Environ(), "UNIMOS_TEST_MAIN=1")
		term := testkit.NewTerminal(t)
		cmd.Stderr = term.TTY
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		var runs []string
		for _, task := range c.runs {
			runs = append(runs, filepath.Join(out, "runs", "office-home", "unimos", task, "seed-2023"))
		}
		for _, run := range runs {
			for deadline := time.Now().Add(time.Minute); ; time.Sleep(10 * time.Millisecond) {
				if _, err := os.Stat(filepath.Join(run+".partial", unimos.CheckpointFile)); err == nil {
					break
				}
				if time.Now().After(deadline) {
					cmd.Process.Kill()
					cmd.Wait()
					t.Fatalf("--jobs %s: no checkpoint of %s after a minute; stderr:\n%s", c.jobs, run, term.Close())
				}
			}
		}
		stderr := interruptOnTerminal(t, "--jobs "+c.jobs, cmd, term)
		lines := screenLines(stderr)
		for _, run := range runs {
			if want := "stopped, saved in " + run + ".partial"; !strings.Contains(stderr, want) {
				t.Errorf("--jobs %s: stderr lacks %q:\n%s", c.jobs, want, stderr)
			}
		}
		if want := "unimos bench: bench stopped: " + c.stopped + "; run the same command again to continue"; lines[len(lines)-1] != want {
			t.Errorf("--jobs %s: the last line is %q, want %q", c.jobs, lines[len(lines)-1], want)
		}
		if finished := regexp.MustCompile(`bench \[[= ]*\] [1-9]\d*/\d+ `).FindString(stderr); finished != "" {
			t.Errorf("--jobs %s: the bar of runs finished shows %q, with no run finished:\n%q", c.jobs, finished, stderr)
		}
		for _, run := range runs {
			if _, err := os.Stat(run); !os.IsNotExist(err) {
				t.Errorf("--jobs %s: the stopped run has a run folder: %v", c.jobs, err)
			}
		}

		err, _, errOut := callCommand(runBench, args...)
		if err != nil || strings.Count(errOut, "continued from a stopped bench") != len(runs) {
			t.Fatalf("--jobs %s: continued bench: %v\n%s", c.jobs, err, errOut)
		}
		for _, run := range runs {
			if r := readResult(t, run); len(r.History) != epochs+1 {
				t.Errorf("--jobs %s: continued run %s has %d evaluations, want %d", c.jobs, run, len(r.History), epochs+1)
			}
		}
	}
}

// unlabel removes the label of one row of a domain of the store in dir.
func unlabel(t *testing.T, dir, domain string) {
	t.Helper()
	relabel(t, dir, domain, func(labels []int) { labels[3] = -1 })
}

// unlabelAll removes every label of a domain of the store in dir.
func unlabelAll(t *testing.T, dir, domain string) {
	t.Helper()
	relabel(t, dir, domain, func(labels []int) {
		for i := range labels {
			labels[i] = -1
		}
	})
}

// relabel rewrites the labels of a domain of the store in dir with edit.
func relabel(t *testing.T, dir, domain string, edit func([]int)) {
	t.Helper()
	store, err := features.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	d, err := store.Domain(domain)
	if err != nil {
		t.Fatal(err)
	}
	edit(d.Labels)
	if err := features.WriteDomain(dir, d); err != nil {
		t.Fatal(err)
	}
}

// TestBenchPairs benches the pairs protocol on a store with a domain that
// is not fully labelled: every ordered pair of the three others is run and
// reported, with no published row, and with the label-free selection rows.
func TestBenchPairs(t *testing.T) {
	store := officeHomeStore(t)
	unlabel(t, store, "Product")
	out := filepath.Join(t.TempDir(), "bench")
	err, stdout, stderr := callCommand(runBench, "--features", store, "--protocol", "pairs", "--epochs", "1",
		"--select", "entropy", "--out", out)
	if err != nil {
		t.Fatalf("bench: %v\n%s", err, stderr)
	}
	if !strings.Contains(stdout, "report: ") || !strings.Contains(stderr, "[18/18] unimos Real_World->Clipart seed 2023: accuracy") {
		t.Errorf("stdout %q\nstderr %q", stdout, stderr)
	}
	raw, err := os.ReadFile(filepath.Join(out, "report.md"))
	if err != nil {
		t.Fatal(err)
	}
	report := string(raw)
	header := "| Method | Art→Clipart | Art→Real_World | Clipart→Art | Clipart→Real_World | Real_World→Art | Real_World→Clipart | Avg |"
	for _, want := range []string{
		"## office-home (pairs of domains)", header, "**UniMoS, last epoch**",
		"UniMoS, epoch picked by entropy (label-free)", "### Label-free model selection", "| snd |",
		"The UniMoS paper publishes no numbers for this protocol.", "UniMoS preset office-home, 1 epoch",
	} {
		if !strings.Contains(report, want) {
			t.Errorf("report.md lacks %q", want)
		}
	}
	if strings.Contains(report, "Product") || strings.Contains(report, "published |") || strings.Contains(report, "Published, authors") {
		t.Errorf("report.md has the unlabelled domain or a published row:\n%s", report)
	}
	if _, err := os.Stat(filepath.Join(out, "plots", "pairs-curves-Art_to_Clipart.png")); err != nil {
		t.Error(err)
	}
	run := readResult(t, filepath.Join(out, "runs", "pairs", "unimos", "Clipart_to_Art", "seed-2023"))
	if run.Preset != "office-home" || run.Config.Preset != "office-home" {
		t.Errorf("result.json records preset %q, config %q", run.Preset, run.Config.Preset)
	}
}

// smallPairsStore writes the synthetic "tiny" store scaled to domains of
// 32 (photo), 28 (sketch) and 24 (painting) images: smaller than the
// preset's batch of 32 rows of source and of target.
func smallPairsStore(t *testing.T) string {
	t.Helper()
	p, err := synth.PresetByName("tiny")
	if err != nil {
		t.Fatal(err)
	}
	if p, err = p.Scaled(0.1); err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(t.TempDir(), "small")
	if err := synth.Write(dir, p, 1); err != nil {
		t.Fatal(err)
	}
	return dir
}

// TestBenchBatch benches the pairs protocol on domains smaller than the
// preset's batch: the UniMoS runs fail with a message naming a flag that
// bench has, --batch makes them run, each result.json and the report
// record it, and a rerun with another batch does not reuse the runs.
func TestBenchBatch(t *testing.T) {
	store := smallPairsStore(t)
	out := filepath.Join(t.TempDir(), "bench")
	args := []string{"--features", store, "--protocol", "pairs", "--tasks", "photo->sketch,sketch->photo", "--epochs", "1", "--out", out}
	code, _, stderr := runCLI(t, append([]string{"bench"}, args...)...)
	if code != 1 || !strings.Contains(stderr, "2 of 6 runs failed") || !strings.Contains(stderr, "set the batch size to at most 28 (--batch)") {
		t.Fatalf("bench with the preset's batch: status %d, stderr\n%s", code, stderr)
	}
	_, help, _ := runCLI(t, "bench", "-h")
	for _, flag := range regexp.MustCompile(`--[a-z-]+`).FindAllString(stderr, -1) {
		if !regexp.MustCompile(`(?m)^  ` + flag + `( |$)`).MatchString(help) {
			t.Errorf("bench's message names %s, which bench does not have:\n%s", flag, stderr)
		}
	}

	if code, _, stderr := runCLI(t, append([]string{"bench", "--batch", "8"}, args...)...); code != 0 {
		t.Fatalf("bench --batch 8: status %d, stderr\n%s", code, stderr)
	}
	for _, task := range []string{"photo_to_sketch", "sketch_to_photo"} {
		run := readResult(t, filepath.Join(out, "runs", "pairs", "unimos", task, "seed-2023"))
		if run.Config.BatchSize != 8 || run.Config.Epochs != 1 {
			t.Errorf("%s: result.json records batch %d, %d epochs; want 8, 1", task, run.Config.BatchSize, run.Config.Epochs)
		}
	}
	if report, _ := os.ReadFile(filepath.Join(out, "report.md")); !strings.Contains(string(report), "UniMoS preset office-home, 1 epoch, batch 8;") {
		t.Errorf("report.md does not name the batch size:\n%s", report)
	}
	code, _, stderr = runCLI(t, append([]string{"bench", "--batch", "16"}, args...)...)
	if code != 1 || !strings.Contains(stderr, "another configuration (1 epoch, batch 8, preset office-home) than this bench asks for (1 epoch, batch 16,") {
		t.Errorf("rerun with another batch: status %d, stderr\n%s", code, stderr)
	}
	if code, _, stderr := runCLI(t, append([]string{"bench", "--batch", "1"}, args...)...); code != 2 || !strings.Contains(stderr, "--batch must be at least 2") {
		t.Errorf("--batch 1: status %d, stderr %q, want a usage error", code, stderr)
	}
}

// TestBenchPreset: --preset replaces the protocol's preset in every UniMoS
// run and is recorded in result.json and the report; a rerun with another
// preset does not reuse the runs.
func TestBenchPreset(t *testing.T) {
	store := officeHomeStore(t)
	out := filepath.Join(t.TempDir(), "bench")
	args := []string{"--features", store, "--protocol", "office-home", "--tasks", "A->C", "--methods", "unimos",
		"--epochs", "1", "--preset", "visda", "--out", out}
	if err, _, stderr := callCommand(runBench, args...); err != nil {
		t.Fatalf("bench: %v\n%s", err, stderr)
	}
	run := readResult(t, filepath.Join(out, "runs", "office-home", "unimos", "Art_to_Clipart", "seed-2023"))
	if run.Config.Preset != "visda" || run.Config.LR != 9e-4 {
		t.Errorf("result.json: preset %q, lr %g", run.Config.Preset, run.Config.LR)
	}
	if report, _ := os.ReadFile(filepath.Join(out, "report.md")); !strings.Contains(string(report), "UniMoS preset visda, 1 epoch") {
		t.Errorf("report.md does not name the preset:\n%s", report)
	}
	withoutPreset := slices.Concat(args[:10], args[12:]) // the protocol's preset, office-home
	err, _, stderr := callCommand(runBench, withoutPreset...)
	if err == nil || !strings.Contains(stderr, "another configuration") {
		t.Errorf("rerun with the protocol's preset: %v\n%s", err, stderr)
	}
}

// TestBenchTaskErrors: a --tasks entry that names an unknown or unlabelled
// domain, or no task, is a usage error that says so; a store with fewer
// than two labelled domains cannot be benched with pairs.
func TestBenchTaskErrors(t *testing.T) {
	store := officeHomeStore(t)
	unlabel(t, store, "Product")
	cases := []struct{ protocol, tasks, want string }{
		{"pairs", "Art->Webcam", `protocol pairs has no task "Art->Webcam": there is no domain "Webcam" (domains: Art, Clipart, Product, Real_World)`},
		{"pairs", "Product->Art", `protocol pairs has no task "Product->Art": domain Product is not fully labelled (1 of `},
		{"pairs", "Art->Product", "domain Product is not fully labelled"},
		{"pairs", "A->C", `there is no domain "A"`},
		{"pairs", "Art->Art", "the source and the target are the same domain"},
		{"pairs", "Art", "write a task as SOURCE->TARGET (tasks: Art->Clipart, Art->Real_World, Clipart->Art,"},
		{"office-home", "A->Z", `protocol office-home has no task "A->Z": there is no domain "Z"`},
	}
	for _, c := range cases {
		err, _, _ := callCommand(runBench, "--features", store, "--protocol", c.protocol, "--tasks", c.tasks, "--out", t.TempDir())
		var usage usageError
		if !errors.As(err, &usage) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s --tasks %q: %v, want a usage error with %q", c.protocol, c.tasks, err, c.want)
		}
	}

	// The paper's protocols need labelled sources and targets with labels.
	err, _, _ := callCommand(runBench, "--features", store, "--protocol", "office-home", "--tasks", "A->C,P->A", "--out", t.TempDir())
	if err == nil || !strings.Contains(err.Error(), "domain Product of "+store+" has 1 of ") || !strings.Contains(err.Error(), "cannot be the source of P->A") {
		t.Errorf("office-home from a source with an unlabelled row: %v", err)
	}
	unlabelAll(t, store, "Clipart")
	err, _, _ = callCommand(runBench, "--features", store, "--protocol", "office-home", "--tasks", "A->C", "--out", t.TempDir())
	if err == nil || !strings.Contains(err.Error(), "domain Clipart of "+store+" is unlabelled, so task A->C cannot be scored") {
		t.Errorf("office-home onto an unlabelled target: %v", err)
	}

	unlabel(t, store, "Art")
	unlabel(t, store, "Clipart")
	err, _, _ = callCommand(runBench, "--features", store, "--protocol", "pairs", "--out", t.TempDir())
	var usage usageError
	if err == nil || errors.As(err, &usage) || !strings.Contains(err.Error(), "needs at least 2 fully labelled domains") ||
		!strings.Contains(err.Error(), "the store has 1 fully labelled domain (Real_World); not fully labelled: Art (1 of ") {
		t.Errorf("pairs on a store with one labelled domain: %v", err)
	}
}

// TestEpochNumbersAgree: result.json, results.csv and the console lines of
// bench and adapt count epochs the same way: 0 before training, E for the
// last, the oracle's best epoch in the same units.
func TestEpochNumbersAgree(t *testing.T) {
	const epochs = 3
	store := officeHomeStore(t)
	out := filepath.Join(t.TempDir(), "bench")
	err, _, stderr := callCommand(runBench, "--features", store, "--protocol", "pairs", "--tasks", "Art->Clipart",
		"--methods", "unimos", "--epochs", strconv.Itoa(epochs), "--out", out)
	if err != nil {
		t.Fatalf("bench: %v\n%s", err, stderr)
	}
	dir := filepath.Join(out, "runs", "pairs", "unimos", "Art_to_Clipart", "seed-2023")
	run := readResult(t, dir)
	for i, e := range run.History {
		if e.Epoch != i {
			t.Errorf("result.json: history[%d] is epoch %d", i, e.Epoch)
		}
	}
	if n := len(run.History); n != epochs+1 || run.History[n-1].Epoch != epochs {
		t.Fatalf("result.json: %d tests, want %d", n, epochs+1)
	}
	best := run.Best.Epoch
	if *run.History[best].Accuracy != run.Best.Accuracy {
		t.Errorf("best epoch %d has accuracy %v, best says %v", best, *run.History[best].Accuracy, run.Best.Accuracy)
	}
	oracle := fmt.Sprintf("epoch %d)", best)
	if best == 0 {
		oracle = "before training)"
	}
	if !strings.Contains(stderr, fmt.Sprintf("(oracle best %.2f%%, %s", run.Best.Accuracy, oracle)) {
		t.Errorf("bench's line does not name epoch %d:\n%s", best, stderr)
	}

	lines := testkit.ReadCSV(t, filepath.Join(out, "results.csv"))
	csvEpoch := map[string]string{}
	for _, l := range lines[1:] {
		csvEpoch[l[6]] = l[7] // selection -> epoch
	}
	if csvEpoch["last"] != strconv.Itoa(epochs) || csvEpoch["oracle"] != strconv.Itoa(best) {
		t.Errorf("results.csv: last epoch %s, oracle %s; want %d, %d", csvEpoch["last"], csvEpoch["oracle"], epochs, best)
	}
	for _, s := range run.Selections {
		if csvEpoch[s.Criterion] != strconv.Itoa(s.Epoch) {
			t.Errorf("results.csv: %s picks epoch %s, result.json %d", s.Criterion, csvEpoch[s.Criterion], s.Epoch)
		}
	}

	// adapt, on the same task with the same settings, makes the same run.
	adaptDir := filepath.Join(t.TempDir(), "run")
	code, stdout, errOut := runCLI(t, "adapt", "--features", store, "--source", "Art", "--target", "Clipart",
		"--epochs", strconv.Itoa(epochs), "--seed", "2023", "--out", adaptDir)
	if code != 0 {
		t.Fatalf("adapt: status %d\n%s", code, errOut)
	}
	var heads []string
	for _, l := range strings.Split(strings.TrimSpace(errOut), "\n") {
		heads = append(heads, strings.Join(strings.Fields(l)[:2], " "))
	}
	if want := []string{"before training", "epoch 1/3", "epoch 2/3", "epoch 3/3"}; !slices.Equal(heads, want) {
		t.Errorf("adapt's lines start %q, want %q", heads, want)
	}
	if !strings.Contains(stdout, fmt.Sprintf("%6.2f%%  (%s chosen with target labels", run.Best.Accuracy, strings.Replace(oracle, ")", ",", 1))) {
		t.Errorf("adapt's summary does not name epoch %d:\n%s", best, stdout)
	}
}
