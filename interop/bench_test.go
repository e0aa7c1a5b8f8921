package interop

import (
	"testing"

	"github.com/unimos/unimos/internal/testkit"
)

// A feature cache of the size of Office-Home's largest domain with RN50:
// [4096, 1024] float16 features and 4096 labels.
const benchRows, benchDim = 4096, 1024

func BenchmarkParsePTH(b *testing.B) {
	pkl := newPickle(2).raw('}', '(').
		str("fea").tensor("HalfStorage", "0", benchRows*benchDim, 0, []int{benchRows, benchDim}, []int{benchDim, 1}).
		str("label").tensor("LongStorage", "1", benchRows, 0, []int{benchRows}, []int{1}).
		raw('u').done()
	data := buildPTH(b, "cache", pkl, map[string][]byte{
		"0": make([]byte, 2*benchRows*benchDim),
		"1": make([]byte, 8*benchRows),
	}, "little")
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		if _, err := ParsePTH(data); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkParseNPYFortran(b *testing.B) {
	data := testkit.NPY(1, testkit.NPYHeader("<f2", true, "(4096, 1024)"), make([]byte, 2*benchRows*benchDim))
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		if _, err := ParseNPY(data); err != nil {
			b.Fatal(err)
		}
	}
}
