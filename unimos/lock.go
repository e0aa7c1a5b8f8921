package unimos

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// LockFile is the file in a run directory whose lock marks the directory
// as in use by a run; it holds the running process's id and is removed
// when the run ends.
const LockFile = ".lock"

// RunLock is a held lock on a run directory: while one process (or one
// AdaptStore in this process) holds it, no other can train into the
// directory, so that two runs never mix their checkpoints and results.
type RunLock struct {
	dir     string
	file    *os.File
	created bool // dir did not exist before LockRunDir
}

// errLocked is what tryLock returns when another holder has the lock.
var errLocked = errors.New("locked")

// LockRunDir creates dir if needed and locks it for a run, or fails with an
// error naming the process that holds it. Release the lock when the run
// ends; the operating system releases it too when the process exits, so
// a killed run never leaves its directory locked. A directory that
// LockRunDir created and that is still empty at Release is removed: a
// command that fails before writing anything leaves nothing behind. Where the operating
// system has no file locks (not Linux, macOS or a BSD), it locks nothing.
func LockRunDir(dir string) (*RunLock, error) {
	_, statErr := os.Stat(dir)
	created := errors.Is(statErr, os.ErrNotExist)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("creating the run directory: %w", err)
	}
	path := filepath.Join(dir, LockFile)
	for {
		f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
		if err != nil {
			return nil, fmt.Errorf("locking the run directory: %w", err)
		}
		if err := tryLock(f); err != nil {
			holder := readHolder(f)
			f.Close()
			if errors.Is(err, errLocked) {
				return nil, fmt.Errorf("%s is in use by another unimos adapt or bench (pid %s): wait for it to end, or choose another --out", dir, holder)
			}
			return nil, fmt.Errorf("locking the run directory: %s: %w", path, err)
		}
		// The previous holder removes the file as it releases it: when
		// that happened between our open and our lock, we hold a file that
		// no other process will find, so open the new one instead.
		if opened, err := f.Stat(); err == nil {
			if named, err := os.Stat(path); err == nil && os.SameFile(opened, named) {
				l := &RunLock{dir: dir, file: f, created: created}
				if err := l.recordHolder(); err != nil {
					l.Release()
					return nil, fmt.Errorf("locking the run directory: %s: %w", path, err)
				}
				return l, nil
			}
		}
		f.Close()
	}
}

// recordHolder writes this process's id into the lock file, for the
// message of whoever finds the directory in use.
func (l *RunLock) recordHolder() error {
	if err := l.file.Truncate(0); err != nil {
		return err
	}
	_, err := l.file.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0)
	return err
}

// readHolder returns the process id recorded in a lock file, or "unknown"
// when the holder has not written it yet.
func readHolder(f *os.File) string {
	buf := make([]byte, 32)
	n, _ := f.ReadAt(buf, 0)
	if pid := strings.TrimSpace(string(buf[:n])); pid != "" {
		return pid
	}
	return "unknown"
}

// Dir is the locked run directory.
func (l *RunLock) Dir() string { return l.dir }

// Release removes the lock file and releases the lock, and removes the
// directory when LockRunDir created it and nothing was written into it.
// The file is removed while still locked, so that no other process can
// lock it in the moment before it disappears (LockRunDir checks for that).
func (l *RunLock) Release() error {
	if l == nil || l.file == nil {
		return nil
	}
	removeErr := os.Remove(l.file.Name())
	closeErr := l.file.Close()
	l.file = nil
	if errors.Is(removeErr, os.ErrNotExist) {
		removeErr = nil
	}
	if l.created {
		os.Remove(l.dir) // fails, as it should, unless the directory is empty
	}
	return errors.Join(removeErr, closeErr)
}
