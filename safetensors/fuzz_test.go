package safetensors

import (
	"bytes"
	"maps"
	"slices"
	"testing"
)

// FuzzRead checks that no input makes Parse or the conversions panic, and
// that whatever Parse accepts starts as IsSafetensors says and survives
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
		file, err := Parse("fuzz", data)
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
			tensor.Float32()
			tensor.Int64()
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
