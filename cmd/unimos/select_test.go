package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/unimos/unimos/features"
	"github.com/unimos/unimos/internal/testkit"
	"github.com/unimos/unimos/unimos"
)

// TestAdaptSelect: --select records the criterion's pick as "selected"
// beside the last epoch, result.json scores the temporal ensemble, and
// predictions.csv stays the last epoch's; an unknown criterion is a usage
// error.
func TestAdaptSelect(t *testing.T) {
	out := filepath.Join(t.TempDir(), "run")
	store, args := tinyTask(t, out, "3")
	code, stdout, errOut := runCLI(t, append(args, "--select", "ensv")...)
	if code != 0 {
		t.Fatalf("adapt: %q", errOut)
	}
	r, err := unimos.ReadResult(filepath.Join(out, unimos.ResultFile))
	if err != nil {
		t.Fatal(err)
	}
	c, _ := unimos.CriterionByName("ensv")
	picked := r.History[c.Select(r.History)]
	if s := r.Selected; s == nil || s.Criterion != "ensv" || s.Epoch != picked.Epoch || *s.Accuracy != *picked.Accuracy {
		t.Errorf("selected %+v, want ensv's pick, epoch %d", r.Selected, picked.Epoch)
	}
	if r.Final == nil || r.TemporalEnsemble == nil || r.TemporalEnsemble.Epochs != 3 || r.TemporalEnsemble.Score == nil {
		t.Errorf("final %v, temporal ensemble %+v", r.Final, r.TemporalEnsemble)
	}
	if !strings.Contains(stdout, "chosen by ensv") || !strings.Contains(stdout, "temporal ensemble") {
		t.Errorf("summary does not show the selection and the ensemble:\n%s", stdout)
	}
	// The predictions' accuracy is the last epoch's.
	rows := testkit.ReadCSV(t, filepath.Join(out, unimos.PredictionsFile))
	st, err := features.Open(store)
	if err != nil {
		t.Fatal(err)
	}
	target, err := st.Domain("sketch")
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != len(target.Labels)+1 {
		t.Fatalf("%d prediction rows for %d images", len(rows)-1, len(target.Labels))
	}
	hits := 0
	for i, row := range rows[1:] {
		if row[2] == st.Meta.Classes[target.Labels[i]] {
			hits++
		}
	}
	if acc := 100 * float64(hits) / float64(len(target.Labels)); acc != r.Final.Accuracy {
		t.Errorf("predictions.csv scores %.4f, the last epoch %.4f", acc, r.Final.Accuracy)
	}
	if _, err := os.Stat(filepath.Join(out, unimos.EnsembleFile)); err == nil {
		t.Error("a finished run left its ensemble file")
	}

	for _, bad := range [][]string{{"--select", "accuracy"}} {
		dir := filepath.Join(t.TempDir(), "bad")
		_, args := tinyTask(t, dir, "1")
		if code, _, errOut := runCLI(t, append(args, bad...)...); code != 2 || !strings.Contains(errOut, bad[1]) {
			t.Errorf("%v: status %d, stderr %q; want a usage error naming it", bad, code, errOut)
		}
	}
}
