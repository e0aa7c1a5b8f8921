package regularfile

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/unimos/unimos/internal/testkit"
)

func TestReadFile(t *testing.T) {
	dir := t.TempDir()
	regular := filepath.Join(dir, "regular.txt")
	if err := os.WriteFile(regular, []byte("hello\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	// Each case makes its file in dir and says what ReadFile must do.
	cases := []struct {
		name  string
		make  func(path string)
		limit int64
		want  string // "" for success, else a part of the error
		is    error  // the error must match, if any
	}{
		{"regular file", func(p string) { os.WriteFile(p, []byte("hello\n"), 0o644) }, 64, "", nil},
		{"symbolic link to a regular file", func(p string) { os.Symlink(regular, p) }, 64, "", nil},
		{"at the limit", func(p string) { os.WriteFile(p, []byte("hello\n"), 0o644) }, 6, "", nil},
		{"over the limit", func(p string) { os.WriteFile(p, []byte("hello\n"), 0o644) }, 5, "is 6 bytes, more than the 5 bytes that a test file may be", ErrTooLarge},
		{"missing", func(string) {}, 64, "no such file", fs.ErrNotExist},
		{"folder", func(p string) { os.Mkdir(p, 0o755) }, 64, "is a folder, not a test file", ErrNotRegular},
		{"named pipe", func(p string) { testkit.MakeFIFO(t, p) }, 64, "is a named pipe, not a test file", ErrNotRegular},
		{"link to /dev/zero", func(p string) { testkit.LinkToDevZero(t, p) }, 1 << 30, "is a character device, not a test file", ErrNotRegular},
	}
	for i, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			path := filepath.Join(dir, "case"+string(rune('a'+i)))
			c.make(path)
			var data []byte
			var err error
			testkit.Within(t, 5*time.Second, func() { data, err = ReadFile(path, "a test file", c.limit) })
			if c.want == "" {
				if err != nil || string(data) != "hello\n" {
					t.Fatalf("got %q, %v; want the content", data, err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), path) {
				t.Fatalf("got %v; want an error naming %s and saying %q", err, path, c.want)
			}
			if !errors.Is(err, c.is) {
				t.Errorf("error %v does not match %v", err, c.is)
			}
		})
	}
}

func TestSize(t *testing.T) {
	for n, want := range map[int64]string{
		0: "0 bytes", 1023: "1023 bytes", 1024: "1 KiB", 1536: "1.5 KiB",
		16 << 20: "16 MiB", 64 << 20: "64 MiB", 3 << 29: "1.5 GiB", 1 << 40: "1 TiB",
	} {
		if got := Size(n); got != want {
			t.Errorf("Size(%d) = %q, want %q", n, got, want)
		}
	}
}
