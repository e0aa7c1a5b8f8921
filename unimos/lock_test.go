package unimos

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

// TestLockRunDirExcludes has goroutines race for one run directory's lock
// and requires exactly one to win each round; the others are told the
// directory is in use, by this process's id. Released, the lock file is
// gone and the directory can be locked again.
func TestLockRunDirExcludes(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "run")
	for round := range 3 {
		var wg sync.WaitGroup
		locks := make([]*RunLock, 8)
		errs := make([]error, 8)
		for i := range locks {
			wg.Go(func() { locks[i], errs[i] = LockRunDir(dir) })
		}
		wg.Wait()
		var held *RunLock
		for i, l := range locks {
			switch {
			case l != nil && held != nil:
				t.Fatalf("round %d: two goroutines hold the lock", round)
			case l != nil:
				held = l
			case !strings.Contains(errs[i].Error(), fmt.Sprintf("%s is in use by another unimos adapt or bench (pid ", dir)):
				t.Errorf("round %d: %v", round, errs[i])
			}
		}
		if held == nil {
			t.Fatalf("round %d: no goroutine got the lock: %v", round, errs)
		}
		if _, err := LockRunDir(dir); err == nil || !strings.Contains(err.Error(), fmt.Sprintf("(pid %d)", os.Getpid())) {
			t.Errorf("round %d: a second lock: %v, want one naming pid %d", round, err, os.Getpid())
		}
		if err := held.Release(); err != nil {
			t.Fatal(err)
		}
		if _, err := os.Stat(filepath.Join(dir, LockFile)); !os.IsNotExist(err) {
			t.Errorf("round %d: the lock file is still there after release: %v", round, err)
		}
	}
}

// TestLockRunDirRemovesWhatItCreated requires a directory that LockRunDir
// created to be gone after Release when nothing was written into it, and
// to stay when something was, as a directory that existed before does.
func TestLockRunDirRemovesWhatItCreated(t *testing.T) {
	root := t.TempDir()
	for _, c := range []struct {
		name          string
		existed, used bool
		stays         bool
	}{
		{"created, unused", false, false, false},
		{"created, used", false, true, true},
		{"existed, unused", true, false, true},
	} {
		dir := filepath.Join(root, strings.ReplaceAll(c.name, ", ", "-"))
		if c.existed {
			if err := os.Mkdir(dir, 0o755); err != nil {
				t.Fatal(err)
			}
		}
		l, err := LockRunDir(dir)
		if err != nil {
			t.Fatal(err)
		}
		if c.used {
			if err := os.WriteFile(filepath.Join(dir, ResultFile), []byte("{}"), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		if err := l.Release(); err != nil {
			t.Fatal(err)
		}
		if _, err := os.Stat(dir); (err == nil) != c.stays {
			t.Errorf("%s: after Release, stat %v; want the directory kept: %v", c.name, err, c.stays)
		}
	}
}
