//go:build unix

package testkit

import (
	"syscall"
	"testing"
)

// MakeFIFO creates a named pipe at path, which blocks whoever opens it for
// reading until a writer comes; it skips the test where named pipes do
// not exist.
func MakeFIFO(t testing.TB, path string) {
	t.Helper()
	if err := syscall.Mkfifo(path, 0o644); err != nil {
		t.Fatalf("mkfifo %s: %v", path, err)
	}
}
