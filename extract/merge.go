package extract

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/unimos/unimos/features"
	"github.com/unimos/unimos/internal/regularfile"
	"github.com/unimos/unimos/internal/words"
	"github.com/unimos/unimos/safetensors"
	"github.com/unimos/unimos/tensor"
)

// Merge joins the finished shards of one extraction (the folders written by
// Run with Options.Shard) into the feature store out, identical to the one
// an unsharded run would have written. It checks that every shard is
// finished, that they agree on the model, dataset, classes, prompt, dtype,
// batch size and shard count, and that each shard index appears exactly
// once. out must not hold a store already.
func Merge(out string, shards []string) (*Summary, error) {
	if len(shards) == 0 {
		return nil, errors.New("extract: merge: no shard folders")
	}
	plans := make([]*Plan, len(shards))
	for i, dir := range shards {
		p, err := readPlan(filepath.Join(dir, shardFile))
		if errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("extract: merge: %s is not a finished shard: it has no %s (an interrupted shard resumes when its extract command is run again)", dir, shardFile)
		}
		if err != nil {
			return nil, fmt.Errorf("extract: merge: %w", err)
		}
		if p.Shard == nil {
			return nil, fmt.Errorf("extract: merge: %s: the plan names no shard", filepath.Join(dir, shardFile))
		}
		plans[i] = p
	}
	for i, p := range plans[1:] {
		if d := plans[0].diff(p); d != "" {
			return nil, fmt.Errorf("extract: merge: shards %s and %s come from different extractions: %s", shards[0], shards[i+1], d)
		}
	}
	n := plans[0].Shard.Count
	byIndex := make([]string, n) // shard folder by shard index
	for i, p := range plans {
		if prev := byIndex[p.Shard.Index]; prev != "" {
			return nil, fmt.Errorf("extract: merge: %s and %s are both shard %v", prev, shards[i], p.Shard)
		}
		byIndex[p.Shard.Index] = shards[i]
	}
	var missing []string
	for i, dir := range byIndex {
		if dir == "" {
			missing = append(missing, Shard{Index: i, Count: n}.String())
		}
	}
	if len(missing) > 0 {
		return nil, fmt.Errorf("extract: merge: missing %s of %d: %s", words.Count(len(missing), "shard"), n, strings.Join(missing, ", "))
	}
	for _, dir := range shards {
		if sameFolder(dir, out) {
			return nil, fmt.Errorf("extract: merge: the output folder %s is one of the shards", out)
		}
	}
	if exists(filepath.Join(out, features.DatasetFile)) {
		return nil, fmt.Errorf("extract: merge: %s already holds a feature store; remove it or choose another output folder", out)
	}

	plan := plans[0]
	sum := &Summary{Plan: plan}
	for d, dom := range plan.Domains {
		images, err := readImageList(byIndex[0], plan, d)
		if err != nil {
			return nil, err
		}
		chunk := func(b int) string {
			return chunkPath(filepath.Join(byIndex[plan.shardOf(d, b, n)], chunksDir, dom.Name), b)
		}
		store, skips, err := assembleDomain(plan, d, images, chunk)
		if err != nil {
			return nil, fmt.Errorf("extract: merge: %w", err)
		}
		text, err := readText(filepath.Join(byIndex[0], features.TextDir, dom.Name+".safetensors"), len(plan.Classes), plan.Dim)
		if err != nil {
			return nil, err
		}
		if err := features.WriteDomain(out, store); err != nil {
			return nil, err
		}
		if err := features.WriteText(out, dom.Name, text); err != nil {
			return nil, err
		}
		sum.Images += len(images)
		sum.Skipped = append(sum.Skipped, skips...)
		sum.Unlabelled += unlabelledRows(images, 0, len(images), skips)
	}
	if err := writeSkipped(out, sum.Skipped); err != nil {
		return nil, err
	}
	return sum, features.WriteDataset(out, plan.dataset())
}

// sameFolder reports whether a and b name the same existing folder.
func sameFolder(a, b string) bool {
	sa, errA := os.Stat(a)
	sb, errB := os.Stat(b)
	return errA == nil && errB == nil && os.SameFile(sa, sb)
}

// readImageList reads a shard's images.txt of domain d and checks it
// against the plan.
func readImageList(shard string, p *Plan, d int) ([]Image, error) {
	path := filepath.Join(shard, chunksDir, p.Domains[d].Name, imagesFile)
	raw, err := regularfile.ReadFile(path, "a text file", maxListBytes)
	if err != nil {
		return nil, fmt.Errorf("extract: merge: %w", err)
	}
	if got := sha256Hex(raw); got != p.Domains[d].ListSHA256 {
		return nil, fmt.Errorf("extract: merge: %s does not match the SHA-256 in %s", path, filepath.Join(shard, shardFile))
	}
	images, err := parseImageList(path, raw, len(p.Classes))
	if err != nil {
		return nil, err
	}
	if len(images) != p.Domains[d].Images {
		return nil, fmt.Errorf("extract: merge: %s lists %s; the plan says %d", path, words.Count(len(images), "image"), p.Domains[d].Images)
	}
	return images, nil
}

// readText reads the text features a shard wrote with features.WriteText.
func readText(path string, classes, dim int) (*tensor.Matrix, error) {
	f, err := safetensors.Open(path)
	if err != nil {
		return nil, fmt.Errorf("extract: merge: %w", err)
	}
	defer f.Close()
	t, err := f.Tensor(features.TextFeaturesTensor)
	if err != nil {
		return nil, fmt.Errorf("extract: merge: %w", err)
	}
	if len(t.Shape) != 2 || t.Shape[0] != classes || t.Shape[1] != dim {
		return nil, fmt.Errorf("extract: merge: %s: %q has shape %v; want [%d, %d]", path, t.Name, t.Shape, classes, dim)
	}
	m := tensor.New(t.Shape[0], t.Shape[1])
	if err := t.Float32Into(m.Data); err != nil {
		return nil, fmt.Errorf("extract: merge: %w", err)
	}
	return m, nil
}
