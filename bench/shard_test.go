package bench

import (
	"bytes"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/unimos/unimos/internal/shard"
	"github.com/unimos/unimos/internal/testkit"
)

// TestShardedBenchReport runs a bench whole and in 3 shards, into one
// shared folder and into a folder each, and requires the same report.md
// and the same results.csv but for the timings and run folders.
func TestShardedBenchReport(t *testing.T) {
	p, _ := ProtocolByName("office-home")
	store := smallStore(t, "office-home", 0.02, 8, 32)
	opts := Options{Protocol: p, Tasks: p.Tasks[:2], Seeds: []uint64{1, 2}, Epochs: 1}

	whole := filepath.Join(t.TempDir(), "whole")
	opts.Out = whole
	if _, err := Execute(store, opts); err != nil {
		t.Fatal(err)
	}
	if err := WriteReport(whole, ""); err != nil {
		t.Fatal(err)
	}

	const n = 3
	shared := filepath.Join(t.TempDir(), "shared")
	var own []string
	made := map[string]int{} // run folder -> shards that made it
	for i := range n {
		for _, out := range []string{shared, filepath.Join(t.TempDir(), "shard")} {
			opts.Out, opts.Shard = out, shard.Shard{Index: i, Count: n}
			outcomes, err := Execute(store, opts)
			if err != nil {
				t.Fatal(err)
			}
			if got, _, _ := executed(outcomes); got != len(outcomes) || got < 2 {
				t.Errorf("shard %d/%d into %s: made %d of %d runs", i, n, out, got, len(outcomes))
			}
			if out != shared {
				own = append(own, out)
				for _, o := range outcomes {
					rel, _ := filepath.Rel(out, o.Run.Dir)
					made[rel]++
				}
			}
		}
	}
	// 2 tasks: 2 zero-shot runs, then 4 source-only and 4 UniMoS runs.
	if len(made) != 10 {
		t.Errorf("the shards made %d distinct runs, want 10", len(made))
	}
	for dir, k := range made {
		if k != 1 {
			t.Errorf("%s was made by %d shards", dir, k)
		}
	}
	if err := WriteReport(shared, ""); err != nil {
		t.Fatal(err)
	}
	joined := filepath.Join(t.TempDir(), "joined")
	if err := WriteReport(joined, "", own...); err != nil {
		t.Fatal(err)
	}

	want := readReport(t, whole)
	for _, dir := range []string{shared, joined} {
		if got := readReport(t, dir); got != want {
			t.Errorf("%s/report.md differs from the unsharded bench's:\n%s\nwant:\n%s", dir, got, want)
		}
		if a, b := csvNumbers(t, whole), csvNumbers(t, dir); !slices.Equal(a, b) {
			t.Errorf("%s/results.csv differs from the unsharded bench's:\n%s\nwant:\n%s", dir, strings.Join(b, "\n"), strings.Join(a, "\n"))
		}
	}
	for _, name := range []string{"office-home-tasks.png", "office-home-curves.png"} {
		a, errA := os.ReadFile(filepath.Join(whole, PlotsDir, name))
		b, errB := os.ReadFile(filepath.Join(joined, PlotsDir, name))
		if errA == nil && (errB != nil || !bytes.Equal(a, b)) {
			t.Errorf("plot %s differs (%v)", name, errB)
		}
	}

	// A run finished twice cannot be reported: which would count?
	err := WriteReport(t.TempDir(), "", own[0], whole)
	if err == nil || !strings.Contains(err.Error(), "is finished in both") {
		t.Errorf("report over overlapping folders: %v", err)
	}
	// The same folder given twice is read once.
	if err := WriteReport(shared, "", shared, shared+"/."); err != nil {
		t.Errorf("report over a repeated folder: %v", err)
	}
	// Folders made on different datasets are refused.
	other := smallStore(t, "office-home", 0.02, 6, 32)
	otherOut := t.TempDir()
	if _, err := Execute(other, Options{Protocol: p, Tasks: p.Tasks[:1], Methods: []string{ZeroShot}, Out: otherOut}); err != nil {
		t.Fatal(err)
	}
	if err := WriteReport(t.TempDir(), "", own[0], otherOut); err == nil || !strings.Contains(err.Error(), "different datasets") {
		t.Errorf("report over two datasets: %v", err)
	}
}

func readReport(t *testing.T, dir string) string {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(dir, ReportFile))
	if err != nil {
		t.Fatal(err)
	}
	return string(raw)
}

// csvNumbers returns the lines of results.csv without the train_seconds
// and run_dir columns, which differ between benches of the same runs.
func csvNumbers(t *testing.T, dir string) []string {
	t.Helper()
	rows := testkit.ReadCSV(t, filepath.Join(dir, ResultsCSV))
	skip := []int{slices.Index(rows[0], "train_seconds"), slices.Index(rows[0], "run_dir")}
	var lines []string
	for _, r := range rows {
		var keep []string
		for i, v := range r {
			if !slices.Contains(skip, i) {
				keep = append(keep, v)
			}
		}
		lines = append(lines, strings.Join(keep, ","))
	}
	return lines
}

func TestShardOfDealsRunsOut(t *testing.T) {
	runs := make([]Run, 7)
	for i := range runs {
		runs[i].Seed = uint64(i)
	}
	for _, c := range []struct {
		s    shard.Shard
		want []uint64
	}{
		{shard.Shard{Index: 0, Count: 1}, []uint64{0, 1, 2, 3, 4, 5, 6}},
		{shard.Shard{Index: 0, Count: 3}, []uint64{0, 3, 6}},
		{shard.Shard{Index: 2, Count: 3}, []uint64{2, 5}},
		{shard.Shard{Index: 7, Count: 8}, nil},
	} {
		var got []uint64
		for _, r := range shardOf(runs, c.s) {
			got = append(got, r.Seed)
		}
		if !slices.Equal(got, c.want) {
			t.Errorf("shard %v: seeds %v, want %v", c.s, got, c.want)
		}
	}
}
