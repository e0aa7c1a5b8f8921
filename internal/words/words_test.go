package words

import "testing"

func TestCount(t *testing.T) {
	for _, c := range []struct {
		n    int
		noun string
		want string
	}{
		{0, "image", "0 images"},
		{1, "image", "1 image"},
		{2, "image", "2 images"},
		{1, "class", "1 class"},
		{65, "class", "65 classes"},
		{3, "entry", "3 entries"},
		{2, "day", "2 days"},
		{1, "domain", "1 domain"},
		{4, "batch", "4 batches"},
		{2, "class folder", "2 class folders"},
		{-1, "epoch", "-1 epochs"},
	} {
		if got := Count(c.n, c.noun); got != c.want {
			t.Errorf("Count(%d, %q) = %q, want %q", c.n, c.noun, got, c.want)
		}
	}
}

func TestAgree(t *testing.T) {
	for _, c := range []struct {
		n    int
		want string
	}{
		{0, "they"}, {1, "it"}, {2, "they"}, {-1, "they"},
	} {
		if got := Agree(c.n, "it", "they"); got != c.want {
			t.Errorf("Agree(%d, \"it\", \"they\") = %q, want %q", c.n, got, c.want)
		}
	}
}
