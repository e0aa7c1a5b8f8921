// Package shard names one slice of a job split over n processes ("i/n"),
// given on the command line or found in the environment a cluster scheduler
// sets: a Slurm array task or a Kubernetes Indexed Job's pod. extract deals
// out its batches by shard, bench its runs.
package shard

import (
	"fmt"
	"strconv"
	"strings"
)

// Shard is slice Index of Count (0 <= Index < Count). The zero Shard
// (Count 0) means the whole job, unsharded.
type Shard struct {
	Index int `json:"index"`
	Count int `json:"count"`
}

// String returns "i/n".
func (s Shard) String() string { return fmt.Sprintf("%d/%d", s.Index, s.Count) }

// Validate checks 0 <= Index < Count.
func (s Shard) Validate() error {
	if s.Count < 1 || s.Index < 0 || s.Index >= s.Count {
		return fmt.Errorf("shard %d/%d: want 0 <= i < n", s.Index, s.Count)
	}
	return nil
}

// Auto is the --shard value that takes the shard from the scheduler's
// environment (see FromEnv).
const Auto = "auto"

// Environment variables read by FromEnv.
const (
	// CountEnv gives the shard count where the scheduler does not: a
	// Kubernetes Indexed Job exports its pod's index but not the Job's
	// completions.
	CountEnv = "UNIMOS_SHARD_COUNT"
	// KubernetesIndexEnv is set by Kubernetes in every pod of an Indexed Job.
	KubernetesIndexEnv = "JOB_COMPLETION_INDEX"
	// Slurm array variables.
	SlurmTaskIDEnv = "SLURM_ARRAY_TASK_ID"
	slurmMinEnv    = "SLURM_ARRAY_TASK_MIN"
	slurmMaxEnv    = "SLURM_ARRAY_TASK_MAX"
	slurmCountEnv  = "SLURM_ARRAY_TASK_COUNT"
	slurmStepEnv   = "SLURM_ARRAY_TASK_STEP"
)

// Parse reads "i/n" with 0 <= i < n.
func Parse(s string) (Shard, error) {
	a, b, ok := strings.Cut(s, "/")
	i, err1 := strconv.Atoi(a)
	n, err2 := strconv.Atoi(b)
	if !ok || err1 != nil || err2 != nil {
		return Shard{}, fmt.Errorf("shard %q: want i/n, e.g. 0/4, or %s", s, Auto)
	}
	sh := Shard{Index: i, Count: n}
	return sh, sh.Validate()
}

// Resolve reads a --shard value: "" (unsharded: the zero Shard), "i/n", or
// Auto (FromEnv with count, the --shard-count value, 0 when not given).
// getenv is os.Getenv outside tests. Its errors start with the flag they
// are about, once, so that a command can show them as they are.
func Resolve(spec string, count int, getenv func(string) string) (Shard, error) {
	switch {
	case spec == Auto:
		s, err := FromEnv(count, getenv)
		if err != nil {
			return Shard{}, fmt.Errorf("--shard %s: %w", Auto, err)
		}
		return s, nil
	case count != 0:
		return Shard{}, fmt.Errorf("--shard-count goes with --shard %s; --shard i/n names the count itself", Auto)
	case spec == "":
		return Shard{}, nil
	}
	s, err := Parse(spec)
	if err != nil {
		return Shard{}, fmt.Errorf("--shard: %w", err)
	}
	return s, nil
}

// FromEnv finds the shard of this process in the environment:
//
//   - a Slurm array task: the index is SLURM_ARRAY_TASK_ID minus
//     SLURM_ARRAY_TASK_MIN, the count SLURM_ARRAY_TASK_COUNT or MAX-MIN+1;
//     the array must be a range without gaps (--array=0-3, not 0-6:2 or
//     1,5), since a gap would leave a shard unrun;
//   - a Kubernetes Indexed Job's pod: the index is JOB_COMPLETION_INDEX, the
//     count comes from count (--shard-count) or UNIMOS_SHARD_COUNT, since
//     Kubernetes does not export the Job's completions.
//
// count, when not 0, must agree with the scheduler's count (and with
// UNIMOS_SHARD_COUNT when both are set). It is an error when no scheduler
// variable is set, or when the values disagree.
func FromEnv(count int, getenv func(string) string) (Shard, error) {
	if count < 0 {
		return Shard{}, fmt.Errorf("--shard-count %d: want a positive count", count)
	}
	given, err := givenCount(count, getenv)
	if err != nil {
		return Shard{}, err
	}
	slurm, inSlurm, err := slurmShard(getenv)
	if err != nil {
		return Shard{}, err
	}
	kube, inKube, err := kubernetesShard(given, getenv)
	if err != nil {
		return Shard{}, err
	}
	switch {
	case inSlurm && inKube && slurm != kube:
		return Shard{}, fmt.Errorf("the Slurm array says shard %v and the Kubernetes Job shard %v: give --shard i/n", slurm, kube)
	case inSlurm:
		if given.n != 0 && given.n != slurm.Count {
			return Shard{}, fmt.Errorf("%s says %d shards but the Slurm array has %d tasks: drop it or make them agree", given.from, given.n, slurm.Count)
		}
		return slurm, nil
	case inKube:
		return kube, nil
	}
	return Shard{}, fmt.Errorf("no scheduler shard in the environment (neither %s of a Slurm array job, sbatch --array=0-N, nor %s of a Kubernetes Indexed Job is set); give --shard i/n",
		SlurmTaskIDEnv, KubernetesIndexEnv)
}

// countSource is a shard count given by the user, and where.
type countSource struct {
	n    int
	from string // "--shard-count" or the variable's name
}

// givenCount is the count of --shard-count and UNIMOS_SHARD_COUNT, which
// must agree when both are set.
func givenCount(flag int, getenv func(string) string) (countSource, error) {
	env := getenv(CountEnv)
	if env == "" {
		if flag == 0 {
			return countSource{}, nil
		}
		return countSource{flag, "--shard-count"}, nil
	}
	n, err := strconv.Atoi(env)
	if err != nil || n < 1 {
		return countSource{}, fmt.Errorf("%s=%q: want a positive count", CountEnv, env)
	}
	if flag != 0 && flag != n {
		return countSource{}, fmt.Errorf("--shard-count %d and %s=%d disagree", flag, CountEnv, n)
	}
	if flag != 0 {
		return countSource{flag, "--shard-count"}, nil
	}
	return countSource{n, CountEnv}, nil
}

// slurmShard reads the Slurm array variables; ok is false outside an
// array task.
func slurmShard(getenv func(string) string) (s Shard, ok bool, err error) {
	if getenv(SlurmTaskIDEnv) == "" {
		return Shard{}, false, nil
	}
	id, err := envInt(getenv, SlurmTaskIDEnv, true)
	if err != nil {
		return Shard{}, true, err
	}
	lo, err := envInt(getenv, slurmMinEnv, false)
	if err != nil {
		return Shard{}, true, err
	}
	hi, err := envInt(getenv, slurmMaxEnv, false)
	if err != nil {
		return Shard{}, true, err
	}
	count, err := envInt(getenv, slurmCountEnv, false)
	if err != nil {
		return Shard{}, true, err
	}
	step, err := envInt(getenv, slurmStepEnv, false)
	if err != nil {
		return Shard{}, true, err
	}
	haveRange := getenv(slurmMinEnv) != "" && getenv(slurmMaxEnv) != ""
	switch {
	case !haveRange && getenv(slurmCountEnv) == "":
		return Shard{}, true, fmt.Errorf("%s is set but neither %s/%s nor %s: cannot tell the number of array tasks; give --shard i/n",
			SlurmTaskIDEnv, slurmMinEnv, slurmMaxEnv, slurmCountEnv)
	case step > 1:
		return Shard{}, true, fmt.Errorf("the Slurm array has step %d (%s): submit a range without gaps, --array=0-%d, one task per shard", step, slurmStepEnv, count-1)
	case haveRange && getenv(slurmCountEnv) != "" && count != hi-lo+1:
		return Shard{}, true, fmt.Errorf("the Slurm array has %d tasks between %d and %d (%s, %s, %s disagree): submit a range without gaps, --array=0-%d, one task per shard",
			count, lo, hi, slurmCountEnv, slurmMinEnv, slurmMaxEnv, count-1)
	}
	if !haveRange {
		lo = 0 // a count alone: task ids 0..count-1
	} else {
		count = hi - lo + 1
	}
	s = Shard{Index: id - lo, Count: count}
	if err := s.Validate(); err != nil {
		return Shard{}, true, fmt.Errorf("%s=%d is outside the array's tasks %d-%d", SlurmTaskIDEnv, id, lo, lo+count-1)
	}
	return s, true, nil
}

// kubernetesShard reads JOB_COMPLETION_INDEX with the count the user gave;
// ok is false outside an Indexed Job.
func kubernetesShard(given countSource, getenv func(string) string) (s Shard, ok bool, err error) {
	if getenv(KubernetesIndexEnv) == "" {
		return Shard{}, false, nil
	}
	i, err := envInt(getenv, KubernetesIndexEnv, true)
	if err != nil {
		return Shard{}, true, err
	}
	if given.n == 0 {
		return Shard{}, true, fmt.Errorf("%s=%d is set, but Kubernetes does not export the number of completions: give --shard-count N or set %s to the Job's completions",
			KubernetesIndexEnv, i, CountEnv)
	}
	s = Shard{Index: i, Count: given.n}
	if s.Validate() != nil {
		return Shard{}, true, fmt.Errorf("%s=%d is not below the shard count %d (%s): make it the Job's completions", KubernetesIndexEnv, i, given.n, given.from)
	}
	return s, true, nil
}

// envInt reads a non-negative integer variable; an unset one is 0, an error
// when required.
func envInt(getenv func(string) string, name string, required bool) (int, error) {
	v := getenv(name)
	if v == "" {
		if required {
			return 0, fmt.Errorf("%s is not set", name)
		}
		return 0, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 0 {
		return 0, fmt.Errorf("%s=%q: want a non-negative integer", name, v)
	}
	return n, nil
}
