package main

import (
	gocontext "context"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/unimos/unimos/internal/progress"
)

// signalName names a stop signal as a user knows it.
func signalName(s os.Signal) string {
	switch s {
	case os.Interrupt:
		return "Ctrl-C"
	case syscall.SIGTERM:
		return "SIGTERM"
	}
	return s.String()
}

// interruptible returns a context cancelled by the first SIGINT or SIGTERM,
// after which the signal's default action (exit at once) is restored, and
// a function that releases the signal handler. The message written to w
// says that the command stops after its current step keeping kept; it
// erases a progress bar drawn on w first.
func interruptible(w io.Writer, kept string) (gocontext.Context, func()) {
	ctx, cancel := gocontext.WithCancel(gocontext.Background())
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, os.Interrupt, syscall.SIGTERM)
	released := make(chan struct{})
	go func() {
		select {
		case s := <-sig:
			signal.Stop(sig)
			progress.Printf(w, "%s: stopping after the current step and keeping %s (repeat to quit at once)\n", signalName(s), kept)
			cancel()
		case <-released:
		}
	}()
	return ctx, func() {
		signal.Stop(sig)
		close(released)
		cancel()
	}
}
