package main

import (
	gocontext "context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

// interruptible returns a context cancelled by the first SIGINT or SIGTERM,
// after which the signal's default action (exit at once) is restored, and
// a function that releases the signal handler. The message written to w
// says that the command stops after its current step keeping kept.
func interruptible(w io.Writer, kept string) (gocontext.Context, func()) {
	ctx, cancel := gocontext.WithCancel(gocontext.Background())
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, os.Interrupt, syscall.SIGTERM)
	released := make(chan struct{})
	go func() {
		select {
		case s := <-sig:
			signal.Stop(sig)
			fmt.Fprintf(w, "\n%v: stopping after the current step and keeping %s (repeat to quit at once)\n", s, kept)
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
