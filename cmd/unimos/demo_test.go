package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/unimos/unimos/unimos"
)

// TestDemo runs the README's first command on a short schedule and checks
// that what it prints is what its run directory holds, and that UniMoS
// beats zero-shot on the demo task (at 3 epochs the synthetic Art ->
// Clipart ensemble is already well above it: 47.0 zero-shot).
func TestDemo(t *testing.T) {
	if testing.Short() {
		t.Skip("generates the Office-Home-sized demo store")
	}
	dir := filepath.Join(t.TempDir(), "demo")
	code, stdout, errOut := runCLI(t, "demo", "--epochs", "3", "--out", dir)
	if code != 0 {
		t.Fatalf("demo: status %d, stderr %q", code, errOut)
	}
	for _, domain := range []string{"Art", "Clipart", "Product", "Real_World"} {
		if !strings.Contains(stdout, domain) {
			t.Errorf("the zero-shot table lacks %s:\n%s", domain, stdout)
		}
	}
	raw, err := os.ReadFile(filepath.Join(dir, "run", "result.json"))
	if err != nil {
		t.Fatal(err)
	}
	var r unimos.Result
	if err := json.Unmarshal(raw, &r); err != nil {
		t.Fatal(err)
	}
	if r.Task != "Art->Clipart" || r.Epochs != 3 || r.Final == nil {
		t.Fatalf("result.json: %s", raw)
	}
	for _, line := range []string{
		fmt.Sprintf("zero-shot CLIP       %6.2f%%", r.ZeroShot.Accuracy),
		fmt.Sprintf("UniMoS, last epoch   %6.2f%%", r.Final.Accuracy),
	} {
		if !strings.Contains(stdout, line) {
			t.Errorf("stdout lacks %q:\n%s", line, stdout)
		}
	}
	if r.Final.Accuracy < r.ZeroShot.Accuracy+5 {
		t.Errorf("UniMoS %.2f%% does not beat zero-shot %.2f%% by 5 points", r.Final.Accuracy, r.ZeroShot.Accuracy)
	}
}
