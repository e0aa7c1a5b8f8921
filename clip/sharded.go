package clip

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"slices"

	"github.com/unimos/unimos/internal/regularfile"
	"github.com/unimos/unimos/safetensors"
)

// shardIndexName is the file that lists the shards of a Hugging Face
// sharded safetensors checkpoint (model-00001-of-00002.safetensors, ...).
const shardIndexName = "model.safetensors.index.json"

// shardedFile is a sharded checkpoint: its index and the shards it names,
// each tensor in exactly one of them.
type shardedFile struct {
	index  string                       // the index file's path
	shards []*safetensors.File          // in the order of their file names
	where  map[string]*safetensors.File // tensor name -> the shard holding it
}

// openSharded reads the shard index at path and opens every shard it
// names, checking that the shards hold exactly the tensors the index says
// they do: a missing shard, a tensor missing from its shard, a tensor the
// index does not list and a tensor in two shards are errors naming the
// files.
func openSharded(path string) (_ *shardedFile, err error) {
	data, err := regularfile.ReadFile(path, "a JSON file", maxJSONBytes)
	if err != nil {
		return nil, fmt.Errorf("clip: %w", err)
	}
	var index struct {
		WeightMap map[string]string `json:"weight_map"`
	}
	if err := json.Unmarshal(data, &index); err != nil {
		return nil, fmt.Errorf("clip: %s: not a shard index: %w", path, err)
	}
	if len(index.WeightMap) == 0 {
		return nil, fmt.Errorf("clip: %s: the shard index lists no tensors (its \"weight_map\" is empty or missing)", path)
	}

	s := &shardedFile{index: path, where: map[string]*safetensors.File{}}
	defer func() {
		if err != nil {
			s.Close()
		}
	}()
	dir := filepath.Dir(path)
	byName := map[string]*safetensors.File{} // shard file name -> shard
	for _, shard := range sortedShardNames(index.WeightMap) {
		// Shards lie beside the index: a name that leads elsewhere is refused
		// rather than followed.
		if shard != filepath.Base(shard) || !filepath.IsLocal(shard) {
			return nil, fmt.Errorf("clip: %s: shard %q is not a file name in the index's folder", path, shard)
		}
		shardPath := filepath.Join(dir, shard)
		if _, statErr := os.Stat(shardPath); errors.Is(statErr, fs.ErrNotExist) {
			return nil, fmt.Errorf("clip: %s: shard %s is missing; the checkpoint is incomplete: download it again", path, shard)
		}
		f, err := safetensors.Open(shardPath)
		if err != nil {
			return nil, fmt.Errorf("clip: %w", err)
		}
		s.shards = append(s.shards, f)
		byName[shard] = f
	}
	for _, f := range s.shards {
		for _, name := range f.Names() {
			if other, twice := s.where[name]; twice {
				return nil, fmt.Errorf("clip: %s: tensor %q is in two shards, %s and %s", path, name, other.Path(), f.Path())
			}
			listed, ok := index.WeightMap[name]
			if !ok {
				return nil, fmt.Errorf("clip: %s: holds tensor %q, which the shard index %s does not list", f.Path(), name, path)
			}
			if byName[listed] != f {
				return nil, fmt.Errorf("clip: %s: holds tensor %q, which the shard index %s places in %s", f.Path(), name, path, listed)
			}
			s.where[name] = f
		}
	}
	for _, name := range slices.Sorted(maps.Keys(index.WeightMap)) {
		if s.where[name] == nil {
			return nil, fmt.Errorf("clip: %s: has no tensor %q, which the shard index %s places there", filepath.Join(dir, index.WeightMap[name]), name, path)
		}
	}
	return s, nil
}

// sortedShardNames returns the distinct shard file names of a weight map,
// sorted (model-00001-of-00002 before model-00002-of-00002).
func sortedShardNames(weightMap map[string]string) []string {
	return slices.Compact(slices.Sorted(maps.Values(weightMap)))
}

// Path returns the index file's path.
func (s *shardedFile) Path() string { return s.index }

// Names lists the tensors shard by shard, each in its shard's order.
func (s *shardedFile) Names() []string {
	var names []string
	for _, f := range s.shards {
		names = append(names, f.Names()...)
	}
	return names
}

// Tensor returns the named tensor from the shard that holds it.
func (s *shardedFile) Tensor(name string) (*safetensors.Tensor, error) {
	f, ok := s.where[name]
	if !ok {
		return nil, fmt.Errorf("clip: %s: no tensor %q in any shard", s.index, name)
	}
	return f.Tensor(name)
}

// Metadata merges the shards' metadata; where two shards state a key, the
// first shard's value counts. (The index's own "metadata", the total size,
// describes the files, not the model.)
func (s *shardedFile) Metadata() map[string]string {
	md := map[string]string{}
	for _, f := range s.shards {
		for k, v := range f.Metadata() {
			if _, set := md[k]; !set {
				md[k] = v
			}
		}
	}
	return md
}

// Close closes every shard.
func (s *shardedFile) Close() error {
	var first error
	for _, f := range s.shards {
		if err := f.Close(); err != nil && first == nil {
			first = err
		}
	}
	return first
}
