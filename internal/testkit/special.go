package testkit

import (
	"os"
	"testing"
	"time"
)

// LinkToDevZero makes path a symbolic link to /dev/zero, a file that never
// ends, or skips the test where there is none.
func LinkToDevZero(t testing.TB, path string) {
	t.Helper()
	if _, err := os.Stat("/dev/zero"); err != nil {
		t.Skip("no /dev/zero on this system")
	}
	if err := os.Symlink("/dev/zero", path); err != nil {
		t.Skipf("cannot make a symbolic link: %v", err)
	}
}

// Within runs f and fails the test if it has not returned after limit: a
// reader that opens a named pipe blocks for ever, and the test should say
// so rather than hang until the test binary's timeout. f keeps running in
// the background after a failure.
func Within(t testing.TB, limit time.Duration, f func()) {
	t.Helper()
	done := make(chan struct{})
	go func() {
		defer close(done)
		f()
	}()
	select {
	case <-done:
	case <-time.After(limit):
		t.Fatalf("did not return within %v (blocked opening a named pipe, or reading a file that never ends?)", limit)
	}
}
