package clip

import (
	"encoding/binary"
	"math"
	"os"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/unimos/unimos/internal/shareddata"
)

// referenceDir is the folder of the reference PyTorch CLIP fixtures.
func referenceDir(t testing.TB) string {
	return shareddata.Dir(t, "clip_reference")
}

var npyShapePattern = regexp.MustCompile(`'shape':\s*\(([^)]*)\)`)

// readNpy reads a little-endian, C-order NumPy v1/v2 file and returns its dtype
// descriptor, shape and raw data.
func readNpy(t testing.TB, path string) (descr string, shape []int, data []byte) {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(raw) < 10 || string(raw[:6]) != "\x93NUMPY" {
		t.Fatalf("%s: not a .npy file", path)
	}
	var headerLen, start int
	switch raw[6] {
	case 1:
		headerLen, start = int(binary.LittleEndian.Uint16(raw[8:10])), 10
	default:
		headerLen, start = int(binary.LittleEndian.Uint32(raw[8:12])), 12
	}
	header := string(raw[start : start+headerLen])
	if strings.Contains(header, "'fortran_order': True") {
		t.Fatalf("%s: Fortran order not supported", path)
	}
	descr = regexp.MustCompile(`'descr':\s*'([^']*)'`).FindStringSubmatch(header)[1]
	for _, f := range strings.Split(npyShapePattern.FindStringSubmatch(header)[1], ",") {
		if f = strings.TrimSpace(f); f != "" {
			n, err := strconv.Atoi(f)
			if err != nil {
				t.Fatalf("%s: shape %q: %v", path, header, err)
			}
			shape = append(shape, n)
		}
	}
	return descr, shape, raw[start+headerLen:]
}

// readNpyFloat32 reads a '<f4' array.
func readNpyFloat32(t testing.TB, path string) ([]float32, []int) {
	t.Helper()
	descr, shape, data := readNpy(t, path)
	if descr != "<f4" {
		t.Fatalf("%s: dtype %s, want <f4", path, descr)
	}
	out := make([]float32, len(data)/4)
	for i := range out {
		out[i] = math.Float32frombits(binary.LittleEndian.Uint32(data[4*i:]))
	}
	return out, shape
}

// readNpyInt64 reads a '<i8' array.
func readNpyInt64(t testing.TB, path string) ([]int64, []int) {
	t.Helper()
	descr, shape, data := readNpy(t, path)
	if descr != "<i8" {
		t.Fatalf("%s: dtype %s, want <i8", path, descr)
	}
	out := make([]int64, len(data)/8)
	for i := range out {
		out[i] = int64(binary.LittleEndian.Uint64(data[8*i:]))
	}
	return out, shape
}
