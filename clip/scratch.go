package clip

import (
	"sync"

	"github.com/unimos/unimos/tensor"
)

// scratch hands out the temporary matrices of a transformer's forward pass
// (the normalised inputs, projections, scores and MLP activations of a
// block) so that a pass allocates them once rather than at every block.
//
// It works as a stack that empties at the end of each residual branch
// (addBranch), when every temporary of the branch is dead: the i-th request
// of a branch gets the storage of the i-th request of the branches before
// it. Every block of a tower makes the same requests in the same order, so
// after the first branches no request allocates.
type scratch struct {
	buffers [][]float32
	used    int // buffers handed out since the last addBranch
}

// scratches keeps the scratches of finished passes for the next, so that
// encoding batch after batch allocates nothing large.
var scratches = sync.Pool{New: func() any { return new(scratch) }}

// getScratch returns an empty scratch from scratches; the caller puts it
// back when its pass is done.
func getScratch() *scratch {
	s := scratches.Get().(*scratch)
	s.used = 0
	return s
}

// matrix returns a [rows, cols] matrix whose contents are undefined, valid
// until the end of the current residual branch.
func (s *scratch) matrix(rows, cols int) *tensor.Matrix {
	if s.used == len(s.buffers) {
		s.buffers = append(s.buffers, nil)
	}
	b := &s.buffers[s.used]
	s.used++
	if cap(*b) < rows*cols {
		*b = make([]float32, rows*cols)
	}
	return tensor.FromSlice(rows, cols, (*b)[:rows*cols])
}

// addBranch ends a residual branch: x += y, after which y and every other
// matrix s handed out since the last addBranch are dead, and their storage
// goes to the next branch. x must not come from s.
func (s *scratch) addBranch(x, y *tensor.Matrix) {
	tensor.Add(x, x, y)
	s.used = 0
}
