//go:build !unix

package testkit

import "testing"

// MakeFIFO creates a named pipe at path; it skips the test where named
// pipes do not exist.
func MakeFIFO(t testing.TB, path string) {
	t.Helper()
	t.Skip("no named pipes on this system")
}
