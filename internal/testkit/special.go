package testkit

import (
	"os"
	"path/filepath"
	"strings"
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

// RefusesSpecialFiles replaces the file at path with each kind of special
// file in turn, a named pipe (which blocks whoever opens it for reading)
// and a link to /dev/zero (which never ends), and fails unless read
// returns within 5 seconds an error naming path and saying what it is.
func RefusesSpecialFiles(t *testing.T, path string, read func() error) {
	t.Helper()
	for _, s := range []struct {
		name string
		make func(testing.TB, string)
		says string
	}{
		{"named pipe", MakeFIFO, "is a named pipe, not a"},
		{"/dev/zero", LinkToDevZero, "is a character device, not a"},
	} {
		t.Run(filepath.Base(path)+" as "+s.name, func(t *testing.T) {
			if err := os.RemoveAll(path); err != nil {
				t.Fatal(err)
			}
			if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
				t.Fatal(err)
			}
			s.make(t, path)
			var err error
			Within(t, 5*time.Second, func() { err = read() })
			if err == nil || !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), s.says) {
				t.Errorf("%s as %s: got %v, want an error naming it and saying %q", s.name, path, err, s.says)
			}
		})
	}
}
