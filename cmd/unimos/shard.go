package main

import (
	"flag"
	"os"

	"github.com/unimos/unimos/internal/shard"
)

// shardFlags are --shard and --shard-count, shared by extract and bench.
type shardFlags struct {
	spec  *string
	count *int
}

// addShardFlags defines --shard and --shard-count on fs; what names the
// unit dealt out ("batches", "runs").
func addShardFlags(fs *flag.FlagSet, what string) shardFlags {
	return shardFlags{
		spec: fs.String("shard", "", "do only shard `i/n` of the "+what+" (0 <= i < n), or 'auto': the shard of this Slurm array task ("+
			shard.SlurmTaskIDEnv+") or Kubernetes Indexed Job pod ("+shard.KubernetesIndexEnv+")"),
		count: fs.Int("shard-count", 0, "with --shard auto in a Kubernetes Indexed Job: the number of shards `N`, the Job's completions (or set "+shard.CountEnv+")"),
	}
}

// resolve returns the shard asked for (the zero Shard: unsharded), with a
// usage error naming the problem (shard.Resolve's errors name the flag).
func (f shardFlags) resolve() (shard.Shard, error) {
	s, err := shard.Resolve(*f.spec, *f.count, os.Getenv)
	if err != nil {
		return s, usageError{err.Error()}
	}
	return s, nil
}
