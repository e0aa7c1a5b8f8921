package shard

import (
	"strings"
	"testing"
)

// env returns a getenv over the given variables.
func env(vars map[string]string) func(string) string {
	return func(name string) string { return vars[name] }
}

func TestParse(t *testing.T) {
	for _, c := range []struct {
		in   string
		want Shard
		err  string
	}{
		{"0/1", Shard{0, 1}, ""},
		{"3/4", Shard{3, 4}, ""},
		{"4/4", Shard{}, "want 0 <= i < n"},
		{"-1/4", Shard{}, "want 0 <= i < n"},
		{"0/0", Shard{}, "want 0 <= i < n"},
		{"1", Shard{}, "want i/n"},
		{"a/b", Shard{}, "want i/n"},
		{"", Shard{}, "want i/n"},
	} {
		got, err := Parse(c.in)
		if c.err == "" && (err != nil || got != c.want) {
			t.Errorf("Parse(%q) = %v, %v; want %v", c.in, got, err, c.want)
		}
		if c.err != "" && (err == nil || !strings.Contains(err.Error(), c.err)) {
			t.Errorf("Parse(%q) error %v; want one mentioning %q", c.in, err, c.err)
		}
	}
}

// TestResolve checks the shard of each --shard value, and that an error
// starts with the flag it is about, named once.
func TestResolve(t *testing.T) {
	slurm := env(map[string]string{"SLURM_ARRAY_TASK_ID": "2", "SLURM_ARRAY_TASK_MIN": "0", "SLURM_ARRAY_TASK_MAX": "3"})
	for _, c := range []struct {
		spec   string
		count  int
		getenv func(string) string
		want   Shard
		err    string // the error's start
	}{
		{"", 0, slurm, Shard{}, ""},
		{"1/3", 0, slurm, Shard{1, 3}, ""},
		{"auto", 0, slurm, Shard{2, 4}, ""},
		{"auto", 4, slurm, Shard{2, 4}, ""},
		{"1/3", 3, slurm, Shard{}, "--shard-count goes with --shard auto"},
		{"", 3, slurm, Shard{}, "--shard-count goes with --shard auto"},
		{"auto", -1, slurm, Shard{}, "--shard auto: --shard-count -1: want a positive count"},
		{"auto", 0, env(nil), Shard{}, "--shard auto: no scheduler shard in the environment"},
		{"auto", 0, env(map[string]string{"JOB_COMPLETION_INDEX": "1"}), Shard{}, "--shard auto: JOB_COMPLETION_INDEX=1 is set"},
		{"x", 0, slurm, Shard{}, `--shard: shard "x": want i/n`},
		{"3/3", 0, slurm, Shard{}, "--shard: shard 3/3: want 0 <= i < n"},
	} {
		got, err := Resolve(c.spec, c.count, c.getenv)
		if c.err == "" && (err != nil || got != c.want) {
			t.Errorf("Resolve(%q, %d) = %v, %v; want %v", c.spec, c.count, got, err, c.want)
		}
		if c.err != "" && (err == nil || !strings.HasPrefix(err.Error(), c.err)) {
			t.Errorf("Resolve(%q, %d) error %v; want one starting %q", c.spec, c.count, err, c.err)
		}
	}
}

func TestFromEnv(t *testing.T) {
	for _, c := range []struct {
		name  string
		vars  map[string]string
		count int // --shard-count
		want  Shard
		err   string
	}{
		{"slurm range", map[string]string{"SLURM_ARRAY_TASK_ID": "0", "SLURM_ARRAY_TASK_MIN": "0", "SLURM_ARRAY_TASK_MAX": "3", "SLURM_ARRAY_TASK_COUNT": "4", "SLURM_ARRAY_TASK_STEP": "1"}, 0, Shard{0, 4}, ""},
		{"slurm range from 1", map[string]string{"SLURM_ARRAY_TASK_ID": "4", "SLURM_ARRAY_TASK_MIN": "1", "SLURM_ARRAY_TASK_MAX": "4"}, 0, Shard{3, 4}, ""},
		{"slurm count only", map[string]string{"SLURM_ARRAY_TASK_ID": "1", "SLURM_ARRAY_TASK_COUNT": "2"}, 0, Shard{1, 2}, ""},
		{"slurm and agreeing --shard-count", map[string]string{"SLURM_ARRAY_TASK_ID": "1", "SLURM_ARRAY_TASK_COUNT": "2"}, 2, Shard{1, 2}, ""},
		{"slurm and agreeing env count", map[string]string{"SLURM_ARRAY_TASK_ID": "1", "SLURM_ARRAY_TASK_COUNT": "2", "UNIMOS_SHARD_COUNT": "2"}, 0, Shard{1, 2}, ""},
		{"kubernetes, --shard-count", map[string]string{"JOB_COMPLETION_INDEX": "3"}, 5, Shard{3, 5}, ""},
		{"kubernetes, env count", map[string]string{"JOB_COMPLETION_INDEX": "0", "UNIMOS_SHARD_COUNT": "2"}, 0, Shard{0, 2}, ""},
		{"kubernetes, both counts", map[string]string{"JOB_COMPLETION_INDEX": "1", "UNIMOS_SHARD_COUNT": "2"}, 2, Shard{1, 2}, ""},
		{"both schedulers agree", map[string]string{"SLURM_ARRAY_TASK_ID": "1", "SLURM_ARRAY_TASK_COUNT": "2", "JOB_COMPLETION_INDEX": "1", "UNIMOS_SHARD_COUNT": "2"}, 0, Shard{1, 2}, ""},

		{"nothing", nil, 0, Shard{}, "no scheduler shard in the environment"},
		{"only a count", map[string]string{"UNIMOS_SHARD_COUNT": "4"}, 0, Shard{}, "no scheduler shard in the environment"},
		{"slurm step", map[string]string{"SLURM_ARRAY_TASK_ID": "2", "SLURM_ARRAY_TASK_MIN": "0", "SLURM_ARRAY_TASK_MAX": "6", "SLURM_ARRAY_TASK_COUNT": "4", "SLURM_ARRAY_TASK_STEP": "2"}, 0, Shard{}, "step 2"},
		{"slurm list with a gap", map[string]string{"SLURM_ARRAY_TASK_ID": "5", "SLURM_ARRAY_TASK_MIN": "1", "SLURM_ARRAY_TASK_MAX": "5", "SLURM_ARRAY_TASK_COUNT": "2"}, 0, Shard{}, "disagree"},
		{"slurm no count", map[string]string{"SLURM_ARRAY_TASK_ID": "1"}, 0, Shard{}, "cannot tell the number of array tasks"},
		{"slurm id outside", map[string]string{"SLURM_ARRAY_TASK_ID": "9", "SLURM_ARRAY_TASK_MIN": "0", "SLURM_ARRAY_TASK_MAX": "3"}, 0, Shard{}, "outside the array's tasks 0-3"},
		{"slurm garbage", map[string]string{"SLURM_ARRAY_TASK_ID": "x", "SLURM_ARRAY_TASK_COUNT": "2"}, 0, Shard{}, `SLURM_ARRAY_TASK_ID="x"`},
		{"slurm vs --shard-count", map[string]string{"SLURM_ARRAY_TASK_ID": "1", "SLURM_ARRAY_TASK_COUNT": "2"}, 3, Shard{}, "--shard-count says 3 shards but the Slurm array has 2 tasks"},
		{"slurm vs env count", map[string]string{"SLURM_ARRAY_TASK_ID": "1", "SLURM_ARRAY_TASK_COUNT": "2", "UNIMOS_SHARD_COUNT": "4"}, 0, Shard{}, "UNIMOS_SHARD_COUNT says 4 shards"},
		{"kubernetes without count", map[string]string{"JOB_COMPLETION_INDEX": "1"}, 0, Shard{}, "give --shard-count N or set UNIMOS_SHARD_COUNT"},
		{"kubernetes index too large", map[string]string{"JOB_COMPLETION_INDEX": "4", "UNIMOS_SHARD_COUNT": "4"}, 0, Shard{}, "not below the shard count 4"},
		{"kubernetes counts disagree", map[string]string{"JOB_COMPLETION_INDEX": "0", "UNIMOS_SHARD_COUNT": "4"}, 3, Shard{}, "--shard-count 3 and UNIMOS_SHARD_COUNT=4 disagree"},
		{"bad env count", map[string]string{"JOB_COMPLETION_INDEX": "0", "UNIMOS_SHARD_COUNT": "0"}, 0, Shard{}, "want a positive count"},
		{"schedulers disagree", map[string]string{"SLURM_ARRAY_TASK_ID": "0", "SLURM_ARRAY_TASK_COUNT": "2", "JOB_COMPLETION_INDEX": "1", "UNIMOS_SHARD_COUNT": "2"}, 0, Shard{}, "Slurm array says shard 0/2 and the Kubernetes Job shard 1/2"},
	} {
		got, err := FromEnv(c.count, env(c.vars))
		if c.err == "" && (err != nil || got != c.want) {
			t.Errorf("%s: FromEnv = %v, %v; want %v", c.name, got, err, c.want)
		}
		if c.err != "" && (err == nil || !strings.Contains(err.Error(), c.err)) {
			t.Errorf("%s: FromEnv error %v; want one mentioning %q", c.name, err, c.err)
		}
	}
}
