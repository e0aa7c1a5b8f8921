package testkit

import "runtime"

// Allocated runs f and returns the bytes the heap allocated meanwhile, for
// tests that bound what a reader may allocate for its input.
func Allocated(f func()) uint64 {
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	f()
	runtime.ReadMemStats(&after)
	return after.TotalAlloc - before.TotalAlloc
}
