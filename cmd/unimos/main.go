// Command unimos adapts CLIP-based classifiers from a labelled source domain
// to an unlabelled target domain with UniMoS ("Split to Merge", CVPR 2024).
//
// Usage:
//
//	unimos <command> [flags]
//
// Run "unimos help" for the list of commands and "unimos <command> -h" for
// the flags of one. Exit status: 0 on success, 1 on a runtime error, 2 on a
// usage error.
package main

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"regexp"
	"runtime/debug"
	"slices"
	"strings"
	"time"

	"github.com/unimos/unimos/internal/progress"
	"github.com/unimos/unimos/internal/words"
)

// command is one subcommand of the CLI.
type command struct {
	name    string
	summary string
	run     func(ctx *context, args []string) error
}

// context carries the streams a command writes to, so tests can capture them.
type context struct {
	stdout, stderr io.Writer
}

// usageError marks errors in how a command was called (exit status 2).
type usageError struct{ msg string }

func (e usageError) Error() string { return e.msg }

func usagef(format string, args ...any) error { return usageError{fmt.Sprintf(format, args...)} }

func commands() []command {
	return []command{
		{"demo", "zero-shot CLIP vs UniMoS on a generated Office-Home-like benchmark", runDemo},
		{"adapt", "adapt from a labelled source domain to a target domain with UniMoS", runAdapt},
		{"extract", "encode image folders with CLIP into a feature store", runExtract},
		{"merge", "join extract shards into a feature store", runMerge},
		{"import", "add a domain from .npy/.npz/.pth features to a feature store", runImport},
		{"convert", "write CLIP weights as one safetensors file in OpenAI naming", runConvert},
		{"bench", "run the paper's benchmark protocols, or every pair of domains of any store, into a report", runBench},
		{"predict", "classify features or images with a model that adapt or bench trained", runPredict},
		{"serve", "answer classification requests over HTTP with a trained model, with a web page", runServe},
		{"inspect", "describe a feature store: domains, sizes, classes, zero-shot accuracy", runInspect},
		{"zeroshot", "CLIP zero-shot baseline on one domain of a feature store", runZeroShot},
		{"synth", "write a synthetic CLIP-like domain-shift feature store", runSynth},
		{"version", "print the version and the matrix-multiply backend in use", runVersion},
	}
}

// gcPercent replaces Go's default GOGC of 100 unless the user sets GOGC.
// The heap of every command is dominated by feature matrices and model
// weights, float slices without pointers that the collector never scans,
// so collecting more often costs little; at 100 the garbage of each
// end-of-epoch test was allowed to grow the process to twice its live size
// (VisDA-sized run: 1.08 GB at 100, 0.78 GB at 25, same speed).
const gcPercent = 25

func main() {
	if _, set := os.LookupEnv("GOGC"); !set {
		debug.SetGCPercent(gcPercent)
	}
	os.Exit(run(os.Args[1:], &context{stdout: os.Stdout, stderr: os.Stderr}))
}

// run executes the command line args and returns the exit status.
func run(args []string, ctx *context) int {
	if len(args) == 0 {
		printUsage(ctx.stderr)
		return 2
	}
	name := args[0]
	switch {
	case isHelp(name):
		// unimos help CMD: that command's -h; help on help is this usage.
		if len(args) > 1 && !isHelp(args[1]) {
			name, args = args[1], []string{args[1], "-h"}
			break
		}
		printUsage(ctx.stdout)
		return 0
	case name == "--version", name == "-version":
		name = "version"
	}
	c, ok := commandByName(name)
	if !ok {
		fmt.Fprintf(ctx.stderr, "unimos: unknown command %q%s\nRun 'unimos help' for the list of commands.\n", name, didYouMean(name, commandNames(), ""))
		return 2
	}
	return report(ctx, name, call(c, ctx, args[1:]))
}

// report prints the outcome err of command name and returns its exit
// status. The error goes through progress.Printf: a command stopped
// mid-step (Ctrl-C) may have drawn its progress bar again after the last
// message, and the error must not be glued onto it.
func report(ctx *context, name string, err error) int {
	var usage usageError
	var internal internalError
	switch {
	case err == nil, errors.Is(err, flag.ErrHelp):
		return 0
	case errors.As(err, &internal):
		progress.Printf(ctx.stderr, "unimos %s: %v\n", name, err)
		return 3
	case errors.As(err, &usage):
		progress.Printf(ctx.stderr, "unimos %s: %v\nRun 'unimos %s -h' for usage.\n", name, err, name)
		return 2
	default:
		progress.Printf(ctx.stderr, "unimos %s: %s\n", name, commandError(name, err))
		return 1
	}
}

// internalError is a panic of a command, recovered by call: a bug in
// unimos, never the input's fault, so it gets its own exit status, 3, and
// the stack for the report. (A panic on another goroutine still crashes
// the process as Go does, with status 2; the commands' worker goroutines
// return their errors instead of panicking.)
type internalError struct {
	value any
	stack []byte
}

func (e internalError) Error() string {
	return fmt.Sprintf("internal error (a bug in unimos: please report it with the command line and this message): %v\n%s", e.value, e.stack)
}

// call runs command c with args, returning a panic as an internalError.
func call(c command, ctx *context, args []string) (err error) {
	defer func() {
		if v := recover(); v != nil {
			err = internalError{v, debug.Stack()}
		}
	}()
	return c.run(ctx, args)
}

// commandError is the message of err as it follows "unimos NAME: ":
// without the labels that lead up to the command's own name ("extract: "
// for extract, "extract: merge: " for merge), which say nothing more after
// it. Other packages' labels stay ("features: "): they say where the
// problem is.
func commandError(name string, err error) string {
	labels := regexp.MustCompile(`^(?:[a-z]+: )*?` + regexp.QuoteMeta(name) + `: `)
	return labels.ReplaceAllString(err.Error(), "")
}

// isHelp reports whether arg asks for the list of commands.
func isHelp(arg string) bool {
	return slices.Contains([]string{"help", "-h", "--help", "-help"}, arg)
}

func commandByName(name string) (command, bool) {
	for _, c := range commands() {
		if c.name == name {
			return c, true
		}
	}
	return command{}, false
}

func commandNames() []string {
	var names []string
	for _, c := range commands() {
		names = append(names, c.name)
	}
	return names
}

func printUsage(w io.Writer) {
	fmt.Fprintln(w, "unimos: CLIP-based unsupervised domain adaptation (UniMoS).")
	fmt.Fprintln(w, "\nUsage:\n\n\tunimos <command> [flags]\n\nCommands:")
	for _, c := range commands() {
		fmt.Fprintf(w, "\t%-10s %s\n", c.name, c.summary)
	}
	fmt.Fprintln(w, "\nRun 'unimos help <command>' (or 'unimos <command> -h') for the flags of a command,")
	fmt.Fprintln(w, "'unimos --version' for the version.")
}

// newFlags returns a flag set that reports errors instead of exiting, with a
// usage text made of a synopsis line, a description and the flags. The flag
// package writes the usage on every parse error; parseFlags shows it on
// stdout for -h only, and words other errors in one line.
func newFlags(ctx *context, name, synopsis, description string) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	help := &helpText{stdout: ctx.stdout}
	fs.SetOutput(help)
	fs.Usage = func() {
		help.Reset()
		fmt.Fprintf(help, "Usage: unimos %s %s\n\n%s\n", name, synopsis, strings.TrimSpace(description))
		printFlags(help, fs)
	}
	return fs
}

// printFlags writes the flags of fs but the deprecated ones, as
// flag.PrintDefaults does but spelt with two dashes as everywhere else:
//
//	--epochs int
//	    	training epochs (default 50)
func printFlags(w io.Writer, fs *flag.FlagSet) {
	heading := "\nFlags:\n"
	fs.VisitAll(func(f *flag.Flag) {
		if strings.HasPrefix(f.Usage, deprecatedUsage) {
			return
		}
		fmt.Fprint(w, heading)
		heading = ""
		arg, usage := flag.UnquoteUsage(f)
		fmt.Fprintf(w, "  --%s", f.Name)
		if arg != "" {
			fmt.Fprintf(w, " %s", arg)
		}
		fmt.Fprintf(w, "\n    \t%s", strings.ReplaceAll(usage, "\n", "\n    \t"))
		if f.DefValue != "" && f.DefValue != "false" && f.DefValue != "0" {
			fmt.Fprintf(w, " (default %s)", f.DefValue)
		}
		fmt.Fprintln(w)
	})
}

// helpText holds a flag set's usage text until parseFlags knows whether it
// was asked for.
type helpText struct {
	bytes.Buffer
	stdout io.Writer
}

// weightsUsage is the help of --weights, in every command that loads CLIP.
const weightsUsage = "CLIP `WEIGHTS`: a checkpoint file or folder, or a name found in the local caches (RN50, ViT-B/16, openai/clip-vit-base-patch16)"

// deprecatedUsage starts the usage text of a flag kept for one release
// under its old name; such flags are left out of -h.
const deprecatedUsage = "deprecated: "

// deprecatedFlag defines old as another name of the flag current, for one
// release: setting it sets current (as given on the command line, for
// fs.Visit) and prints a note on stderr.
func deprecatedFlag(ctx *context, fs *flag.FlagSet, old, current string) {
	f := fs.Lookup(current)
	set := func(s string) error {
		fmt.Fprintf(ctx.stderr, "note: --%s is deprecated and will be removed; use --%s\n", old, current)
		return fs.Set(current, s)
	}
	usage := deprecatedUsage + "use --" + current
	if b, ok := f.Value.(interface{ IsBoolFlag() bool }); ok && b.IsBoolFlag() {
		fs.BoolFunc(old, usage, set)
		return
	}
	fs.Func(old, usage, set)
}

// anyArgs is parseFlags' positional count for commands that take any number
// of arguments.
const anyArgs = -1

// parseFlags parses args, turning flag errors into one-line usage errors
// (with a suggestion for a mistyped flag) and rejecting positional
// arguments beyond the wanted count (anyArgs: any number). -h prints the
// usage on stdout and returns flag.ErrHelp.
func parseFlags(fs *flag.FlagSet, args []string, positional int) error {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			if help, ok := fs.Output().(*helpText); ok {
				help.stdout.Write(help.Bytes())
			}
			return err
		}
		return usageError{flagError(fs, err)}
	}
	switch {
	case positional == anyArgs || fs.NArg() == positional:
		return nil
	case positional == 0:
		return usagef("unexpected argument %q (flags go before arguments, each as --name value)", fs.Arg(0))
	}
	return usagef("want %s, got %d", words.Count(positional, "argument"), fs.NArg())
}

// The errors of flag.Parse that flagError rewords, as the flag package
// words them, with the flag's name after one dash.
var (
	unknownFlagError  = regexp.MustCompile(`^flag provided but not defined: -(.+)$`)
	missingValueError = regexp.MustCompile(`^flag needs an argument: -(.+)$`)
	invalidValueError = regexp.MustCompile(`^invalid (?:boolean )?value ("(?:[^"\\]|\\.)*") for (?:flag )?-([^:]+): (.*)$`)
	badSyntaxError    = regexp.MustCompile(`^bad flag syntax: (.*)$`)
)

// flagError rewords an error of flag.Parse in one line that spells the
// flag with two dashes, as the help and every other message do: an unknown
// flag is named with the closest defined flag, a value that does not parse
// with what the flag takes.
func flagError(fs *flag.FlagSet, err error) string {
	msg := err.Error()
	if m := unknownFlagError.FindStringSubmatch(msg); m != nil {
		var names []string
		fs.VisitAll(func(f *flag.Flag) {
			if !strings.HasPrefix(f.Usage, deprecatedUsage) {
				names = append(names, f.Name)
			}
		})
		return fmt.Sprintf("unknown flag --%s%s", m[1], didYouMean(m[1], names, "--"))
	}
	if m := missingValueError.FindStringSubmatch(msg); m != nil {
		return fmt.Sprintf("--%s needs a value", m[1])
	}
	if m := invalidValueError.FindStringSubmatch(msg); m != nil {
		value, name, problem := m[1], m[2], m[3]
		switch problem {
		case "parse error":
			problem = "want " + flagKind(fs, name)
		case "value out of range":
			problem = "out of range for " + flagKind(fs, name)
		}
		return fmt.Sprintf("invalid value %s for --%s: %s", value, name, problem)
	}
	if m := badSyntaxError.FindStringSubmatch(msg); m != nil {
		return fmt.Sprintf("%q is not a flag: write flags as --name value or --name=value", m[1])
	}
	return msg
}

// flagKind says what values the flag name takes, "a whole number", from
// the type of its value (a deprecated spelling's from the flag it stands
// for).
func flagKind(fs *flag.FlagSet, name string) string {
	f := fs.Lookup(name)
	if current, ok := strings.CutPrefix(f.Usage, deprecatedUsage+"use --"); ok {
		f = fs.Lookup(current)
	}
	getter, ok := f.Value.(flag.Getter)
	if !ok {
		return "another value"
	}
	switch getter.Get().(type) {
	case bool:
		return "true or false"
	case int, int64:
		return "a whole number"
	case uint, uint64:
		return "a whole number, 0 or more"
	case float64:
		return "a number"
	case time.Duration:
		return "a duration such as 5ms, 2s or 1m30s"
	}
	return "another value"
}

// didYouMean returns " (did you mean PREFIXx?)" for the candidate closest to
// s by edit distance, when it is close enough to be a likely typo or s is
// its prefix, and "" otherwise.
func didYouMean(s string, candidates []string, prefix string) string {
	best, bestDist := "", len(s)/2+1
	for _, c := range candidates {
		d := editDistance(s, c)
		if strings.HasPrefix(c, s) && len(s) >= 3 {
			d = min(d, 1)
		}
		if d < bestDist {
			best, bestDist = c, d
		}
	}
	if best == "" {
		return ""
	}
	return fmt.Sprintf(" (did you mean %s%s?)", prefix, best)
}

// editDistance is the Levenshtein distance between a and b.
func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

// requireFlags returns a usage error naming the first of the named flags
// that was left empty.
func requireFlags(fs *flag.FlagSet, names ...string) error {
	for _, name := range names {
		if fs.Lookup(name).Value.String() == "" {
			return usagef("--%s is required", name)
		}
	}
	return nil
}
