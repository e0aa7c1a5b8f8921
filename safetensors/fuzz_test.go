package safetensors

import (
	"bytes"
	"maps"
	"slices"
	"testing"

	"github.com/unimos/unimos/internal/testkit"
)

// FuzzRead checks that no input makes Parse or the conversions panic or
// allocate beyond a budget proportional to the input, and that whatever
// Parse accepts starts as IsSafetensors says and survives
// Write and Parse again unchanged.
func FuzzRead(f *testing.F) {
	f.Add(handMadeFile())
	for _, c := range malformedCases() {
		f.Add(c.data)
	}
	var buf bytes.Buffer
	h, _ := FromFloat32("h", F16, []int{2, 2}, []float32{1, -0.5, 65504, 1e-7})
	i32, _ := FromInt64("i", I32, []int{3}, []int64{-1, 2, 3})
	bf, _ := FromFloat32("bf", BF16, []int{1}, []float32{3})
	if err := Write(&buf, []*Tensor{h, i32, bf}, map[string]string{"m": "v"}); err != nil {
		f.Fatal(err)
	}
	f.Add(buf.Bytes())

	f.Fuzz(func(t *testing.T, data []byte) {
		var file *File
		var err error
		used := testkit.Allocated(func() { file, err = Parse("fuzz", data) })
		// Parse takes the header's values (a few Go values per entry of its
		// JSON) and aliases the data: memory beyond that would be spent on
		// what the file only claims to hold.
		if budget := 64*uint64(len(data)) + 256<<10; used > budget {
			t.Fatalf("Parse allocated %d bytes for %d input bytes, over the budget of %d", used, len(data), budget)
		}
		if err != nil {
			return
		}
		if !IsSafetensors(data[:min(len(data), HeadLen)]) {
			t.Fatalf("Parse accepted a file that IsSafetensors does not recognise: % x", data[:min(len(data), HeadLen)])
		}
		var tensors []*Tensor
		for _, name := range file.Names() {
			tensor, err := file.Tensor(name)
			if err != nil {
				t.Fatal(err)
			}
			used := testkit.Allocated(func() {
				tensor.Float32()
				tensor.Int64()
			})
			// At most a float32 and an int64 for each element, of a byte or more.
			if budget := 12*uint64(len(tensor.Data)) + 4<<10; used > budget {
				t.Fatalf("converting tensor %q of %d bytes allocated %d bytes, over the budget of %d", name, len(tensor.Data), used, budget)
			}
			tensors = append(tensors, tensor)
		}
		var out bytes.Buffer
		if err := Write(&out, tensors, file.Metadata()); err != nil {
			t.Fatalf("rewriting a parsed file: %v", err)
		}
		again, err := Parse("rewritten", out.Bytes())
		if err != nil {
			t.Fatalf("reparsing a rewritten file: %v", err)
		}
		if !slices.Equal(again.Names(), file.Names()) || !maps.Equal(again.Metadata(), file.Metadata()) {
			t.Fatalf("names or metadata changed: %v %v -> %v %v", file.Names(), file.Metadata(), again.Names(), again.Metadata())
		}
		for _, want := range tensors {
			got, _ := again.Tensor(want.Name)
			if got.DType != want.DType || !slices.Equal(got.Shape, want.Shape) || !bytes.Equal(got.Data, want.Data) {
				t.Fatalf("tensor %q changed", want.Name)
			}
		}
	})
}
