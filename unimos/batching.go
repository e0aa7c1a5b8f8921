package unimos

import "github.com/unimos/unimos/nn"

// batchStream yields mini-batches of row indices the way the reference
// code's index_generator does: each pass over [0, n) is a fresh shuffle cut
// into batches of size b; a final batch of one row is dropped (BatchNorm
// cannot normalise a single row) and a final partial batch of two or more is
// kept; a new pass starts when the old one is exhausted. The stream persists
// across epochs, so an epoch may begin in the middle of a pass.
type batchStream struct {
	n, b int
	rng  *nn.RNG
	perm []int // the current pass's order
	next int   // position in perm of the next batch
}

func newBatchStream(n, b int, rng *nn.RNG) *batchStream {
	return &batchStream{n: n, b: b, rng: rng, next: n}
}

// Next returns the next batch. The slice is valid until the following call.
func (s *batchStream) Next() []int {
	if s.n-s.next < 2 {
		s.perm = s.rng.Perm(s.n)
		s.next = 0
	}
	end := min(s.next+s.b, s.n)
	batch := s.perm[s.next:end]
	s.next = end
	return batch
}

// iterationsPerEpoch is the reference's epoch length:
// min(⌊Ns/B⌋, ⌊Nt/B⌋, cap).
func iterationsPerEpoch(sourceRows, targetRows, batch, cap int) int {
	return min(sourceRows/batch, targetRows/batch, cap)
}

// nextAfter is the position next holds after `draws` batches of a fresh
// stream over n rows in batches of b >= 1: n before the first draw
// (no pass shuffled yet), then the end of the last batch drawn within its
// pass. A pass yields ⌊n/b⌋ batches, and one more when at least two rows
// are left over. A checkpoint's positions must equal it for its iteration
// count: anything else was not written by a trainer.
func nextAfter(n, b, draws int) int {
	if draws == 0 {
		return n
	}
	perPass := n / b
	if n%b >= 2 {
		perPass++
	}
	perPass = max(perPass, 1) // fewer than two rows: every draw starts a pass
	drawnThisPass := (draws-1)%perPass + 1
	return min(drawnThisPass*b, n)
}
