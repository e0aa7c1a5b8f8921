package tensor

import (
	"strings"
	"testing"
)

// TestInitFollowsEnvironment checks that the default backend is the one
// UNIMOS_BLAS names, so that CI can run every package's tests on each GEMM
// path, and that a forced backend which cannot be loaded fails the run.
func TestInitFollowsEnvironment(t *testing.T) {
	if err := Init(); err != nil {
		t.Fatalf("Init: %v", err)
	}
	want := envBackendName()
	if want == BackendAuto {
		want = BackendGo
		if _, err := loadOpenBLAS(); err == nil {
			want = BackendOpenBLAS
		}
	}
	if got := Backend(); !strings.HasPrefix(got, want+" (") {
		t.Errorf("Backend() = %q, want the %s backend", got, want)
	}
	t.Logf("GEMM backend: %s", Backend())
}

func TestUseBackend(t *testing.T) {
	defer UseBackend(envBackendName())
	if err := UseBackend("mkl"); err == nil || !strings.Contains(err.Error(), `"mkl"`) {
		t.Errorf(`UseBackend("mkl") = %v, want an error naming it`, err)
	}
	if err := UseBackend(BackendGo); err != nil {
		t.Fatal(err)
	}
	if got := Backend(); !strings.HasPrefix(got, "go (") {
		t.Errorf("after UseBackend(go), Backend() = %q", got)
	}
	_, loadErr := loadOpenBLAS()
	err := UseBackend(BackendOpenBLAS)
	if (err == nil) != (loadErr == nil) {
		t.Fatalf("UseBackend(openblas) = %v, but loading gives %v", err, loadErr)
	}
	if err != nil {
		if got := Backend(); !strings.HasPrefix(got, "go (") {
			t.Errorf("a failed UseBackend(openblas) changed the backend to %q", got)
		}
		t.Skipf("OpenBLAS half skipped: %v", err)
	}
	if got := Backend(); !strings.HasPrefix(got, "openblas (") || !strings.Contains(got, "threads") {
		t.Errorf("after UseBackend(openblas), Backend() = %q", got)
	}
}

func TestSetThreads(t *testing.T) {
	defer SetThreads(0)
	SetThreads(3)
	if Threads() != 3 {
		t.Errorf("Threads() = %d after SetThreads(3)", Threads())
	}
	be := newGoBackend()
	if got := threadsFor(be, 1000, 1000, 1000); got != 3 {
		t.Errorf("a 1000³ product gets %d threads, want the limit 3", got)
	}
	if got := threadsFor(be, 2, 2, 2); got != 1 {
		t.Errorf("a 2³ product gets %d threads, want 1", got)
	}
	SetThreads(0)
	if Threads() < 1 {
		t.Errorf("default Threads() = %d", Threads())
	}
}
