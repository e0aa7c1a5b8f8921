package main

import (
	"bytes"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/unimos/unimos/tensor"
)

// readmeMarker precedes, on a line of its own, each code block of the
// README whose output TestReadmeExamples checks.
const readmeMarker = "<!-- output checked by TestReadmeExamples (cmd/unimos) -->"

// readmeCommand is a command line of a README example and the output shown
// below it.
type readmeCommand struct {
	line   int // in README.md, from 1
	args   []string
	output string
}

// readmeExamples returns the commands of the marked code blocks of the
// README, in order. A ```console block shows commands after "$ " and
// their output as is; a ```sh block shows commands as they are and their
// output in comments ("# " or a bare "#" for an empty line).
func readmeExamples(t *testing.T, readme string) []readmeCommand {
	t.Helper()
	lines := strings.Split(readme, "\n")
	var cmds []readmeCommand
	for i := 0; i < len(lines); i++ {
		if lines[i] != readmeMarker {
			continue
		}
		i++
		if i == len(lines) || (lines[i] != "```console" && lines[i] != "```sh") {
			t.Fatalf("README.md:%d: %s is not followed by a ```console or ```sh block", i, readmeMarker)
		}
		console := lines[i] == "```console"
		for i++; i < len(lines) && lines[i] != "```"; i++ {
			l := lines[i]
			command, isCommand := strings.CutPrefix(l, "$ ")
			if !console {
				command, isCommand = l, !strings.HasPrefix(l, "#")
				l = strings.TrimPrefix(strings.TrimPrefix(l, "#"), " ")
			}
			if isCommand {
				cmds = append(cmds, readmeCommand{line: i + 1, args: shellWords(t, command)})
				continue
			}
			if len(cmds) == 0 {
				t.Fatalf("README.md:%d: output before any command", i+1)
			}
			cmds[len(cmds)-1].output += l + "\n"
		}
	}
	return cmds
}

// shellWords splits a command line as the shell does for the README's
// examples: words separated by spaces, '...' quoting.
func shellWords(t *testing.T, line string) []string {
	t.Helper()
	var words []string
	var word strings.Builder
	inWord, quoted := false, false
	for _, r := range line {
		switch {
		case r == '\'':
			quoted, inWord = !quoted, true
		case r == ' ' && !quoted:
			if inWord {
				words = append(words, word.String())
				word.Reset()
				inWord = false
			}
		default:
			word.WriteRune(r)
			inWord = true
		}
	}
	if quoted {
		t.Fatalf("unterminated quote in %q", line)
	}
	if inWord {
		words = append(words, word.String())
	}
	return words
}

// TestReadmeExamples runs the commands of the README's marked examples, in
// README order, and compares their output (stderr, then stdout) with the
// README's. Folders under /tmp/ are made in a temporary folder, which is
// also the working directory; the run times, "(0.1 s)", are masked. The
// README shows the pure-Go backend's numbers: with another, the accuracies
// of the UniMoS runs, whose training sums are rounded in another order, are
// masked too.
func TestReadmeExamples(t *testing.T) {
	raw, err := os.ReadFile(filepath.Join("..", "..", "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	cmds := readmeExamples(t, string(raw))
	var names []string
	for _, c := range cmds {
		names = append(names, c.args[1])
	}
	for _, want := range []string{"bench", "synth", "inspect", "zeroshot"} {
		if !slices.Contains(names, want) {
			t.Errorf("no checked example of unimos %s in README.md (checked: %v)", want, names)
		}
	}

	root := t.TempDir()
	t.Chdir(root)
	seconds := regexp.MustCompile(`\(\d+\.\d s\)`)
	trained := regexp.MustCompile(`(?m)^(\[\d+/\d+\] unimos .*?)\d+\.\d\d%(.*?)\d+\.\d\d%`)
	mask := func(s string) string {
		s = seconds.ReplaceAllString(s, "(T s)")
		if !strings.HasPrefix(tensor.Backend(), "go ") {
			s = trained.ReplaceAllString(s, "${1}X%${2}X%")
		}
		return s
	}
	for _, c := range cmds {
		if c.args[0] != "unimos" {
			t.Fatalf("README.md:%d: %q is not a unimos command", c.line, c.args)
		}
		args := slices.Clone(c.args[1:])
		for i, a := range args {
			if strings.HasPrefix(a, "/tmp/") {
				args[i] = root + a
			}
		}
		var stdout, stderr bytes.Buffer
		code := run(args, &context{stdout: &stdout, stderr: &stderr})
		got := strings.ReplaceAll(stderr.String()+stdout.String(), root+"/tmp/", "/tmp/")
		if code != 0 || mask(got) != mask(c.output) {
			t.Errorf("README.md:%d: unimos %s: status %d, output\n%s\nREADME.md shows\n%s", c.line, strings.Join(c.args[1:], " "), code, got, c.output)
		}
	}
}

func TestShellWords(t *testing.T) {
	got := shellWords(t, "unimos bench --tasks 'A->C,P->R'  --out 'my runs'")
	want := []string{"unimos", "bench", "--tasks", "A->C,P->R", "--out", "my runs"}
	if !slices.Equal(got, want) {
		t.Errorf("shellWords = %q, want %q", got, want)
	}
}
