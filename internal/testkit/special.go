package testkit

import (
	"os"
	"testing"
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
