package unimos

import (
	"slices"
	"testing"

	"github.com/unimos/unimos/nn"
)

// TestBatchStreamPasses walks three passes in batches of 32: 70 rows are cut
// 32, 32, 6 and 65 rows 32, 32 (the single leftover row is dropped); no row
// repeats within a pass.
func TestBatchStreamPasses(t *testing.T) {
	for _, c := range []struct {
		n     int
		sizes []int
	}{
		{70, []int{32, 32, 6}},
		{65, []int{32, 32}},
		{64, []int{32, 32}},
		{66, []int{32, 32, 2}},
		{5, []int{5}},
	} {
		s := newBatchStream(c.n, 32, nn.NewRNG(1, 2))
		for pass := 0; pass < 3; pass++ {
			var seen []int
			for _, want := range c.sizes {
				b := s.Next()
				if len(b) != want {
					t.Fatalf("n=%d pass %d: batch of %d, want sizes %v", c.n, pass, len(b), c.sizes)
				}
				seen = append(seen, b...)
			}
			slices.Sort(seen)
			if len(slices.Compact(seen)) != len(seen) || seen[0] < 0 || seen[len(seen)-1] >= c.n {
				t.Fatalf("n=%d pass %d: rows %v repeat or leave [0, n)", c.n, pass, seen)
			}
		}
	}
}

func TestBatchStreamReshuffles(t *testing.T) {
	s := newBatchStream(64, 64, nn.NewRNG(3, 4))
	first := slices.Clone(s.Next())
	second := s.Next()
	if slices.Equal(first, second) {
		t.Error("two passes came out in the same order")
	}
}

func TestIterationsPerEpoch(t *testing.T) {
	// Office-Home Ar→Cl: min(75, 136) = 75, as method.md section 4 works out.
	if got := iterationsPerEpoch(2427, 4365, 32, 1500); got != 75 {
		t.Errorf("Ar→Cl: %d iterations, want 75", got)
	}
	if got := iterationsPerEpoch(152397, 55388, 32, 1500); got != 1500 {
		t.Errorf("VisDA: %d iterations, want the 1500 cap", got)
	}
}

// TestNextAfterFollowsTheStream draws from real streams and requires
// nextAfter to predict the position after every draw, across passes, for
// row counts that divide evenly, leave one row over and leave several.
func TestNextAfterFollowsTheStream(t *testing.T) {
	for _, c := range []struct{ n, b int }{{70, 32}, {65, 32}, {64, 32}, {66, 32}, {5, 32}, {2, 2}, {1, 4}, {100, 7}} {
		s := newBatchStream(c.n, c.b, nn.NewRNG(3, 4))
		for draws := 0; draws < 40; draws++ {
			if got := nextAfter(c.n, c.b, draws); got != s.next {
				t.Fatalf("n=%d b=%d after %d draws: nextAfter %d, stream at %d", c.n, c.b, draws, got, s.next)
			}
			s.Next()
		}
	}
}
