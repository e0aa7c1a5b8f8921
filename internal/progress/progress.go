// Package progress draws a one-line progress bar on a terminal, with a rate
// and an estimate of the time left, and stays silent elsewhere, so logs and
// pipes get only the summary lines their callers print.
package progress

import (
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"golang.org/x/term"
)

// Bar is a progress bar over a known number of steps.
type Bar struct {
	w     io.Writer
	tty   bool
	label string
	unit  string
	total int
	start time.Time
	drawn time.Time
	now   func() time.Time
}

// New returns a bar for total steps of unit (e.g. "it", "img") written to w.
// It draws only when w is a terminal.
func New(w io.Writer, label, unit string, total int) *Bar {
	f, ok := w.(*os.File)
	tty := ok && term.IsTerminal(int(f.Fd()))
	return &Bar{w: w, tty: tty, label: label, unit: unit, total: total, start: time.Now(), now: time.Now}
}

// redrawEvery limits redraws, so that a fast loop does not spend its time
// writing to the terminal.
const redrawEvery = 100 * time.Millisecond

// Update shows done of total steps and a short status (e.g. the loss).
func (b *Bar) Update(done int, status string) {
	if !b.tty {
		return
	}
	now := b.now()
	if now.Sub(b.drawn) < redrawEvery && done < b.total {
		return
	}
	b.drawn = now
	fmt.Fprintf(b.w, "\r\033[K%s", b.line(done, status, now))
}

// line renders the bar: label, bar, count, rate, time left, status.
func (b *Bar) line(done int, status string, now time.Time) string {
	const width = 24
	frac := 0.0
	if b.total > 0 {
		frac = float64(min(done, b.total)) / float64(b.total)
	}
	filled := int(frac * width)
	elapsed := now.Sub(b.start).Seconds()
	rate, eta := 0.0, "?"
	if elapsed > 0 && done > 0 {
		rate = float64(done) / elapsed
		eta = (time.Duration(float64(b.total-done)/rate) * time.Second).Round(time.Second).String()
	}
	return fmt.Sprintf("%s [%s%s] %d/%d %.1f %s/s ETA %s %s", b.label,
		strings.Repeat("=", filled), strings.Repeat(" ", width-filled), done, b.total, rate, b.unit, eta, status)
}

// Clear erases the bar, so that the caller's next line starts clean.
func (b *Bar) Clear() {
	if b.tty {
		fmt.Fprint(b.w, "\r\033[K")
	}
}
