package progress

import (
	"bytes"
	"strings"
	"testing"
	"time"
)

func TestSilentWhenNotATerminal(t *testing.T) {
	var buf bytes.Buffer
	b := New(&buf, "epoch 1", "it", 10)
	b.Update(5, "loss 1.0")
	b.Clear()
	if buf.Len() != 0 {
		t.Errorf("wrote %q to a non-terminal", buf.String())
	}
}

func TestLine(t *testing.T) {
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	b := &Bar{label: "epoch 3/50", unit: "it", total: 100, start: start}
	// 25 of 100 steps in 5 s: 5 it/s, 75 steps left = 15 s.
	got := b.line(25, "loss 0.5", start.Add(5*time.Second))
	for _, want := range []string{"epoch 3/50", "[======                  ]", "25/100", "5.0 it/s", "ETA 15s", "loss 0.5"} {
		if !strings.Contains(got, want) {
			t.Errorf("line %q lacks %q", got, want)
		}
	}
}

func TestRedrawThrottled(t *testing.T) {
	var buf bytes.Buffer
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	b := &Bar{w: &buf, tty: true, total: 10, start: now, now: func() time.Time { return now }}
	b.Update(1, "")
	first := buf.Len()
	b.Update(2, "") // same instant: skipped
	if buf.Len() != first {
		t.Error("redrew within the throttle interval")
	}
	b.Update(10, "") // the last step always draws
	if buf.Len() == first {
		t.Error("did not draw the final step")
	}
}
