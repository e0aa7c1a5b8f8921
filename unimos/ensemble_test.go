package unimos

import (
	"math"
	"path/filepath"
	"slices"
	"testing"

	"github.com/unimos/unimos/tensor"
)

// TestTemporalEnsembleByHand: three epochs of two rows and two classes. The
// mean of the probabilities is row 0 (0.6, 0.4), row 1 (0.3, 0.7), so the
// ensemble's labels are (0, 1); epoch 1 predicts (0, 1), epoch 2 (1, 1),
// epoch 3 (0, 0): EnsV's agreements are 100, 50 and 50.
func TestTemporalEnsembleByHand(t *testing.T) {
	epochs := [][]float32{
		{0.9, 0.1, 0.2, 0.8},
		{0.3, 0.7, 0.1, 0.9},
		{0.6, 0.4, 0.6, 0.4},
	}
	var te temporalEnsemble
	for i, p := range epochs {
		if te.complete(i + 1) {
			t.Errorf("complete after %d of %d epochs", i, i+1)
		}
		te.add(i+1, tensor.FromSlice(2, 2, slices.Clone(p)))
	}
	if !te.complete(3) || te.complete(4) {
		t.Error("complete is wrong after three epochs")
	}
	mean := te.probabilities()
	for i, want := range []float64{0.6, 0.4, 0.3, 0.7} {
		if !approx(float64(mean.Data[i]), want, 1e-6) {
			t.Errorf("mean[%d] = %v, want %v", i, mean.Data[i], want)
		}
	}
	if got, want := te.agreements(), []float64{100, 50, 50}; !slices.Equal(got, want) {
		t.Errorf("agreements %v, want %v", got, want)
	}
	history := []Evaluation{{Epoch: 0}, {Epoch: 1}, {Epoch: 2}, {Epoch: 3}}
	te.fillEnsV(history)
	if history[0].LabelFree.EnsV != nil || *history[1].LabelFree.EnsV != 100 || *history[3].LabelFree.EnsV != 50 {
		t.Errorf("EnsV filled wrongly: %+v", history)
	}
}

// TestTemporalEnsembleMemoryBound: the ensemble of E epochs of N rows and
// K classes holds one running sum [N, K] and E argmax vectors of N int32,
// never an epoch's probabilities.
func TestTemporalEnsembleMemoryBound(t *testing.T) {
	const n, k, e = 50, 7, 12
	var te temporalEnsemble
	for epoch := 1; epoch <= e; epoch++ {
		p := tensor.New(n, k)
		for i := range n {
			p.Set(i, (i+epoch)%k, 1)
		}
		te.add(epoch, p)
	}
	if te.sum.Rows != n || te.sum.Cols != k || len(te.sum.Data) != n*k {
		t.Errorf("running sum %dx%d (%d values), want %dx%d", te.sum.Rows, te.sum.Cols, len(te.sum.Data), n, k)
	}
	if len(te.argmax) != e || len(te.epochs) != e {
		t.Fatalf("%d argmax vectors and %d epochs, want %d", len(te.argmax), len(te.epochs), e)
	}
	for _, v := range te.argmax {
		if len(v) != n || cap(v) != n {
			t.Errorf("argmax vector of length %d (capacity %d), want %d", len(v), cap(v), n)
		}
	}
	bytes := 4*len(te.sum.Data) + 4*n*e
	if limit := 4 * n * (k + e); bytes > limit {
		t.Errorf("%d bytes held, bound %d", bytes, limit)
	}
}

func TestEnsembleSaveLoad(t *testing.T) {
	var te temporalEnsemble
	te.add(1, tensor.FromSlice(2, 3, []float32{0.2, 0.5, 0.3, 0.6, 0.3, 0.1}))
	te.add(2, tensor.FromSlice(2, 3, []float32{0.1, 0.1, 0.8, 0.2, 0.7, 0.1}))
	path := filepath.Join(t.TempDir(), EnsembleFile)
	if err := te.save(path); err != nil {
		t.Fatal(err)
	}
	got, err := loadEnsemble(path, 2, 3)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(got.sum.Data, te.sum.Data) || !slices.Equal(got.epochs, te.epochs) ||
		!slices.EqualFunc(got.argmax, te.argmax, slices.Equal) {
		t.Errorf("loaded %+v, saved %+v", got, te)
	}
	if _, err := loadEnsemble(path, 3, 3); err == nil {
		t.Error("an ensemble of 2 rows loaded for a target of 3")
	}
}

// TestBatchNuclearNormByHand: the nuclear norm over √N of small prediction
// matrices whose singular values are known.
func TestBatchNuclearNormByHand(t *testing.T) {
	for _, c := range []struct {
		name string
		n, k int
		p    []float32
		want float64
	}{
		{"one-hot rows on distinct classes: singular values 1, 1, 1", 3, 3, []float32{1, 0, 0, 0, 1, 0, 0, 0, 1}, 3 / math.Sqrt(3)},
		{"two rows of one class, one of another: √2 and 1", 3, 2, []float32{1, 0, 1, 0, 0, 1}, (math.Sqrt2 + 1) / math.Sqrt(3)},
		{"identical uniform rows: rank 1, singular value 1", 2, 2, []float32{0.5, 0.5, 0.5, 0.5}, 1 / math.Sqrt2},
	} {
		if got := BatchNuclearNorm(tensor.FromSlice(c.n, c.k, c.p)); !approx(got, c.want, 1e-6) {
			t.Errorf("%s: BNM %v, want %v", c.name, got, c.want)
		}
	}
}

func TestSymmetricEigenvalues(t *testing.T) {
	for _, c := range []struct {
		k    int
		a    []float64
		want []float64
	}{
		{2, []float64{2, 1, 1, 2}, []float64{1, 3}},
		{3, []float64{4, 0, 0, 0, 1, 0, 0, 0, 2}, []float64{1, 2, 4}},
		// [[2,-1,0],[-1,2,-1],[0,-1,2]]: 2-√2, 2, 2+√2.
		{3, []float64{2, -1, 0, -1, 2, -1, 0, -1, 2}, []float64{2 - math.Sqrt2, 2, 2 + math.Sqrt2}},
	} {
		got := symmetricEigenvalues(slices.Clone(c.a), c.k)
		slices.Sort(got)
		for i := range got {
			if !approx(got[i], c.want[i], 1e-12) {
				t.Errorf("eigenvalues of %v: %v, want %v", c.a, got, c.want)
				break
			}
		}
	}
}

// TestMixProbeScoreByHand: four pairs with pseudo-labels (a, b) = (0, 1),
// (1, 0), (2, 2), (0, 0); the mixes are predicted 0, 0, 2, 1. Inter pairs:
// the first hits its dominant label 0, the second misses 1 (50%); intra:
// the third hits, the fourth misses (50%).
func TestMixProbeScoreByHand(t *testing.T) {
	pseudo := []int{0, 1, 2, 0, 2, 0}
	p := &mixProbe{a: []int{0, 1, 2, 3}, b: []int{1, 0, 4, 5}}
	mixed := tensor.FromSlice(4, 3, []float32{
		0.8, 0.1, 0.1,
		0.6, 0.3, 0.1,
		0.1, 0.1, 0.8,
		0.2, 0.7, 0.1,
	})
	if inter, intra := p.score(pseudo, mixed); inter != 50 || intra != 50 {
		t.Errorf("inter %v, intra %v; want 50, 50", inter, intra)
	}
	// Every row of one class: no inter pair, which scores 0.
	if inter, _ := p.score([]int{1, 1, 1, 1, 1, 1}, mixed); inter != 0 {
		t.Errorf("inter %v without inter pairs, want 0", inter)
	}
}

// TestMixProbePairs: the pairs are distinct rows, the same for a seed, and
// each mix is λ·x_a + (1−λ)·x_b scaled to unit norm.
func TestMixProbePairs(t *testing.T) {
	task := tinyTask(3, 40, 6, 3)
	p := newMixProbe(task.TargetFeatures, task.Text, 100, 7)
	q := newMixProbe(task.TargetFeatures, task.Text, 100, 7)
	if !slices.Equal(p.a, q.a) || !slices.Equal(p.b, q.b) || len(p.a) != 40 {
		t.Fatalf("pairs differ for one seed or are not 40: %v %v", p.a, q.a)
	}
	for i, a := range p.a {
		b := p.b[i]
		if a == b {
			t.Errorf("pair %d mixes row %d with itself", i, a)
		}
		want := make([]float32, 6)
		for j := range want {
			want[j] = MixValLambda*task.TargetFeatures.At(a, j) + (1-MixValLambda)*task.TargetFeatures.At(b, j)
		}
		tensor.NormalizeRow(want, 1e-12)
		for j, v := range p.x.Row(i) {
			if !approx(float64(v), float64(want[j]), 1e-6) {
				t.Fatalf("mix %d = %v, want %v", i, p.x.Row(i), want)
			}
		}
	}
}

// TestTrainerFeedsTheCriteria: after a short run every trained epoch has
// EnsV and MixVal measures, the test before training no EnsV, and the
// temporal ensemble is the mean of the epochs' tests.
func TestTrainerFeedsTheCriteria(t *testing.T) {
	task := tinyTask(5, 160, 12, 4)
	cfg := smallConfig()
	cfg.Epochs = 4
	tr := newTestTrainer(t, cfg, task)
	if _, ok := tr.TemporalEnsemble(); ok {
		t.Error("a temporal ensemble before training")
	}
	history := tr.Run(nil)
	if history[0].LabelFree.EnsV != nil {
		t.Error("EnsV for the test before training")
	}
	for _, e := range history[1:] {
		l := e.LabelFree
		if l.EnsV == nil || *l.EnsV < 0 || *l.EnsV > 100 || l.MixValInter < 0 || l.MixValInter > 100 ||
			l.MixValIntra < 0 || l.MixValIntra > 100 || !(l.BNM > 0) {
			t.Errorf("epoch %d: criteria missing or out of range: %+v", e.Epoch, l)
		}
	}
	te, ok := tr.TemporalEnsemble()
	if !ok || te.Epoch != cfg.Epochs || te.Accuracy == nil {
		t.Fatalf("temporal ensemble %+v, %v", te, ok)
	}
	// EnsV's measure is the agreement of each epoch with the ensemble's argmax.
	for _, e := range history[1:] {
		if got := Agreement(e.Predictions, te.Predictions); !approx(got, *e.LabelFree.EnsV, 1e-9) {
			t.Errorf("epoch %d: EnsV %v, agreement with the ensemble %v", e.Epoch, *e.LabelFree.EnsV, got)
		}
	}
}

// TestAMIByHand: identical partitions (up to renaming) score 1; for
// u = (0, 0, 1, 1), v = (0, 1, 0, 1) the MI is 0 and E[MI] over the
// hypergeometric model of 2+2 items is (1/3)·ln 2 (the tables with n11 = 0
// or 2, probability 1/6 each, have MI ln 2; n11 = 1, probability 2/3, has
// 0), so AMI = −(ln 2/3)/(ln 2 − ln 2/3) = −1/2.
func TestAMIByHand(t *testing.T) {
	for _, c := range []struct {
		name string
		u, v []int
		want float64
	}{
		{"identical", []int{0, 0, 1, 1, 2}, []int{0, 0, 1, 1, 2}, 1},
		{"renamed", []int{0, 0, 1, 1, 2}, []int{5, 5, 3, 3, 9}, 1},
		{"independent", []int{0, 0, 1, 1}, []int{0, 1, 0, 1}, -0.5},
		{"one cluster each", []int{1, 1, 1}, []int{4, 4, 4}, 1},
	} {
		if got := AdjustedMutualInformation(c.u, c.v); !approx(got, c.want, 1e-12) {
			t.Errorf("%s: AMI %v, want %v", c.name, got, c.want)
		}
	}
}

// TestKMeansFindsSeparatedClusters: three tight groups far apart are
// recovered exactly, so ClassAMI of their true labels is 1.
func TestKMeansFindsSeparatedClusters(t *testing.T) {
	centers := [][]float32{{1, 0, 0}, {0, 1, 0}, {0, 0, 1}}
	x := tensor.New(30, 3)
	labels := make([]int, 30)
	for i := range 30 {
		labels[i] = i % 3
		for j, v := range centers[i%3] {
			x.Set(i, j, v+0.01*float32(i%5))
		}
	}
	if got := ClassAMI(x, labels, 3, 1); !approx(got, 1, 1e-12) {
		t.Errorf("ClassAMI %v on separated clusters, want 1", got)
	}
}

// TestResumedEnsemble: a trainer stopped in its third epoch and resumed
// with the ensemble saved beside the checkpoint ends with the EnsV and
// temporal ensemble of an uninterrupted run; resumed without it, it
// reports neither.
func TestResumedEnsemble(t *testing.T) {
	task := tinyTask(5, 160, 12, 4)
	cfg := smallConfig()
	cfg.Epochs = 4
	whole := newTestTrainer(t, cfg, task)
	want := whole.Run(nil)
	wantTE, _ := whole.TemporalEnsemble()

	stopped := newTestTrainer(t, cfg, task)
	stopped.Stop = func() bool { return stopped.epoch == 2 && stopped.epochIteration == 1 }
	stopped.Run(nil)
	dir := t.TempDir()
	checkpoint, ensemble := filepath.Join(dir, CheckpointFile), filepath.Join(dir, EnsembleFile)
	if err := stopped.SaveCheckpoint(checkpoint, nil); err != nil {
		t.Fatal(err)
	}
	if err := stopped.SaveEnsemble(ensemble); err != nil {
		t.Fatal(err)
	}
	for _, withFile := range []bool{true, false} {
		resumed, err := ResumeTrainer(checkpoint, task)
		if err != nil {
			t.Fatal(err)
		}
		if withFile {
			if err := resumed.RestoreEnsemble(ensemble); err != nil {
				t.Fatal(err)
			}
		}
		got := resumed.Run(nil)
		te, ok := resumed.TemporalEnsemble()
		if !withFile {
			if ok || got[len(got)-1].LabelFree.EnsV != nil {
				t.Error("resumed without the ensemble file, the run reports EnsV or a temporal ensemble")
			}
			continue
		}
		if !ok || *te.Accuracy != *wantTE.Accuracy || !slices.Equal(te.Predictions, wantTE.Predictions) {
			t.Errorf("resumed temporal ensemble %v, uninterrupted %v", te.Accuracy, wantTE.Accuracy)
		}
		for i := range want {
			if a, b := got[i].LabelFree.EnsV, want[i].LabelFree.EnsV; (a == nil) != (b == nil) || (a != nil && *a != *b) {
				t.Errorf("epoch %d: EnsV %v resumed, %v uninterrupted", want[i].Epoch, a, b)
			}
		}
	}
}
