//go:build linux

package main

import (
	"errors"
	"fmt"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/unimos/unimos/internal/testkit"
)

func init() { helperModes["disk"] = unwritableAndFullDisk }

// diskLimit is the size of the full disk of TestUnwritableAndFullDisk:
// room for a small store, not for a domain of the tiny synthetic store.
const diskLimit = 32 << 10

// TestUnwritableAndFullDisk runs import, adapt and synth against a full
// disk and a read-only folder, in a helper process. Where the helper can
// have its own mount namespace (root with CAP_SYS_ADMIN), the full disk is
// a 32 KiB tmpfs and the read-only folder a read-only tmpfs: real ENOSPC
// and EROFS. Elsewhere the full disk is simulated by a 32 KiB file size
// limit (RLIMIT_FSIZE: writes past it fail with EFBIG), and the read-only
// folder is a chmod 0555 one, which binds only an unprivileged user.
func TestUnwritableAndFullDisk(t *testing.T) {
	dir := t.TempDir()
	tinyStore(t, filepath.Join(dir, "source"))
	writeMatrixNPY(t, filepath.Join(dir, "big.npy"), 2048, 64, testkit.UnitRows(2048, 64, 9).Data)
	writeMatrixNPY(t, filepath.Join(dir, "small.npy"), 4, 64, testkit.UnitRows(4, 64, 10).Data)
	writeLabelsNPY(t, filepath.Join(dir, "small_labels.npy"), []int64{0, 1, 2, 7})
	classes := filepath.Join(dir, "classes.txt")
	writeLines(t, classes, "c0", "c1", "c2", "c3", "c4", "c5", "c6", "c7")
	importCall(t, "--out", filepath.Join(dir, "small"), "--domain", "a", "--features", filepath.Join(dir, "small.npy"),
		"--labels", filepath.Join(dir, "small_labels.npy"), "--classes", classes)

	cmd := helperCommand("disk", dir)
	cmd.Env = append(cmd.Env, helperMount+"=1")
	cmd.SysProcAttr = &syscall.SysProcAttr{Unshareflags: syscall.CLONE_NEWNS}
	out, err := cmd.CombinedOutput()
	var exit *exec.ExitError
	if err != nil && !errors.As(err, &exit) {
		t.Logf("no mount namespace (%v): simulating instead", err)
		out, err = helperCommand("disk", dir).CombinedOutput()
	}
	t.Logf("helper output:\n%s", out)
	if err != nil {
		t.Fatalf("helper failed: %v", err)
	}
}

// unwritableAndFullDisk is the helper side of TestUnwritableAndFullDisk.
func unwritableAndFullDisk(t *testing.T, dir string) {
	full, readOnly := filepath.Join(dir, "full"), filepath.Join(dir, "read-only")
	for _, d := range []string{full, readOnly} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	var diskFull, notWritable []string // what the errors must say
	mounted := false
	if os.Getenv(helperMount) == "1" {
		size := fmt.Sprintf("size=%d", diskLimit)
		err := syscall.Mount("tmpfs", full, "tmpfs", 0, size)
		if err == nil {
			err = syscall.Mount("tmpfs", readOnly, "tmpfs", syscall.MS_RDONLY, size)
		}
		if err == nil {
			mounted = true
			diskFull, notWritable = []string{"no space left on device"}, []string{"read-only file system"}
			fmt.Println("full disk: a tmpfs; read-only folder: a read-only tmpfs")
		} else {
			fmt.Println("mount:", err)
		}
	}
	// The store to keep intact, copied before any limit applies.
	store := filepath.Join(full, "store")
	testkit.CopyTree(t, filepath.Join(dir, "small"), store)
	before := testkit.ReadTree(t, store)
	if !mounted {
		limit := syscall.Rlimit{Cur: diskLimit, Max: diskLimit}
		if err := syscall.Setrlimit(syscall.RLIMIT_FSIZE, &limit); err != nil {
			t.Fatalf("setrlimit: %v", err)
		}
		diskFull = []string{"file too large"}
		fmt.Println("full disk: a file size limit")
		if os.Geteuid() != 0 {
			if err := os.Chmod(readOnly, 0o555); err != nil {
				t.Fatal(err)
			}
			notWritable = []string{"permission denied"}
			fmt.Println("read-only folder: chmod 0555")
		} else {
			fmt.Println("read-only folder: skipped (root ignores chmod; TestMalformedStores covers an unwritable output)")
		}
	}

	source := filepath.Join(dir, "source")
	outputs := func(out string, fragments []string) []robustnessCase {
		return []robustnessCase{
			{"import", runImport, []string{"--out", filepath.Join(out, "store"), "--domain", "b", "--features", filepath.Join(dir, "big.npy"),
				"--classes", filepath.Join(dir, "classes.txt")}, append([]string{filepath.Join(out, "store")}, fragments...)},
			{"adapt", runAdapt, []string{"--features", source, "--source", "photo", "--target", "painting",
				"--out", filepath.Join(out, "run"), "--epochs", "1", "--quiet"}, append([]string{filepath.Join(out, "run")}, fragments...)},
			{"synth", runSynth, []string{"--preset", "tiny", "--out", filepath.Join(out, "synth")},
				append([]string{filepath.Join(out, "synth")}, fragments...)},
		}
	}
	t.Run("full disk", func(t *testing.T) {
		checkCases(t, outputs(full, diskFull))
		if after := testkit.ReadTree(t, store); !maps.Equal(before, after) {
			t.Errorf("the failed import changed %s", store)
		}
		checkNoPartialResults(t, full)
	})
	if notWritable == nil {
		return
	}
	t.Run("read-only", func(t *testing.T) {
		checkCases(t, outputs(readOnly, notWritable))
		if entries, _ := os.ReadDir(readOnly); len(entries) != 0 {
			t.Errorf("the read-only folder holds %d entries", len(entries))
		}
	})
}
