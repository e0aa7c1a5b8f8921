//go:build linux && (amd64 || arm64) && !noopenblas

package tensor

import (
	"fmt"
	"math"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"unsafe"

	"github.com/ebitengine/purego"
	"golang.org/x/sys/cpu"
)

// openblasLibrary is the soname of the LP64 (32-bit integer) OpenBLAS that
// Debian, Ubuntu and Fedora install; it is opened at run time, so the binary
// builds and runs without it (and without cgo).
const openblasLibrary = "libopenblas.so.0"

// openBLAS calls the library's sgemm_. That is the Fortran entry point
// behind cblas_sgemm (the same driver and kernels), chosen because it takes
// every argument by pointer: purego's SyscallN cannot pass cblas_sgemm's
// by-value float arguments, and purego.RegisterFunc, which can, costs about
// 1.3 µs and a dozen allocations per call through reflection.
type openBLAS struct {
	sgemm, setNumThreads uintptr
	version, core        string
	// threads is the count last passed to openblas_set_num_threads.
	threads atomic.Int32
}

// sgemmArgs holds sgemm_'s by-pointer scalars in one allocation per call.
type sgemmArgs struct {
	transA, transB byte
	m, n, k        int32
	alpha, beta    float32
	lda, ldb, ldc  int32
}

// loadOpenBLAS opens the library once and returns the backend, or why it
// cannot be used.
var loadOpenBLAS = sync.OnceValues(func() (gemmBackend, error) {
	// OpenBLAS reads its environment once, while dlopen runs its
	// constructor. These defaults apply unless the user set their own:
	//   - the kernels, chosen by instruction set (see openblasCoreType);
	//   - after a threaded call, idle workers spin for about 0.1 s (2^28
	//     cycles) before sleeping, taking a core from the Go goroutines that
	//     run next, and burning it while the program waits on anything else.
	//     The minimum, 2^4 cycles, puts them to sleep at once; waking them
	//     costs microseconds, against the milliseconds of any GEMM big
	//     enough to be threaded.
	var setHere []string
	for _, kv := range [][2]string{{"OPENBLAS_CORETYPE", openblasCoreType()}, {"OPENBLAS_THREAD_TIMEOUT", "4"}} {
		if _, set := os.LookupEnv(kv[0]); !set && kv[1] != "" {
			os.Setenv(kv[0], kv[1])
			setHere = append(setHere, kv[0])
		}
	}
	lib, err := purego.Dlopen(openblasLibrary, purego.RTLD_NOW|purego.RTLD_LOCAL)
	for _, name := range setHere {
		os.Unsetenv(name) // keep them from child processes
	}
	if err != nil {
		return nil, fmt.Errorf("load %s: %w", openblasLibrary, err)
	}
	symbol := func(name string) (uintptr, error) {
		p, err := purego.Dlsym(lib, name)
		if err != nil {
			return 0, fmt.Errorf("%s: %w", openblasLibrary, err)
		}
		return p, nil
	}
	ob := new(openBLAS)
	if ob.sgemm, err = symbol("sgemm_"); err != nil {
		return nil, err
	}
	if ob.setNumThreads, err = symbol("openblas_set_num_threads"); err != nil {
		return nil, err
	}
	var getConfig, getCore func() string
	for name, fn := range map[string]*func() string{"openblas_get_config": &getConfig, "openblas_get_corename": &getCore} {
		p, err := symbol(name)
		if err != nil {
			return nil, err
		}
		purego.RegisterFunc(fn, p)
	}
	// The configuration string starts "OpenBLAS 0.3.21 ...".
	config := strings.Fields(getConfig())
	ob.version = strings.Join(config[:min(2, len(config))], " ")
	ob.core = getCore()
	return ob, nil
})

// openblasCoreType returns the OPENBLAS_CORETYPE to force when the user has
// not set one. OpenBLAS's DYNAMIC_ARCH build picks kernels by CPU model, and
// releases older than the CPU (0.3.21 on Sapphire and Emerald Rapids, for
// one) fall back to the SSE3 "Prescott" kernels, 5 to 10 times slower than
// the AVX-512 ones the CPU can run. Choosing by instruction set instead is
// never worse for sgemm: newer models reuse these two kernel families.
func openblasCoreType() string {
	x := cpu.X86
	switch {
	case x.HasAVX512F && x.HasAVX512CD && x.HasAVX512BW && x.HasAVX512DQ && x.HasAVX512VL:
		return "SkylakeX"
	case x.HasAVX2 && x.HasFMA:
		return "Haswell"
	}
	return ""
}

func (ob *openBLAS) describe(threads int) string {
	return fmt.Sprintf("openblas (%s, %s, %s kernels, %d threads)", openblasLibrary, ob.version, ob.core, threads)
}

// openblasParallelMinFlops is where OpenBLAS on two threads starts to beat
// one thread (BenchmarkGemmThreads; docs/benchmarks.md): about 32×256×256
// (4.2 MFLOP). The training shapes (33 to 67 MFLOP) run on both cores.
const openblasParallelMinFlops = 4 << 20

func (ob *openBLAS) parallelMinFlops() int { return openblasParallelMinFlops }

func (ob *openBLAS) gemm(transA, transB bool, alpha float32, a, b *Matrix, beta float32, c *Matrix, threads int) {
	m, n, k := c.Rows, c.Cols, kOf(a, transA)
	if max(m, n, k, a.Stride, b.Stride, c.Stride) > math.MaxInt32 {
		// Beyond the 32-bit integers of the LP64 interface.
		newGoBackend().gemm(transA, transB, alpha, a, b, beta, c, threads)
		return
	}
	if !transA && transB && m <= smallBatchRows && n >= 2*m {
		ob.gemmSmallBatchNT(alpha, a, b, beta, c, threads)
		return
	}
	if int32(threads) != ob.threads.Load() {
		ob.threads.Store(int32(threads))
		purego.SyscallN(ob.setNumThreads, uintptr(threads))
	}
	// sgemm_ is column-major. A row-major [r, c] matrix with stride s reads
	// as its column-major transpose [c, r] with leading dimension s, so
	// computing Cᵀ = op(B)ᵀ·op(A)ᵀ needs no copies: pass B before A, swap m
	// and n, and keep each operand's own transpose flag.
	flag := func(t bool) byte {
		if t {
			return 'T'
		}
		return 'N'
	}
	p := &sgemmArgs{
		transA: flag(transB), transB: flag(transA),
		m: int32(n), n: int32(m), k: int32(k),
		alpha: alpha, beta: beta,
		lda: int32(b.Stride), ldb: int32(a.Stride), ldc: int32(c.Stride),
	}
	purego.SyscallN(ob.sgemm,
		uintptr(unsafe.Pointer(&p.transA)), uintptr(unsafe.Pointer(&p.transB)),
		uintptr(unsafe.Pointer(&p.m)), uintptr(unsafe.Pointer(&p.n)), uintptr(unsafe.Pointer(&p.k)),
		uintptr(unsafe.Pointer(&p.alpha)),
		uintptr(unsafe.Pointer(&b.Data[0])), uintptr(unsafe.Pointer(&p.lda)),
		uintptr(unsafe.Pointer(&a.Data[0])), uintptr(unsafe.Pointer(&p.ldb)),
		uintptr(unsafe.Pointer(&p.beta)),
		uintptr(unsafe.Pointer(&c.Data[0])), uintptr(unsafe.Pointer(&p.ldc)))
}

// smallBatchRows bounds the row count of A for which A·Bᵀ goes through
// gemmSmallBatchNT.
const smallBatchRows = 128

// transposeScratch holds the [n, m] intermediates of gemmSmallBatchNT.
var transposeScratch = sync.Pool{New: func() any { return new([]float32) }}

// gemmSmallBatchNT computes C = alpha·A·Bᵀ + beta·C for A with few rows (a
// Linear layer's forward pass on a training batch: A [64, in], B [out, in])
// as the transpose of B·Aᵀ. OpenBLAS 0.3.21 runs the direct form 1.1-1.8x
// slower at these shapes than the transposed one (BenchmarkGemmSmallBatchNT,
// docs/benchmarks.md); the transpose back costs a pass over the m·n
// elements of C.
func (ob *openBLAS) gemmSmallBatchNT(alpha float32, a, b *Matrix, beta float32, c *Matrix, threads int) {
	m, n := c.Rows, c.Cols
	buf := transposeScratch.Get().(*[]float32)
	defer transposeScratch.Put(buf)
	if cap(*buf) < m*n {
		*buf = make([]float32, m*n)
	}
	t := FromSlice(n, m, (*buf)[:m*n]) // [n, m] = B·Aᵀ
	ob.gemm(false, true, 1, b, a, 0, t, threads)
	// Transpose in tiles, so that both the rows of t and of C stay in cache.
	const tile = 16
	for i0 := 0; i0 < m; i0 += tile {
		for j0 := 0; j0 < n; j0 += tile {
			for i := i0; i < min(i0+tile, m); i++ {
				row := c.Row(i)
				for j := j0; j < min(j0+tile, n); j++ {
					v := alpha * t.Data[j*m+i]
					if beta != 0 {
						v += beta * row[j]
					}
					row[j] = v
				}
			}
		}
	}
}
