package unimos

import (
	"testing"

	"github.com/unimos/unimos/tensor"
)

// benchTrainer is a trainer on an Office-Home-sized task (d = 1024 as CLIP
// RN50, K = 65, 4365 target rows) of random features.
func benchTrainer(b *testing.B) *Trainer {
	b.Helper()
	tr, err := NewTrainer(DefaultConfig(), tinyTask(1, 4365, 1024, 65))
	if err != nil {
		b.Fatal(err)
	}
	tr.pseudo = tensor.ArgmaxRows(tr.teacher)
	return tr
}

// BenchmarkTrainingStep times one UniMoS iteration (32 source + 32 target
// rows): forward, both backward passes and both optimizer steps.
func BenchmarkTrainingStep(b *testing.B) {
	tr := benchTrainer(b)
	flops := tensor.GemmFlops()
	for b.Loop() {
		tr.step()
	}
	reportGemmRate(b, tensor.GemmFlops()-flops)
}

// reportGemmRate reports the matrix products' GFLOP per operation and
// their rate over the whole time (products and everything around them), to
// compare with the machine's peak (docs/benchmarks.md).
func reportGemmRate(b *testing.B, flops uint64) {
	b.ReportMetric(float64(flops)/float64(b.N)/1e9, "GFLOP/op")
	b.ReportMetric(float64(flops)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
}

// BenchmarkEvaluate times one end-of-epoch test on the 4365 target rows.
func BenchmarkEvaluate(b *testing.B) {
	tr := benchTrainer(b)
	for b.Loop() {
		tr.evaluate(3)
	}
}
