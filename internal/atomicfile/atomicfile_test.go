package atomicfile

import (
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// names lists the entries of dir.
func names(t *testing.T, dir string) []string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range entries {
		out = append(out, e.Name())
	}
	return out
}

func TestWriteCreatesAndReplaces(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "f.txt")
	for _, content := range []string{"first", "second, longer"} {
		err := Write(path, func(w io.Writer) error {
			_, err := io.WriteString(w, content)
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		got, _ := os.ReadFile(path)
		if string(got) != content {
			t.Errorf("content %q, want %q", got, content)
		}
	}
	if got := names(t, dir); !slices.Equal(got, []string{"f.txt"}) {
		t.Errorf("directory holds %q, want only f.txt", got)
	}
	if st, _ := os.Stat(path); st.Mode().Perm() != Perm {
		t.Errorf("mode %v, want %v", st.Mode().Perm(), Perm)
	}
}

// TestWriteFailingFillKeepsOld injects a failure after part of the content
// was written: the old file must survive and no temporary file remain.
func TestWriteFailingFillKeepsOld(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "f.txt")
	if err := os.WriteFile(path, []byte("old"), 0o644); err != nil {
		t.Fatal(err)
	}
	boom := errors.New("boom")
	err := Write(path, func(w io.Writer) error {
		w.Write(make([]byte, 3<<20)) // past the buffer, so bytes reach the temp file
		return boom
	})
	if !errors.Is(err, boom) {
		t.Fatalf("error %v, want boom", err)
	}
	if got, _ := os.ReadFile(path); string(got) != "old" {
		t.Errorf("old file changed to %d bytes", len(got))
	}
	if got := names(t, dir); !slices.Equal(got, []string{"f.txt"}) {
		t.Errorf("directory holds %q, want only f.txt", got)
	}
}

func TestWriteFailingFillNoFile(t *testing.T) {
	dir := t.TempDir()
	err := Write(filepath.Join(dir, "new.txt"), func(io.Writer) error { return errors.New("no") })
	if err == nil {
		t.Fatal("no error")
	}
	if got := names(t, dir); len(got) != 0 {
		t.Errorf("directory holds %q, want nothing", got)
	}
}

func TestWriteMissingDirectory(t *testing.T) {
	err := Write(filepath.Join(t.TempDir(), "absent", "f.txt"), func(io.Writer) error { return nil })
	if !errors.Is(err, os.ErrNotExist) {
		t.Errorf("error %v, want ErrNotExist", err)
	}
}

// TestWriteRenameFails makes the last step fail: the target is a non-empty
// directory, which rename cannot replace.
func TestWriteRenameFails(t *testing.T) {
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, "f.txt", "x"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := Write(filepath.Join(dir, "f.txt"), func(io.Writer) error { return nil }); err == nil {
		t.Fatal("rename over a directory succeeded")
	}
	if got := names(t, dir); !slices.Equal(got, []string{"f.txt"}) {
		t.Errorf("directory holds %q, want only f.txt", got)
	}
}

// TestWriteReadOnlyDirectory needs an unprivileged user: root ignores the
// permission bits.
func TestWriteReadOnlyDirectory(t *testing.T) {
	if os.Geteuid() == 0 {
		t.Skip("running as root, which can write into read-only directories")
	}
	dir := t.TempDir()
	if err := os.Chmod(dir, 0o555); err != nil {
		t.Fatal(err)
	}
	defer os.Chmod(dir, 0o755)
	if err := Write(filepath.Join(dir, "f.txt"), func(io.Writer) error { return nil }); err == nil {
		t.Fatal("write into a read-only directory succeeded")
	}
	if got := names(t, dir); len(got) != 0 {
		t.Errorf("directory holds %q", got)
	}
}

// exitedPID returns the id of a process that has run and exited.
func exitedPID(t *testing.T) int {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	if err := cmd.Run(); err != nil {
		t.Fatal(err)
	}
	return cmd.Process.Pid
}

// TestWriteRemovesAbandoned leaves the temporary files that killed writers
// would, and checks that a Write of the same path removes exactly those of
// this machine whose process has exited.
func TestWriteRemovesAbandoned(t *testing.T) {
	dir := t.TempDir()
	dead, live, host := exitedPID(t), os.Getppid(), hostname()
	abandoned := fmt.Sprintf(".f.txt.tmp-%d@%s-123", dead, host)
	kept := []string{
		fmt.Sprintf(".f.txt.tmp-%d@%s-124", live, host),          // its writer still runs
		fmt.Sprintf(".f.txt.tmp-%d@elsewhere.example-125", dead), // another machine's
		".f.txt.tmp-126", // no writer named
		fmt.Sprintf(".g.txt.tmp-%d@%s-127", dead, host), // another file's
	}
	for _, name := range append([]string{abandoned}, kept...) {
		if err := os.WriteFile(filepath.Join(dir, name), []byte("partial"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	var during []string
	err := Write(filepath.Join(dir, "f.txt"), func(w io.Writer) error {
		during = names(t, dir)
		_, err := io.WriteString(w, "done")
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	want := append(slices.Clone(kept), "f.txt")
	slices.Sort(want)
	if got := names(t, dir); !slices.Equal(got, want) {
		t.Errorf("directory holds %q, want %q", got, want)
	}
	// While it writes, its own temporary file is named after this process.
	mine := fmt.Sprintf(".f.txt.tmp-%d@%s-", os.Getpid(), host)
	if !slices.ContainsFunc(during, func(n string) bool { return strings.HasPrefix(n, mine) && IsTemporary(n) }) {
		t.Errorf("during the write the directory held %q, with no %s*", during, mine)
	}
}
