// Package regularfile opens the files that commands read, refusing what is
// not a regular file before opening it: a named pipe blocks its reader
// until a writer comes (a command hangs), a device such as /dev/zero never
// ends (a command reading it whole runs out of memory), and a folder is not
// data. A symbolic link to a regular file is fine. Files read whole are
// also capped in size, so that a wrong file gets a clear error rather than
// all the memory.
//
// Errors are *fs.PathError values ("open PATH: is a named pipe, not an
// image file"), like those of package os, so that errors.Is(err,
// fs.ErrNotExist) keeps working and the reason unwraps without the path.
package regularfile

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
)

// ErrNotRegular is matched (errors.Is) by the errors for a path that is not
// a regular file.
var ErrNotRegular = errors.New("not a regular file")

// ErrTooLarge is matched (errors.Is) by ReadFile's error for a file over its
// size limit.
var ErrTooLarge = errors.New("file too large")

// notRegularError says what a path is instead of what was wanted.
type notRegularError struct {
	kind string // "a named pipe"
	want string // "an image file"
}

func (e *notRegularError) Error() string     { return "is " + e.kind + ", not " + e.want }
func (e *notRegularError) Is(err error) bool { return err == ErrNotRegular }

// tooLargeError is ReadFile's error for a file over its limit.
type tooLargeError struct {
	size, limit int64
	want        string
}

func (e *tooLargeError) Error() string {
	return fmt.Sprintf("is %s, more than the %s that %s may be; is it the right file?", Size(e.size), Size(e.limit), e.want)
}
func (e *tooLargeError) Is(err error) bool { return err == ErrTooLarge }

// kind names the type of file mode m for messages.
func kind(m fs.FileMode) string {
	switch {
	case m.IsDir():
		return "a folder"
	case m&fs.ModeNamedPipe != 0:
		return "a named pipe"
	case m&fs.ModeSocket != 0:
		return "a socket"
	case m&fs.ModeCharDevice != 0:
		return "a character device"
	case m&fs.ModeDevice != 0:
		return "a block device"
	}
	return "not a regular file (mode " + m.String() + ")"
}

// Check returns the file information of path, following symbolic links,
// or an error when path is not a regular file; want describes what the
// caller expected ("an image file") for the message. It opens nothing.
func Check(path, want string) (fs.FileInfo, error) {
	st, err := os.Stat(path)
	if err != nil {
		// Worded as os.Open would: the caller is opening the file.
		var pathErr *fs.PathError
		if errors.As(err, &pathErr) {
			pathErr.Op = "open"
		}
		return nil, err
	}
	if !st.Mode().IsRegular() {
		return nil, &fs.PathError{Op: "open", Path: path, Err: &notRegularError{kind(st.Mode()), want}}
	}
	return st, nil
}

// Open opens path for reading once Check accepts it, and checks the opened
// file again (the path may have been replaced in between). The caller
// closes the file.
func Open(path, want string) (*os.File, fs.FileInfo, error) {
	if _, err := Check(path, want); err != nil {
		return nil, nil, err
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, nil, err
	}
	st, err := f.Stat()
	if err == nil && !st.Mode().IsRegular() {
		err = &fs.PathError{Op: "open", Path: path, Err: &notRegularError{kind(st.Mode()), want}}
	}
	if err != nil {
		f.Close()
		return nil, nil, err
	}
	return f, st, nil
}

// ReadFile reads the regular file at path whole, refusing one larger than
// limit bytes. The limit is checked against the size the file system
// reports before reading and against the bytes read, for files whose size
// is not known in advance.
func ReadFile(path, want string, limit int64) ([]byte, error) {
	f, st, err := Open(path, want)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	if st.Size() > limit {
		return nil, &fs.PathError{Op: "read", Path: path, Err: &tooLargeError{st.Size(), limit, want}}
	}
	data := make([]byte, 0, st.Size()+1) // +1: io.ReadAll's EOF check needs no new buffer
	data, err = readAll(io.LimitReader(f, limit+1), data)
	if err != nil {
		return nil, &fs.PathError{Op: "read", Path: path, Err: err}
	}
	if int64(len(data)) > limit {
		return nil, &fs.PathError{Op: "read", Path: path, Err: &tooLargeError{int64(len(data)), limit, want}}
	}
	return data, nil
}

// readAll appends what r holds to buf, growing it as io.ReadAll does.
func readAll(r io.Reader, buf []byte) ([]byte, error) {
	for {
		if len(buf) == cap(buf) {
			buf = append(buf, 0)[:len(buf)]
		}
		n, err := r.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		if err == io.EOF {
			return buf, nil
		}
		if err != nil {
			return buf, err
		}
	}
}

// Size formats a byte count for messages: "512 bytes", "16 MiB", "1.5 GiB".
func Size(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d bytes", n)
	}
	v, suffix := float64(n)/unit, "KiB"
	for _, s := range []string{"MiB", "GiB", "TiB"} {
		if v < unit {
			break
		}
		v, suffix = v/unit, s
	}
	if v == float64(int64(v)) {
		return fmt.Sprintf("%d %s", int64(v), suffix)
	}
	return fmt.Sprintf("%.1f %s", v, suffix)
}
