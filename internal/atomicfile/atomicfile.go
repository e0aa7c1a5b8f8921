// Package atomicfile writes files so that readers see either the old content
// or the complete new content, never a partial file.
package atomicfile

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
)

// Perm is the permission given to files written by Write. Temporary files are
// created 0600, so it is set explicitly before the rename.
const Perm os.FileMode = 0o644

// Write calls fill with a buffered writer on a temporary file in path's
// directory, then syncs it and renames it over path. On any error (including
// one returned by fill) the temporary file is removed and path is left as it
// was. A process killed mid-write cannot remove its temporary file; the next
// Write of the same path on the same machine does, once that process is gone.
func Write(path string, fill func(w io.Writer) error) (err error) {
	dir, base := filepath.Split(path)
	if dir == "" {
		dir = "."
	}
	removeAbandoned(dir, base)
	tmp, err := os.CreateTemp(dir, tempPrefix(base)+writer()+"-*")
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	defer func() {
		if err != nil {
			// Close may already have happened; a second close error is moot.
			err = errors.Join(err, ignoreClosed(tmp.Close()), os.Remove(tmp.Name()))
		}
	}()
	bw := bufio.NewWriterSize(tmp, 1<<20)
	if err = fill(bw); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err = bw.Flush(); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	// Sync before rename so that a crash cannot leave an empty file under the
	// final name.
	if err = tmp.Sync(); err != nil {
		return fmt.Errorf("write %s: sync: %w", path, err)
	}
	if err = tmp.Chmod(Perm); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err = tmp.Close(); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err = os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}

// ignoreClosed drops the error of closing an already closed file.
func ignoreClosed(err error) error {
	if errors.Is(err, os.ErrClosed) {
		return nil
	}
	return err
}

// Temporary names are "." + base + ".tmp-" + pid "@" host + "-" + random: a
// hidden file that no reader takes for a result, named after the process
// that writes it so that a later writer can tell when it was abandoned.

// tempPrefix starts the temporary names of the writes of base.
func tempPrefix(base string) string { return "." + base + ".tmp-" }

// IsTemporary reports whether a file name is one of Write's temporary names.
func IsTemporary(name string) bool {
	return strings.HasPrefix(name, ".") && strings.Contains(name, ".tmp-")
}

// writer returns "pid@host" for this process.
var writer = sync.OnceValue(func() string {
	return strconv.Itoa(os.Getpid()) + "@" + hostname()
})

// hostname returns the machine's name with anything but letters, digits,
// dots and dashes replaced, so that it fits in a file name.
func hostname() string {
	host, err := os.Hostname()
	if err != nil || host == "" {
		return "unknown"
	}
	return strings.Map(func(r rune) rune {
		if r == '.' || r == '-' || r >= '0' && r <= '9' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' {
			return r
		}
		return '_'
	}, host)
}

// removeAbandoned deletes the temporary files of base in dir whose writer
// ran on this machine and no longer exists. Files of other machines (a
// shared folder), of live processes, or of unknown form are left alone;
// failing to delete one is not an error of the write.
func removeAbandoned(dir, base string) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return
	}
	prefix, me, host := tempPrefix(base), writer(), hostname()
	for _, e := range entries {
		owner, ok := strings.CutPrefix(e.Name(), prefix)
		if !ok {
			continue
		}
		owner = owner[:max(strings.LastIndexByte(owner, '-'), 0)]
		pidText, ownerHost, ok := strings.Cut(owner, "@")
		pid, err := strconv.Atoi(pidText)
		if !ok || err != nil || ownerHost != host || owner == me || processExists(pid) {
			continue
		}
		os.Remove(filepath.Join(dir, e.Name()))
	}
}
