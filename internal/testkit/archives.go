package testkit

import (
	"archive/zip"
	"bytes"
	"encoding/binary"
	"testing"
)

// Builders of the archive formats unimos imports (.npy, and the zip of .npz
// and .pth files), for
// tests that need well-formed, malformed or hostile files.

// NPY assembles a .npy file as NumPy lays it out: magic, version,
// header length (2 bytes in version 1, 4 from version 2), the header padded
// with spaces and a newline to a multiple of 64 bytes, then body.
func NPY(major byte, header string, body []byte) []byte {
	lenBytes := 2
	if major >= 2 {
		lenBytes = 4
	}
	prefix := 6 + 2 + lenBytes
	padded := header
	for (prefix+len(padded)+1)%64 != 0 {
		padded += " "
	}
	padded += "\n"
	out := append([]byte("\x93NUMPY"), major, 0)
	if lenBytes == 2 {
		out = binary.LittleEndian.AppendUint16(out, uint16(len(padded)))
	} else {
		out = binary.LittleEndian.AppendUint32(out, uint32(len(padded)))
	}
	out = append(out, padded...)
	return append(out, body...)
}

// NPYHeader formats a header dict as numpy.save does.
func NPYHeader(descr string, fortran bool, shape string) string {
	order := "False"
	if fortran {
		order = "True"
	}
	return "{'descr': '" + descr + "', 'fortran_order': " + order + ", 'shape': " + shape + ", }"
}

// ZipMember is one record of a hand-built zip archive.
type ZipMember struct {
	Name    string
	Data    []byte
	Deflate bool
}

// Zip returns a zip archive of members, in order, each stored or deflated
// as it says.
func Zip(t testing.TB, members ...ZipMember) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	for _, m := range members {
		method := zip.Store
		if m.Deflate {
			method = zip.Deflate
		}
		w, err := zw.CreateHeader(&zip.FileHeader{Name: m.Name, Method: method})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := w.Write(m.Data); err != nil {
			t.Fatal(err)
		}
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}
