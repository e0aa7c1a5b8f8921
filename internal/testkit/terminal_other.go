//go:build !linux

package testkit

import (
	"os"
	"testing"
)

// Terminal is a pseudo-terminal for a command's output; see the Linux
// implementation.
type Terminal struct{ TTY *os.File }

// NewTerminal skips the test: the pseudo-terminals of this system are not
// supported.
func NewTerminal(t testing.TB) *Terminal {
	t.Helper()
	t.Skip("pseudo-terminals are opened on Linux only")
	return nil
}

// Output returns what was written to the terminal so far.
func (term *Terminal) Output() string { return "" }

// Close returns everything written to the terminal.
func (term *Terminal) Close() string { return "" }
