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
	b := &Bar{label: "epoch 3/50", unit: "it", total: 100, first: start, firstDone: 5}
	// 20 steps after the first update in 4 s: 5 it/s, 75 steps left = 15 s.
	got := b.line(25, "loss 0.5", start.Add(4*time.Second))
	for _, want := range []string{"epoch 3/50", "[======                  ]", "25/100", "5.0 it/s", "ETA 15s", "loss 0.5"} {
		if !strings.Contains(got, want) {
			t.Errorf("line %q lacks %q", got, want)
		}
	}
}

func TestRedrawThrottled(t *testing.T) {
	var buf bytes.Buffer
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	b := &Bar{w: &buf, tty: true, total: 10, now: func() time.Time { return now }}
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

// TestFirstUpdateRate checks that a bar created just before its first step
// is reported shows no rate yet rather than one step over a few
// microseconds, and a real rate from the second update on.
func TestFirstUpdateRate(t *testing.T) {
	var buf bytes.Buffer
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	b := &Bar{w: &buf, tty: true, label: "epoch 1/5", unit: "it", total: 100, now: func() time.Time { return now }}
	b.Update(1, "")
	if got := buf.String(); !strings.Contains(got, "1/100 ? it/s ETA ?") {
		t.Errorf("first update drew %q, want no rate yet", got)
	}
	buf.Reset()
	now = now.Add(2 * time.Second)
	b.Update(11, "") // 10 steps in 2 s
	if got := buf.String(); !strings.Contains(got, "11/100 5.0 it/s ETA 18s") {
		t.Errorf("second update drew %q, want 5.0 it/s", got)
	}
}

// TestPrintfErasesBar checks that a message written while a bar is drawn
// starts on a clean line, and that Printf leaves other writers alone.
func TestPrintfErasesBar(t *testing.T) {
	var buf bytes.Buffer
	b := &Bar{w: &buf, tty: true, label: "epoch 1/5", unit: "it", total: 10, now: time.Now}
	b.Update(3, "")
	Printf(&buf, "interrupt: stopping\n")
	want := "interrupt: stopping\n"
	got := buf.String()
	if !strings.HasSuffix(got, "\r\033[K"+want) {
		t.Errorf("wrote %q, want the bar erased before %q", got, want)
	}
	// Nothing drawn now: a second message is written as is.
	buf.Reset()
	Printf(&buf, "done\n")
	if buf.String() != "done\n" {
		t.Errorf("wrote %q with no bar drawn", buf.String())
	}
	b.Clear() // already erased: writes nothing
	if buf.String() != "done\n" {
		t.Errorf("Clear of an erased bar wrote %q", buf.String()[len("done\n"):])
	}
}
