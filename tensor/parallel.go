package tensor

import "sync"

// parallel runs fn(0), …, fn(parts-1) concurrently and returns when all are
// done. fn(0) runs on the calling goroutine, so parts == 1 costs nothing.
func parallel(parts int, fn func(part int)) {
	var wg sync.WaitGroup
	for p := 1; p < parts; p++ {
		wg.Go(func() { fn(p) })
	}
	if parts > 0 {
		fn(0)
	}
	wg.Wait()
}

// elementwiseParallelMin is the work, in units of about 0.5 ns of serial
// time (one float32 add with its loads and store), below which an
// element-wise kernel runs on one goroutine. Waking a second goroutine and
// joining it costs a few microseconds, and on the benchmark machine
// (docs/benchmarks.md) a second core gained nothing below about 50 µs of
// serial work; memory-bound kernels (Add, Exp) gained little at any size.
const elementwiseParallelMin = 1 << 17

// ParallelRanges calls fn(lo, hi) over consecutive chunks of [0, n), one
// chunk per thread (Threads) when n·cost is large enough to repay the
// goroutines, else once over the whole range. cost is the work per index in
// units of about 0.5 ns (one float32 add with its loads and store). The
// chunks must be independent: results do not depend on their number.
func ParallelRanges(n, cost int, fn func(lo, hi int)) {
	parts := Threads()
	if n*cost < elementwiseParallelMin {
		parts = 1
	}
	parts = min(parts, n)
	if parts <= 1 {
		if n > 0 {
			fn(0, n)
		}
		return
	}
	parallel(parts, func(p int) {
		fn(p*n/parts, (p+1)*n/parts)
	})
}
