package main

import (
	"github.com/unimos/unimos/extract"
	"github.com/unimos/unimos/internal/words"
)

func runMerge(ctx *context, args []string) error {
	fs := newFlags(ctx, "merge", "--out DIR SHARD_DIR...", `
Joins the shards written by 'unimos extract --shard i/n' into the feature
store DIR, the same, byte for byte, as an unsharded extraction. Every shard
0/n ... n-1/n must be given exactly once, finished, and from the same model,
images, classes, prompt, dtype and batch size; merge says which differs.
Flags come before the shard folders.`)
	out := fs.String("out", "", "output feature store `DIR`")
	if err := parseFlags(fs, args, anyArgs); err != nil {
		return err
	}
	if err := requireFlags(fs, "out"); err != nil {
		return err
	}
	if fs.NArg() == 0 {
		return usagef("no shard folders given")
	}
	sum, err := extract.Merge(*out, fs.Args())
	if err != nil {
		return err
	}
	printStoreSummary(ctx.stdout, *out, "feature store merged from "+words.Count(fs.NArg(), "shard"), sum)
	return nil
}
