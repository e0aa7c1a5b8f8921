package clip

import (
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/unimos/unimos/internal/testkit"
)

// TestSpecialSideFiles puts a named pipe and /dev/zero where each file
// read beside the weights belongs (a Hugging Face config.json, an open_clip
// config, a shard index, the tokenizer's vocab.json and merges.txt, a Hub
// cache's refs/main, the weights whose SHA-256 is checked): each must be
// refused at once with an error naming it, where reading it would block
// forever or fill memory.
func TestSpecialSideFiles(t *testing.T) {
	readers := []struct {
		name string
		read func(path string) error
	}{
		{"config.json", func(p string) error { return applyHFConfig(&Config{}, p) }},
		{"open_clip_config.json", func(p string) error { return applyOpenCLIPConfig(&Config{}, p) }},
		{shardIndexName, func(p string) error { _, err := openSharded(p); return err }},
		{"vocab.json", func(p string) error {
			merges := filepath.Join(t.TempDir(), "merges.txt")
			if err := os.WriteFile(merges, []byte("#version: 0.2\n"), 0o644); err != nil {
				t.Fatal(err)
			}
			_, err := NewTokenizerFromHF(p, merges)
			return err
		}},
		{"merges.txt", func(p string) error {
			vocab := filepath.Join(t.TempDir(), "vocab.json")
			if err := os.WriteFile(vocab, []byte(`{"a": 0}`), 0o644); err != nil {
				t.Fatal(err)
			}
			_, err := NewTokenizerFromHF(vocab, p)
			return err
		}},
		{"refs/main", func(p string) error {
			repo := filepath.Dir(filepath.Dir(p))
			if err := os.MkdirAll(filepath.Join(repo, "snapshots", "abc"), 0o755); err != nil {
				t.Fatal(err)
			}
			_, err := hubSnapshot(repo)
			return err
		}},
		{"RN50.pt", func(p string) error { _, err := fileSHA256(p, io.Discard); return err }},
	}
	specials := []struct {
		kind string
		make func(t testing.TB, path string)
	}{
		{"named pipe", testkit.MakeFIFO},
		{"character device", testkit.LinkToDevZero},
	}
	for _, r := range readers {
		for _, s := range specials {
			path := filepath.Join(t.TempDir(), "repo", r.name)
			if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
				t.Fatal(err)
			}
			s.make(t, path)
			var err error
			testkit.Within(t, 5*time.Second, func() { err = r.read(path) })
			if err == nil || !strings.Contains(err.Error(), s.kind) || !strings.Contains(err.Error(), r.name) {
				t.Errorf("%s as a %s: got %v, want an error naming it as a %s", r.name, s.kind, err, s.kind)
			}
		}
	}
}
