// Package progress draws a one-line progress bar on a terminal, with a rate
// and an estimate of the time left, and stays silent elsewhere, so logs and
// pipes get only the summary lines their callers print. Messages written
// while a bar is drawn go through Printf, which erases the bar first.
package progress

import (
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
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
	// The rate is measured from the first update on: a bar created just
	// before its first step is reported would otherwise divide that step by
	// a few microseconds.
	firstDone int
	first     time.Time
	drawn     time.Time
	now       func() time.Time
}

// onScreen maps each writer to the bar drawn on it, if any, so that Printf
// can erase it; mu also keeps a message from being written in the middle of
// a bar (the interrupt handler prints from its own goroutine).
var (
	mu       sync.Mutex
	onScreen = map[io.Writer]*Bar{}
)

// New returns a bar for total steps of unit (e.g. "it", "img") written to w.
// It draws only when w is a terminal.
func New(w io.Writer, label, unit string, total int) *Bar {
	f, ok := w.(*os.File)
	tty := ok && term.IsTerminal(int(f.Fd()))
	return &Bar{w: w, tty: tty, label: label, unit: unit, total: total, now: time.Now}
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
	if b.first.IsZero() {
		b.first, b.firstDone = now, done
	}
	if now.Sub(b.drawn) < redrawEvery && done < b.total {
		return
	}
	b.drawn = now
	mu.Lock()
	defer mu.Unlock()
	fmt.Fprintf(b.w, "\r\033[K%s", b.line(done, status, now))
	onScreen[b.w] = b
}

// line renders the bar: label, bar, count, rate, time left, status. The
// rate and time left are "?" until a step has been timed.
func (b *Bar) line(done int, status string, now time.Time) string {
	const width = 24
	frac := 0.0
	if b.total > 0 {
		frac = float64(min(done, b.total)) / float64(b.total)
	}
	filled := int(frac * width)
	rate, eta := "?", "?"
	if elapsed := now.Sub(b.first).Seconds(); elapsed > 0 && done > b.firstDone {
		r := float64(done-b.firstDone) / elapsed
		rate = fmt.Sprintf("%.1f", r)
		eta = time.Duration(float64(b.total-done) / r * float64(time.Second)).Round(time.Second).String()
	}
	return fmt.Sprintf("%s [%s%s] %d/%d %s %s/s ETA %s %s", b.label,
		strings.Repeat("=", filled), strings.Repeat(" ", width-filled), done, b.total, rate, b.unit, eta, status)
}

// Clear erases the bar, so that the caller's next line starts clean.
func (b *Bar) Clear() {
	mu.Lock()
	defer mu.Unlock()
	if onScreen[b.w] == b {
		erase(b.w)
	}
}

// erase clears the line of the bar drawn on w; mu is held.
func erase(w io.Writer) {
	fmt.Fprint(w, "\r\033[K")
	delete(onScreen, w)
}

// Printf writes a message to w after erasing the bar drawn there, if any,
// so that the message starts its own line; the bar comes back at its next
// update.
func Printf(w io.Writer, format string, args ...any) {
	mu.Lock()
	defer mu.Unlock()
	if _, drawn := onScreen[w]; drawn {
		erase(w)
	}
	fmt.Fprintf(w, format, args...)
}
