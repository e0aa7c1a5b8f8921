package clip

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"testing"

	"github.com/unimos/unimos/internal/shareddata"
	"github.com/unimos/unimos/internal/testkit"
	"github.com/unimos/unimos/safetensors"
	"github.com/unimos/unimos/tensor"
)

// formatsDir returns the shared folder of checkpoints in the formats users
// have (clip_formats/README.md), or skips the test.
func formatsDir(t testing.TB) string {
	t.Helper()
	return shareddata.Dir(t, "clip_formats")
}

// probeEmbeddings encodes a fixed image (the first reference image at the
// model's resolution) and a fixed prompt.
func probeEmbeddings(t *testing.T, m *Model) (img, txt *tensor.Matrix) {
	t.Helper()
	img, err := m.EncodeImages(fixturePixels(t, m.InputResolution())[:1])
	if err != nil {
		t.Fatal(err)
	}
	tok, err := m.Tokenizer()
	if err != nil {
		t.Fatal(err)
	}
	ids, err := tok.Tokenize([]string{"a clipart photo of a File Cabinet."}, m.ContextLength(), true)
	if err != nil {
		t.Fatal(err)
	}
	if txt, err = m.EncodeText(ids); err != nil {
		t.Fatal(err)
	}
	return img, txt
}

// sameEmbeddings fails the test unless both models give bit-identical
// embeddings of the fixed image and prompt.
func sameEmbeddings(t *testing.T, what string, a, b *Model) {
	t.Helper()
	ai, at := probeEmbeddings(t, a)
	bi, bt := probeEmbeddings(t, b)
	if !slices.Equal(ai.Data, bi.Data) {
		t.Errorf("%s: image embeddings differ:\n%v\n%v", what, ai.Data, bi.Data)
	}
	if !slices.Equal(at.Data, bt.Data) {
		t.Errorf("%s: text embeddings differ:\n%v\n%v", what, at.Data, bt.Data)
	}
}

// TestShardedLoadEqualsSingleFile loads the sharded Hugging Face fixture by
// its folder and by its index: both must be exactly the single-file copy of
// the same weights.
func TestShardedLoadEqualsSingleFile(t *testing.T) {
	single, err := Load(filepath.Join(referenceDir(t), "models", "hf_vit_tiny"))
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(formatsDir(t), "hf_sharded")
	for _, path := range []string{dir, filepath.Join(dir, shardIndexName)} {
		sharded, err := Load(path)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(single, sharded) {
			t.Errorf("%s: the model differs from the single-file checkpoint's", path)
		}
		sameEmbeddings(t, path, single, sharded)
	}
}

// writeShards writes each shard (file name -> tensors) into a fresh folder
// with an index holding weightMap, and returns the index's path.
func writeShards(t *testing.T, shards map[string][]*safetensors.Tensor, weightMap map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, ts := range shards {
		if err := safetensors.WriteFile(filepath.Join(dir, name), ts, map[string]string{"format": "pt"}); err != nil {
			t.Fatal(err)
		}
	}
	index, err := json.Marshal(map[string]any{"metadata": map[string]any{"total_size": 0}, "weight_map": weightMap})
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, shardIndexName)
	testkit.WriteFile(t, path, index)
	cfg, err := os.ReadFile(filepath.Join(referenceDir(t), "models", "hf_vit_tiny", "config.json"))
	if err != nil {
		t.Fatal(err)
	}
	testkit.WriteFile(t, filepath.Join(dir, "config.json"), cfg)
	return path
}

// TestShardedIndexErrors breaks a sharded copy of the Hugging Face fixture
// in each way the index and the shards can disagree; each error must name
// the file at fault and the tensor or shard.
func TestShardedIndexErrors(t *testing.T) {
	ts, _ := fixtureTensors(t, filepath.Join("hf_vit_tiny", "model.safetensors"))
	const first, second = "model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors"
	half := len(ts) / 2
	// split returns the two halves and the index that describes them.
	split := func() (map[string][]*safetensors.Tensor, map[string]string) {
		shards := map[string][]*safetensors.Tensor{first: ts[:half], second: ts[half:]}
		weightMap := map[string]string{}
		for name, part := range shards {
			for _, x := range part {
				weightMap[x.Name] = name
			}
		}
		return shards, weightMap
	}
	moved, extra := ts[0].Name, ts[len(ts)-1].Name
	cases := []struct {
		name  string
		edit  func(shards map[string][]*safetensors.Tensor, weightMap map[string]string)
		wants []string // besides the index's path
	}{
		{"intact", func(map[string][]*safetensors.Tensor, map[string]string) {}, nil},
		{"missing shard", func(s map[string][]*safetensors.Tensor, _ map[string]string) { delete(s, second) },
			[]string{"shard " + second + " is missing", "download it again"}},
		{"tensor in another shard than the index says", func(_ map[string][]*safetensors.Tensor, m map[string]string) { m[moved] = second },
			[]string{first, moved, "places in " + second}},
		{"tensor in two shards", func(s map[string][]*safetensors.Tensor, _ map[string]string) {
			s[second] = append(slices.Clone(s[second]), ts[0])
		}, []string{moved, "in two shards", first, second}},
		{"tensor the index does not list", func(_ map[string][]*safetensors.Tensor, m map[string]string) { delete(m, extra) },
			[]string{second, extra, "does not list"}},
		{"listed tensor in no shard", func(s map[string][]*safetensors.Tensor, m map[string]string) {
			s[second] = s[second][:len(s[second])-1]
		}, []string{second, extra, "has no tensor"}},
		{"shard outside the folder", func(_ map[string][]*safetensors.Tensor, m map[string]string) { m[moved] = "../" + first },
			[]string{`"../` + first + `"`, "not a file name in the index's folder"}},
		{"empty index", func(_ map[string][]*safetensors.Tensor, m map[string]string) { clear(m) },
			[]string{"lists no tensors"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			shards, weightMap := split()
			c.edit(shards, weightMap)
			index := writeShards(t, shards, weightMap)
			if c.wants == nil {
				if _, err := Load(filepath.Dir(index)); err != nil {
					t.Fatal(err)
				}
				return
			}
			wantLoadError(t, filepath.Dir(index), append([]string{index}, c.wants...)...)
		})
	}
}

// FuzzShardedIndex reads fuzzed shard indexes beside the two shards of the
// sharded fixture. No index may make openSharded panic, or allocate more
// than twice what opening the fixture through its own index takes (room
// for the garbage collector's and the runtime's own allocations) plus 64
// bytes per index byte, as interop's fuzzers allow; an index it accepts
// lists exactly the tensors it hands out, each readable.
func FuzzShardedIndex(f *testing.F) {
	fixture := filepath.Join(formatsDir(f), "hf_sharded")
	own, err := os.ReadFile(filepath.Join(fixture, shardIndexName))
	if err != nil {
		f.Fatal(err)
	}
	const first, second = "model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors"
	f.Add(own)
	f.Add(bytes.ReplaceAll(own, []byte(second), []byte(first)))
	f.Add(bytes.Replace(own, []byte(first), []byte("../"+first), 1))
	f.Add([]byte(`{"weight_map": {"logit_scale": "` + first + `", "logit_scale": "` + second + `"}}`))
	f.Add([]byte(`{"weight_map": {"x": "` + shardIndexName + `"}}`))
	f.Add([]byte(`{"weight_map": {}}`))

	dir := f.TempDir()
	for _, shard := range []string{first, second} {
		copyFile(f, filepath.Join(fixture, shard), filepath.Join(dir, shard))
	}
	index := filepath.Join(dir, shardIndexName)
	testkit.WriteFile(f, index, own)
	var baseline uint64 // what the fixture's own index takes
	for range 2 {       // the second time, without one-time setup
		baseline = testkit.Allocated(func() {
			s, err := openSharded(index)
			if err != nil {
				f.Fatal(err)
			}
			s.Close()
		})
	}

	f.Fuzz(func(t *testing.T, data []byte) {
		testkit.WriteFile(t, index, data)
		var s *shardedFile
		var err error
		used := testkit.Allocated(func() { s, err = openSharded(index) })
		if budget := 2*baseline + 64*uint64(len(data)); used > budget {
			t.Fatalf("a %d-byte index allocated %d bytes, over the budget of %d", len(data), used, budget)
		}
		if err != nil {
			return
		}
		defer s.Close()
		var parsed struct {
			WeightMap map[string]string `json:"weight_map"`
		}
		if err := json.Unmarshal(data, &parsed); err != nil {
			t.Fatalf("accepted an index that is not JSON: %v", err)
		}
		names := s.Names()
		if len(names) != len(parsed.WeightMap) {
			t.Fatalf("%d tensors for an index listing %d", len(names), len(parsed.WeightMap))
		}
		for _, name := range names {
			if _, listed := parsed.WeightMap[name]; !listed {
				t.Fatalf("tensor %q is not in the index", name)
			}
			if _, err := s.Tensor(name); err != nil {
				t.Fatalf("listed tensor %q: %v", name, err)
			}
		}
	})
}
