package unimos

import (
	"sync"
	"testing"

	"github.com/unimos/unimos/features"
	"github.com/unimos/unimos/synth"
	"github.com/unimos/unimos/tensor"
)

// smallBenchmark writes the synthetic "tiny" preset at three times its size
// and dimension 128: three domains of 720-960 rows, 8 classes.
func smallBenchmark(t *testing.T) *features.Store {
	t.Helper()
	p, err := synth.PresetByName("tiny")
	if err != nil {
		t.Fatal(err)
	}
	if p, err = p.Scaled(3); err != nil {
		t.Fatal(err)
	}
	p.Dim = 128
	dir := t.TempDir()
	if err := synth.Write(dir, p, 2023); err != nil {
		t.Fatal(err)
	}
	store, err := features.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	return store
}

// trained is one training run of the ablation test and its outcome.
type trained struct {
	source, target  string
	cfg             Config
	zeroShot, final float64 // accuracy before training and after the last epoch
}

// train runs every job, two at a time on one GEMM thread each (the
// machines running the tests have two cores), and fills in the outcomes.
// One thread for every product keeps the runs reproducible: OpenBLAS's
// thread count is global, and with two runs setting it the products with a
// long inner dimension would sum in an order that depends on the schedule.
func train(t *testing.T, store *features.Store, jobs []trained) {
	t.Helper()
	tensor.SetThreads(1)
	defer tensor.SetThreads(0)
	var wg sync.WaitGroup
	work := make(chan *trained)
	for range 2 {
		wg.Go(func() {
			for j := range work {
				j.zeroShot, j.final = finalAccuracy(t, store, j.source, j.target, j.cfg)
			}
		})
	}
	for i := range jobs {
		work <- &jobs[i]
	}
	close(work)
	wg.Wait()
}

// finalAccuracy trains on source->target and returns the zero-shot and the
// last-epoch accuracy.
func finalAccuracy(t *testing.T, store *features.Store, source, target string, cfg Config) (zeroShot, final float64) {
	src, err := store.Domain(source)
	if err != nil {
		t.Error(err)
		return
	}
	tgt, err := store.Domain(target)
	if err != nil {
		t.Error(err)
		return
	}
	text, err := store.Text(target)
	if err != nil {
		t.Error(err)
		return
	}
	tr, err := NewTrainer(cfg, Task{src.Features, src.Labels, tgt.Features, tgt.Labels, text})
	if err != nil {
		t.Error(err)
		return
	}
	h := tr.Run(nil)
	return *h[0].LanguageAccuracy, *h[len(h)-1].Accuracy
}

// TestAblationDirections trains UniMoS on the six tasks of a small synthetic
// benchmark with two seeds each, requires a clear gain over CLIP zero-shot
// (every run above it, the mean by at least 6 points), and checks the
// direction of the paper's Table 5 for the two ablations whose effect stands
// out from seed noise over these 12 runs: removing the zero-shot
// distillation or the entropy-minus-diversity term lowers the mean accuracy.
//
// Observed on this store (30 epochs, one GEMM thread; docs/ablations.md):
// over 6 seeds x 6 tasks UniMoS gains 3.9-13.5 points over zero-shot, 9.0-9.5
// on average, on both GEMM backends; without distillation -8.6 to -9.0,
// without L_im -1.1 to -1.6 points on average. The gains are long-tailed: a
// single run now and then lands near 4 points (once at 0.6), and which run
// does moves with rounding alone (a float32 softmax in place of a float64 one
// moved them), so single runs are held only to beating zero-shot and the
// size of the gain is asked of the mean. Removing the debiasing costs 0.4
// here and 0.8 over 60 runs on five stores, too little to test on 12; the
// other three ablations move the mean by less than their standard error.
func TestAblationDirections(t *testing.T) {
	if testing.Short() {
		t.Skip("trains 36 small runs")
	}
	store := smallBenchmark(t)
	full := DefaultConfig()
	full.Epochs = 30
	ablated := []struct {
		name      string
		switchOff func(*Ablations)
	}{
		{"without distillation", func(a *Ablations) { a.NoDistill = true }},
		{"without L_im", func(a *Ablations) { a.NoEntropy = true }},
	}
	const (
		minMeanGain = 6.0 // points over zero-shot on average, well below the observed 9.0-9.5
		minLoss     = 0.5 // points of mean accuracy, well below each observed loss
	)

	var jobs []trained
	for _, source := range store.Meta.Domains {
		for _, target := range store.Meta.Domains {
			if source == target {
				continue
			}
			for _, seed := range []uint64{2023, 1} {
				cfg := full
				cfg.Seed = seed
				jobs = append(jobs, trained{source: source, target: target, cfg: cfg})
				for _, ab := range ablated {
					c := cfg
					ab.switchOff(&c.Ablations)
					jobs = append(jobs, trained{source: source, target: target, cfg: c})
				}
			}
		}
	}
	train(t, store, jobs)
	if t.Failed() {
		return
	}

	meanFinal := func(ablations Ablations) float64 {
		var sum float64
		var n int
		for _, j := range jobs {
			if j.cfg.Ablations == ablations {
				sum += j.final
				n++
			}
		}
		return sum / float64(n)
	}
	var gain float64
	var runs int
	for _, j := range jobs {
		if j.cfg.Ablations != (Ablations{}) {
			continue
		}
		t.Logf("%s->%s seed %d: zero-shot %.2f, UniMoS %.2f (%+.2f)", j.source, j.target, j.cfg.Seed, j.zeroShot, j.final, j.final-j.zeroShot)
		if j.final <= j.zeroShot {
			t.Errorf("%s->%s seed %d: UniMoS %.2f does not beat zero-shot %.2f", j.source, j.target, j.cfg.Seed, j.final, j.zeroShot)
		}
		gain += j.final - j.zeroShot
		runs++
	}
	if gain /= float64(runs); gain < minMeanGain {
		t.Errorf("UniMoS beats zero-shot by %.2f points on average over %d runs; want at least %.0f", gain, runs, minMeanGain)
	}
	reference := meanFinal(Ablations{})
	for _, ab := range ablated {
		var a Ablations
		ab.switchOff(&a)
		got := meanFinal(a)
		t.Logf("%s: mean %.2f, full method %.2f (%+.2f)", ab.name, got, reference, got-reference)
		if got > reference-minLoss {
			t.Errorf("%s: mean %.2f, full method %.2f; want a loss of at least %.1f points", ab.name, got, reference, minLoss)
		}
	}
}
