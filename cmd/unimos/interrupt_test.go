package main

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/unimos/unimos/internal/shareddata"
	"github.com/unimos/unimos/internal/testkit"
	"github.com/unimos/unimos/synth"
)

// screenLines returns the lines a terminal shows for out: "\r\033[K"
// erases the line being written (a progress bar), "\r" returns to its
// start, "\n" ends it. A last line without "\n" is returned too: it is what
// the shell's prompt would be glued to.
func screenLines(out string) []string {
	var lines []string
	var line strings.Builder
	for len(out) > 0 {
		switch {
		case strings.HasPrefix(out, "\r\033[K"):
			line.Reset()
			out = out[len("\r\033[K"):]
			continue
		case out[0] == '\r':
			line.Reset()
		case out[0] == '\n':
			lines = append(lines, line.String())
			line.Reset()
		default:
			line.WriteByte(out[0])
		}
		out = out[1:]
	}
	if line.Len() > 0 {
		lines = append(lines, line.String())
	}
	return lines
}

// interruptOnTerminal sends SIGINT to cmd, which writes to term, waits for
// it to end with exit status 1 (a stopped command), and returns what the
// terminal received; what names the case in failures.
func interruptOnTerminal(t *testing.T, what string, cmd *exec.Cmd, term *testkit.Terminal) string {
	t.Helper()
	cmd.Process.Signal(syscall.SIGINT)
	err := cmd.Wait()
	out := term.Close()
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.ExitCode() != 1 {
		t.Fatalf("%s: interrupted: %v, want exit status 1; terminal:\n%q", what, err, out)
	}
	return out
}

func TestScreenLines(t *testing.T) {
	got := screenLines("a\nbar 1/3\r\033[Kbar 2/3\r\033[Knote\nbar 2/3error\n")
	want := []string{"a", "note", "bar 2/3error"}
	if strings.Join(got, "|") != strings.Join(want, "|") {
		t.Errorf("screenLines = %q, want %q", got, want)
	}
}

// TestInterruptedMessageOnItsOwnLine stops `unimos adapt` and `unimos
// extract` with SIGINT while they draw their progress bar on a terminal (a
// pseudo-terminal): the Ctrl-C note and the final "interrupted" error each
// start a line of their own, the bar erased before them, and no bar is
// left on the last line. (The bar is drawn again between the two when the
// step in progress ends more than the bar's 100 ms after its last redraw,
// as a training iteration on 256 rows of 1024-d features or a batch of
// large DSLR photos often does; the runs are long enough not to end first.)
func TestInterruptedMessageOnItsOwnLine(t *testing.T) {
	weights := filepath.Join(shareddata.Dir(t, "clip_reference"), "models", "vit_tiny.safetensors")
	photos := filepath.Join(shareddata.Dir(t, "office_caltech10"), "images")
	p, err := synth.PresetByName("office-home") // 1024-d features
	if err != nil {
		t.Fatal(err)
	}
	if p, err = p.Scaled(0.5); err != nil { // Art: 1214 images, 4 iterations of 256
		t.Fatal(err)
	}
	store := filepath.Join(t.TempDir(), "office-home")
	if err := synth.Write(store, p, 1); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name string
		args []string
	}{
		{"adapt", []string{"--features", store, "--source", "Art", "--target", "Clipart", "--batch", "256", "--epochs", "100"}},
		{"extract", []string{"--weights", weights, "--images", photos, "--domains", "dslr", "--batch", "4", "--workers", "1", "--precision", "f32"}},
	} {
		term := testkit.NewTerminal(t)
		args := append([]string{"-test.run=^$", "--", c.name}, c.args...)
		cmd := exec.Command(os.Args[0], append(args, "--out", filepath.Join(t.TempDir(), "out"))...)
		cmd.Env = append(os.Environ(), "UNIMOS_TEST_MAIN=1")
		cmd.Stderr = term.TTY
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		drawn := regexp.MustCompile(`\d (it|img)/s ETA `) // a bar after a step, with its rate
		for deadline := time.Now().Add(time.Minute); !drawn.MatchString(term.Output()); time.Sleep(10 * time.Millisecond) {
			if time.Now().After(deadline) {
				cmd.Process.Kill()
				cmd.Wait()
				t.Fatalf("%s: no progress bar on the terminal after a minute:\n%q", c.name, term.Close())
			}
		}
		out := interruptOnTerminal(t, c.name, cmd, term)
		lines := screenLines(out)
		var note, final bool
		for _, l := range lines {
			note = note || strings.HasPrefix(l, "Ctrl-C: stopping after the current step")
			final = final || strings.HasPrefix(l, "unimos "+c.name+": interrupted")
		}
		if !note || !final || drawn.MatchString(lines[len(lines)-1]) || !strings.HasSuffix(out, "\n") {
			t.Errorf("%s: the note and the final message do not start lines of their own, or a bar is left; the terminal shows:\n%s\nwritten: %q",
				c.name, strings.Join(lines, "\n"), out)
		}
	}
}
