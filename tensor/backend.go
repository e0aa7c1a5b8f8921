package tensor

import (
	"fmt"
	"os"
	"runtime"
	"sync"
	"sync/atomic"
)

// gemmBackend is one implementation of the GEMM seam. Gemm hands it
// validated operands with m, n, k > 0 and alpha != 0, and the number of
// threads the call may use.
type gemmBackend interface {
	// describe names the backend for Backend, given the thread limit.
	describe(threads int) string
	// parallelMinFlops is the smallest 2·m·n·k for which this backend runs a
	// GEMM on more than one thread (see threadsFor).
	parallelMinFlops() int
	gemm(transA, transB bool, alpha float32, a, b *Matrix, beta float32, c *Matrix, threads int)
}

// Backend names accepted by UseBackend and by the UNIMOS_BLAS environment
// variable.
const (
	BackendAuto     = "auto"     // OpenBLAS when it loads, else Go
	BackendGo       = "go"       // the blocked GEMM in Go (assembly micro-kernels on amd64)
	BackendOpenBLAS = "openblas" // OpenBLAS's sgemm from libopenblas.so.0
)

var (
	// active is the backend Gemm uses; nil until Init runs.
	active atomic.Pointer[gemmBackend]
	// threadLimit is the SetThreads limit; 0 means runtime.GOMAXPROCS(0).
	threadLimit atomic.Int32

	initOnce sync.Once
	initErr  error
	// fallback is the Go backend Init installed in place of a forced one that
	// failed; Backend mentions initErr while it is still in use.
	fallback *gemmBackend
)

// Init selects the GEMM backend named by the UNIMOS_BLAS environment variable
// ("go", "openblas", or "auto"/unset for OpenBLAS when it loads, else Go). It
// runs once; later calls return the first result. Gemm calls it lazily, so
// calling Init is optional, but a program should call it at start-up to
// surface a forced backend that cannot be used: in that case Init returns the
// reason and Gemm falls back to the Go backend rather than failing mid-run.
func Init() error {
	initOnce.Do(func() {
		name := envBackendName()
		be, err := newBackend(name)
		if err != nil {
			initErr = fmt.Errorf("UNIMOS_BLAS=%s: %w", name, err)
			be = newGoBackend()
			fallback = &be
		}
		active.Store(&be)
	})
	return initErr
}

// envBackendName returns the backend UNIMOS_BLAS names, BackendAuto if unset.
func envBackendName() string {
	if name := os.Getenv("UNIMOS_BLAS"); name != "" {
		return name
	}
	return BackendAuto
}

// UseBackend switches the GEMM implementation to BackendGo, BackendOpenBLAS
// or BackendAuto, overriding UNIMOS_BLAS. It returns an error, and keeps the
// current backend, when the name is unknown or OpenBLAS cannot be loaded.
// Switching while other goroutines call Gemm is safe: each call uses one
// backend throughout.
func UseBackend(name string) error {
	Init()
	be, err := newBackend(name)
	if err != nil {
		return err
	}
	active.Store(&be)
	return nil
}

func newBackend(name string) (gemmBackend, error) {
	switch name {
	case BackendGo:
		return newGoBackend(), nil
	case BackendOpenBLAS:
		return loadOpenBLAS()
	case BackendAuto:
		if ob, err := loadOpenBLAS(); err == nil {
			return ob, nil
		}
		return newGoBackend(), nil
	}
	return nil, fmt.Errorf("unknown GEMM backend %q (want %q, %q or %q)", name, BackendGo, BackendOpenBLAS, BackendAuto)
}

// Backend describes the GEMM implementation in use and its thread limit, for
// logs and version output: for example "openblas (libopenblas.so.0, OpenBLAS
// 0.3.21, SkylakeX kernels, 2 threads)" or "go (avx512 12x32 kernel, 2
// threads)".
// When a backend forced through UNIMOS_BLAS could not be used, the
// description says so.
func Backend() string {
	cur := currentBackend()
	s := (*cur).describe(Threads())
	if cur == fallback {
		s += "; " + initErr.Error()
	}
	return s
}

// SetThreads sets how many threads GEMM (both backends) and the element-wise
// kernels may use; n < 1 restores the default, runtime.GOMAXPROCS(0).
// OpenBLAS is told (openblas_set_num_threads) before each call whose count
// differs from the last. Each GEMM still runs on one thread when it is too
// small to gain from more (see threadsFor). Set it to 1 when the caller already keeps every core busy, so
// that OpenBLAS's threads and busy goroutines never compete for cores.
func SetThreads(n int) {
	threadLimit.Store(int32(max(n, 0)))
}

// Threads returns the thread limit: the SetThreads value, or GOMAXPROCS.
func Threads() int {
	if n := threadLimit.Load(); n > 0 {
		return int(n)
	}
	return runtime.GOMAXPROCS(0)
}

func currentBackend() *gemmBackend {
	Init()
	return active.Load()
}

// threadsFor returns the number of threads for a GEMM of the given size: one
// below the backend's measured break-even point, where waking a second thread
// costs more than it saves, and the SetThreads limit above it.
func threadsFor(be gemmBackend, m, n, k int) int {
	if 2*m*n*k < be.parallelMinFlops() {
		return 1
	}
	return Threads()
}
