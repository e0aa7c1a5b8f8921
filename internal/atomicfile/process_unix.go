//go:build unix

package atomicfile

import (
	"errors"
	"syscall"
)

// processExists reports whether a process with this id runs on this
// machine: signal 0 checks without sending anything, and EPERM means it
// exists under another user.
func processExists(pid int) bool {
	if pid <= 0 {
		return true // not a process id: never treat the file as abandoned
	}
	err := syscall.Kill(pid, 0)
	return err == nil || errors.Is(err, syscall.EPERM)
}
