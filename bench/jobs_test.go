package bench

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/unimos/unimos/features"
	"github.com/unimos/unimos/internal/shard"
	"github.com/unimos/unimos/tensor"
	"github.com/unimos/unimos/unimos"
)

// jobsStore is an Office-Home-shaped store with every class and targets of
// about 900 rows, large enough that the selection criteria's products over
// the target rows (2·65·65·900 flops) run on several threads when allowed:
// there, OpenBLAS's sums depend on its thread count.
func jobsStore(t *testing.T) (Protocol, []Task, *features.Store) {
	t.Helper()
	p, _ := ProtocolByName("office-home")
	tasks, err := p.ParseTasks("A->C,C->A")
	if err != nil {
		t.Fatal(err)
	}
	return p, tasks, smallStore(t, "office-home", 0.2, 65, 80)
}

// TestJobsMakeTheSameBench makes one bench four times: with 1 job from a
// process whose thread limit is 1, then with 1, 2 and 8 jobs (more workers
// than runs) from one whose limit is 2, as a command's is on two cores. It
// requires the same report.md and results.csv (timings aside), the same
// files in every run folder (result.json but for its timing, predictions,
// confusion matrix, model), OnStart and OnEnd called in run order, never
// concurrently, and the thread limit restored afterwards. (On OpenBLAS, a
// bench whose runs took the limit of 2 would fail the second case.)
func TestJobsMakeTheSameBench(t *testing.T) {
	p, tasks, store := jobsStore(t)
	opts := Options{Protocol: p, Tasks: tasks, Seeds: []uint64{1}, Epochs: 2}
	var want string // the first bench's folder
	for i, c := range []struct{ jobs, threads int }{{1, 1}, {1, 2}, {2, 2}, {8, 2}} {
		jobs := c.jobs
		tensor.SetThreads(c.threads)
		opts.Jobs, opts.Out = jobs, filepath.Join(t.TempDir(), "bench")
		var starts, ends []int
		var inside atomic.Int32 // callbacks running now
		enter := func() {
			if inside.Add(1) > 1 {
				t.Errorf("%d jobs: OnStart or OnEnd called concurrently", jobs)
			}
		}
		opts.OnStart = func(r Run, i, n int) unimos.RunOptions {
			enter()
			defer inside.Add(-1)
			starts = append(starts, i)
			return unimos.RunOptions{}
		}
		opts.OnEnd = func(o Outcome) {
			enter()
			defer inside.Add(-1)
			ends = append(ends, o.Index)
		}
		outcomes, err := Execute(store, opts)
		if err != nil {
			t.Fatalf("%d jobs: %v", jobs, err)
		}
		if got := tensor.Threads(); got != c.threads {
			t.Errorf("%d jobs: thread limit %d after the bench, want %d as before", jobs, got, c.threads)
		}
		tensor.SetThreads(0)
		order := []int{0, 1, 2, 3, 4, 5} // 2 zero-shot, 2 source-only, 2 UniMoS runs
		if !slices.Equal(starts, order) || !slices.Equal(ends, order) || len(outcomes) != len(order) {
			t.Errorf("%d jobs: started %v, ended %v, %d outcomes; want runs %v in order", jobs, starts, ends, len(outcomes), order)
		}
		for i, o := range outcomes {
			if o.Index != i || o.Err != nil || o.Skipped {
				t.Errorf("%d jobs: outcome %d is run %d (%s), error %v, skipped %v", jobs, i, o.Index, o.Run.Name(), o.Err, o.Skipped)
			}
		}
		if err := WriteReport(opts.Out, "snd"); err != nil {
			t.Fatal(err)
		}
		if i == 0 {
			want = opts.Out
			continue
		}
		if got, w := readReport(t, opts.Out), readReport(t, want); got != w {
			t.Errorf("%d jobs: report.md differs from 1 job's:\n%s\nwant:\n%s", jobs, got, w)
		}
		if a, b := csvNumbers(t, want), csvNumbers(t, opts.Out); !slices.Equal(a, b) {
			t.Errorf("%d jobs: results.csv differs from 1 job's:\n%s\nwant:\n%s", jobs, strings.Join(b, "\n"), strings.Join(a, "\n"))
		}
		for _, o := range outcomes {
			rel, _ := filepath.Rel(opts.Out, o.Run.Dir)
			sameRunFiles(t, filepath.Join(want, rel), o.Run.Dir)
		}
	}
}

// sameRunFiles requires the files of two folders of the same run to be
// identical, but for result.json's train_seconds.
func sameRunFiles(t *testing.T, want, got string) {
	t.Helper()
	entries, err := os.ReadDir(want)
	if err != nil {
		t.Fatal(err)
	}
	names := []string{}
	for _, e := range entries {
		names = append(names, e.Name())
	}
	if gotEntries, _ := os.ReadDir(got); len(gotEntries) != len(entries) {
		t.Errorf("%s has %d files, want %d (%v)", got, len(gotEntries), len(entries), names)
	}
	for _, name := range names {
		a, errA := os.ReadFile(filepath.Join(want, name))
		b, errB := os.ReadFile(filepath.Join(got, name))
		if errA != nil || errB != nil {
			t.Errorf("%s: %v, %v", name, errA, errB)
			continue
		}
		if name == unimos.ResultFile {
			a, b = withoutTiming(t, a), withoutTiming(t, b)
		}
		if !bytes.Equal(a, b) {
			t.Errorf("%s differs from %s", filepath.Join(got, name), filepath.Join(want, name))
		}
	}
}

// withoutTiming returns result.json with train_seconds removed.
func withoutTiming(t *testing.T, raw []byte) []byte {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(raw, &m); err != nil {
		t.Fatal(err)
	}
	if _, ok := m["train_seconds"]; !ok {
		t.Fatalf("result.json has no train_seconds:\n%s", raw)
	}
	delete(m, "train_seconds")
	out, _ := json.Marshal(m)
	return out
}

// TestStopJobs stops a 2-job bench while both UniMoS runs train: each
// leaves its checkpoint and no run folder, the earlier runs are finished,
// and a rerun (with 2 jobs, then sharded) continues both to the results of
// a bench that never stopped.
func TestStopJobs(t *testing.T) {
	p, tasks, store := jobsStore(t)
	opts := Options{Protocol: p, Tasks: tasks, Seeds: []uint64{1}, Methods: []string{SourceOnly, UniMoS}, Epochs: 3, Jobs: 2}
	opts.Out = filepath.Join(t.TempDir(), "whole")
	if _, err := Execute(store, opts); err != nil {
		t.Fatal(err)
	}
	whole := opts.Out

	// Stop when both UniMoS runs have made 4 iterations: each waits at its
	// 4th for the other, so that both are in progress when the bench stops.
	var atFour sync.WaitGroup
	atFour.Add(2)
	both := make(chan struct{})
	go func() { atFour.Wait(); close(both) }()
	opts.OnStart = func(r Run, i, n int) unimos.RunOptions {
		if r.Method != UniMoS {
			return unimos.RunOptions{}
		}
		iterations := 0
		return unimos.RunOptions{OnIteration: func(int, int, int, float64) {
			if iterations++; iterations == 4 {
				atFour.Done()
				select {
				case <-both:
				case <-time.After(time.Minute):
					t.Errorf("%s: the other UniMoS run did not reach its 4th iteration in a minute: the runs are not made at once", r.Name())
				}
			}
		}}
	}
	opts.Stop = func() bool {
		select {
		case <-both:
			return true
		default:
			return false
		}
	}
	opts.Out = filepath.Join(t.TempDir(), "stopped")
	o, err := Execute(store, opts)
	if !errors.Is(err, ErrStopped) || !strings.Contains(err.Error(), "2 of 4 runs finished") || len(o) != 4 {
		t.Fatalf("stopped bench: %d outcomes, %v", len(o), err)
	}
	for _, x := range o[2:] {
		if !errors.Is(x.Err, unimos.ErrStopped) {
			t.Errorf("%s: %v, want stopped", x.Run.Name(), x.Err)
		}
		if _, err := os.Stat(filepath.Join(x.Run.Dir+".partial", unimos.CheckpointFile)); err != nil {
			t.Errorf("%s: no checkpoint: %v", x.Run.Name(), err)
		}
		if _, err := os.Stat(x.Run.Dir); !os.IsNotExist(err) {
			t.Errorf("%s: a stopped run has a run folder: %v", x.Run.Name(), err)
		}
	}

	// The rerun: first shard 1/2 (the second UniMoS run) with 2 jobs, then the whole bench.
	opts.OnStart, opts.Stop = nil, nil
	opts.Shard = shard.Shard{Index: 1, Count: 2}
	o, err = Execute(store, opts)
	if made, skipped, _ := executed(o); err != nil || made != 1 || skipped != 1 || !o[1].Resumed {
		t.Fatalf("shard 1/2 of the rerun: %d made, %d skipped, %v", made, skipped, err)
	}
	opts.Shard = shard.Shard{}
	o, err = Execute(store, opts)
	if made, skipped, _ := executed(o); err != nil || made != 1 || skipped != 3 || !o[2].Resumed {
		t.Fatalf("rerun: %d made, %d skipped, %v", made, skipped, err)
	}
	for _, x := range o {
		rel, _ := filepath.Rel(opts.Out, x.Run.Dir)
		sameRunFiles(t, filepath.Join(whole, rel), x.Run.Dir)
	}
}
