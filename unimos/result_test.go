package unimos

import (
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/unimos/unimos/internal/testkit"
)

// TestResultEpochs trains a short run and checks that result.json counts
// epochs trained everywhere: 0 for the test before training, E for the
// last, and the oracle and the label-free picks in the same units.
func TestResultEpochs(t *testing.T) {
	cfg := smallConfig()
	cfg.Epochs = 3
	tr := newTestTrainer(t, cfg, tinyTask(5, 100, 12, 4))
	history := tr.Run(nil)
	r := NewResult("s", "t", cfg, history, nil, 0)
	for i, e := range r.History {
		if e.Epoch != i {
			t.Errorf("history[%d] is epoch %d", i, e.Epoch)
		}
	}
	best := 0
	for i, e := range history {
		if *e.Accuracy >= *history[best].Accuracy {
			best = i
		}
	}
	if r.Best.Epoch != best {
		t.Errorf("best epoch %d, want %d", r.Best.Epoch, best)
	}
	for _, s := range r.Selections {
		if s.Epoch < 1 || s.Epoch > cfg.Epochs {
			t.Errorf("%s picks epoch %d, outside 1-%d", s.Criterion, s.Epoch, cfg.Epochs)
		}
	}
}

// TestReadResultFormats writes a result as WriteResult does and as format 1
// did (no format field, epochs numbered from 0, −1 before training):
// ReadResult reads both to the same result.
func TestReadResultFormats(t *testing.T) {
	cfg := smallConfig()
	cfg.Epochs = 2
	tr := newTestTrainer(t, cfg, tinyTask(6, 100, 12, 4))
	want := NewResult("s", "t", cfg, tr.Run(nil), nil, 1.5)
	dir := t.TempDir()
	current := filepath.Join(dir, "current.json")
	if err := WriteResult(current, want); err != nil {
		t.Fatal(err)
	}
	raw, err := os.ReadFile(current)
	if err != nil {
		t.Fatal(err)
	}
	var old map[string]any
	if err := json.Unmarshal(raw, &old); err != nil {
		t.Fatal(err)
	}
	delete(old, "format")
	decrement := func(m any) { e := m.(map[string]any); e["epoch"] = e["epoch"].(float64) - 1 }
	for _, e := range old["history"].([]any) {
		decrement(e)
	}
	decrement(old["best"])
	for _, s := range old["selections"].([]any) {
		decrement(s)
	}
	oldPath := filepath.Join(dir, "format1.json")
	if raw, err = json.Marshal(old); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(oldPath, raw, 0o644); err != nil {
		t.Fatal(err)
	}
	if old["history"].([]any)[0].(map[string]any)["epoch"] != -1.0 {
		t.Fatal("the format 1 file does not number the test before training −1")
	}

	for _, path := range []string{current, oldPath} {
		got, err := ReadResult(path)
		if err != nil {
			t.Fatal(err)
		}
		// Predictions and metrics are not kept in result.json.
		w := *want
		w.History = nil
		for _, e := range want.History {
			e.Predictions, e.Confidences, e.Metrics = nil, nil, nil
			w.History = append(w.History, e)
		}
		if !reflect.DeepEqual(*got, w) {
			t.Errorf("%s: read\n%+v\nwant\n%+v", filepath.Base(path), *got, w)
		}
	}

	newer := filepath.Join(dir, "newer.json")
	os.WriteFile(newer, []byte(`{"format": 99}`), 0o644)
	if _, err := ReadResult(newer); err == nil || !strings.Contains(err.Error(), "update unimos") {
		t.Errorf("a result from a newer unimos: %v", err)
	}
}

// TestSpecialResultFile checks that a result.json that is not a regular
// file is refused at once, naming it.
func TestSpecialResultFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), ResultFile)
	testkit.RefusesSpecialFiles(t, path, func() error { _, err := ReadResult(path); return err })
}
