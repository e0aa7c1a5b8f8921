package clip

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"os"
	"path"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
	"testing"

	"github.com/unimos/unimos/internal/testkit"
)

// isolateCaches points every cache variable and the home folder at fresh
// temporary folders (or leaves them unset, for the names not in set), so
// that no test sees the machine's real caches. It returns the home folder.
func isolateCaches(t *testing.T, set map[string]string) string {
	t.Helper()
	home := t.TempDir()
	t.Setenv("HOME", home)
	for _, v := range []string{"XDG_CACHE_HOME", "HF_HUB_CACHE", "HF_HOME"} {
		t.Setenv(v, set[v])
	}
	return home
}

// copyFile copies src to dst, creating dst's folder.
func copyFile(t testing.TB, src, dst string) {
	t.Helper()
	data, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		t.Fatal(err)
	}
	testkit.WriteFile(t, dst, data)
}

// TestOpenAIModelTable checks the names and addresses copied from
// openai/CLIP's clip.py: the nine names, each address's file named as
// clip.load saves it and carrying a SHA-256.
func TestOpenAIModelTable(t *testing.T) {
	want := []string{"RN50", "RN101", "RN50x4", "RN50x16", "RN50x64", "ViT-B/32", "ViT-B/16", "ViT-L/14", "ViT-L/14@336px"}
	hexDigest := regexp.MustCompile(`^[0-9a-f]{64}$`)
	var names []string
	for _, m := range openAIModels {
		names = append(names, m.name)
		file := strings.NewReplacer("/", "-", "@", "-").Replace(m.name) + ".pt"
		if !strings.HasPrefix(m.url, "https://openaipublic.azureedge.net/clip/models/") || path.Base(m.url) != file {
			t.Errorf("%s: address %s, want a file %s from OpenAI", m.name, m.url, file)
		}
		if !hexDigest.MatchString(publishedSHA256(m.url)) {
			t.Errorf("%s: address %s carries no SHA-256", m.name, m.url)
		}
	}
	if !reflect.DeepEqual(names, want) {
		t.Errorf("names %v, want %v", names, want)
	}
}

// TestResolveOpenAIName finds fake downloads (a fixture under OpenAI's file
// name, so its SHA-256 is not the published one) in the caches clip.load
// uses, and checks what is said on stderr and when nothing is found.
func TestResolveOpenAIName(t *testing.T) {
	fixture := filepath.Join(referenceDir(t), "models", "vit_tiny.safetensors")
	const b16 = "https://openaipublic.azureedge.net/clip/models/5806e77cd80f8b59890b7e101eabd078d9fb84e6937f9e85e4ecb61988df416f/ViT-B-16.pt"
	cases := []struct {
		name    string
		xdg     bool     // set XDG_CACHE_HOME
		files   []string // fake downloads, relative to "xdg" or "home"
		want    string   // the path found, relative likewise; "" for an error
		wantOut []string // in stderr, or in the error; {root} and {home} stand for the folders
	}{
		{"ViT-B/16", true, []string{"xdg/clip/ViT-B-16.pt"}, "xdg/clip/ViT-B-16.pt",
			[]string{"warning: ", "xdg/clip/ViT-B-16.pt is not the file OpenAI publishes as ViT-B/16", "damaged or another model", "5806e77cd80f8b59890b7e101eabd078d9fb84e6937f9e85e4ecb61988df416f", b16}},
		{"RN50", false, []string{"home/.cache/clip/RN50.pt"}, "home/.cache/clip/RN50.pt", []string{"RN50.pt is not the file OpenAI publishes as RN50"}},
		{"ViT-L/14@336px", true, []string{"home/.cache/clip/ViT-L-14-336px.pt"}, "home/.cache/clip/ViT-L-14-336px.pt", []string{"warning: "}},
		{"ViT-B/16", true, []string{"xdg/clip/ViT-B-16.pt", "home/.cache/clip/ViT-B-16.pt"}, "xdg/clip/ViT-B-16.pt", []string{"warning: "}},
		{"ViT-B/16", true, []string{"home/.cache/clip/RN50.pt"}, "",
			[]string{"ViT-B/16: no such file or folder", "{root}/xdg/clip/ViT-B-16.pt or {home}/.cache/clip/ViT-B-16.pt;", "unimos downloads nothing", b16, `clip.load("ViT-B/16")`}},
		{"RN50", false, nil, "", []string{"RN50.pt is not in {home}/.cache/clip/RN50.pt;", "download https://openaipublic.azureedge.net/clip/models/afeb0e10f9e5a86da6080e35cf09123aca3b358a0c3e3b6c78a7b63bc04b6762/RN50.pt into {home}/.cache/clip "}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			root := t.TempDir()
			set := map[string]string{}
			if c.xdg {
				set["XDG_CACHE_HOME"] = filepath.Join(root, "xdg")
			}
			home := isolateCaches(t, set)
			abs := func(rel string) string {
				if after, ok := strings.CutPrefix(rel, "home/"); ok {
					return filepath.Join(home, after)
				}
				return filepath.Join(root, rel)
			}
			for _, f := range c.files {
				copyFile(t, fixture, abs(f))
			}
			var stderr bytes.Buffer
			got, err := Resolve(c.name, &stderr)
			out := stderr.String()
			if c.want == "" {
				if err == nil {
					t.Fatalf("found %s, want an error", got)
				}
				out = err.Error()
			} else if err != nil {
				t.Fatal(err)
			} else if got != abs(c.want) {
				t.Errorf("found %s, want %s", got, abs(c.want))
			}
			for _, w := range c.wantOut {
				w = strings.NewReplacer("{root}", root, "{home}", home).Replace(w)
				if !strings.Contains(out, w) {
					t.Errorf("%q does not say %q", out, w)
				}
			}
		})
	}
}

// TestResolvePathWins: a file or folder that exists is used as it is, even
// when it is spelt like a model name that the cache also holds.
func TestResolvePathWins(t *testing.T) {
	home := isolateCaches(t, nil)
	copyFile(t, filepath.Join(referenceDir(t), "models", "vit_tiny.safetensors"), filepath.Join(home, ".cache", "clip", "ViT-B-16.pt"))
	work := t.TempDir()
	testkit.WriteFile(t, filepath.Join(work, "ViT-B", "16"), []byte("weights"))
	t.Chdir(work)
	var stderr bytes.Buffer
	got, err := Resolve("ViT-B/16", &stderr)
	if err != nil || got != "ViT-B/16" || stderr.Len() > 0 {
		t.Errorf("Resolve = %q, %v (stderr %q), want the local file ViT-B/16 untouched", got, err, stderr.String())
	}
}

// TestResolveCacheEntryNotAFile: a folder where the download should be.
func TestResolveCacheEntryNotAFile(t *testing.T) {
	home := isolateCaches(t, nil)
	if err := os.MkdirAll(filepath.Join(home, ".cache", "clip", "RN50.pt"), 0o755); err != nil {
		t.Fatal(err)
	}
	_, err := Resolve("RN50", io.Discard)
	if err == nil || !strings.Contains(err.Error(), "RN50.pt is not a regular file") {
		t.Errorf("error %v, want one saying the entry is not a file", err)
	}
}

// TestCheckSHA256 checks a small file against its own digest (silence),
// against another (a warning naming the file, both digests and the
// address), and the note printed while hashing is slow.
func TestCheckSHA256(t *testing.T) {
	file := filepath.Join(t.TempDir(), "RN50.pt")
	content := bytes.Repeat([]byte("not really a model "), 1000)
	testkit.WriteFile(t, file, content)
	sum := sha256.Sum256(content)
	digest := hex.EncodeToString(sum[:])
	other := strings.Repeat("0", 64)
	const url = "https://example.invalid/RN50.pt"

	cases := []struct {
		name, want string
		slow       bool
		wantOut    []string // nil: silence
	}{
		{"match", digest, false, nil},
		{"mismatch", other, false, []string{"warning: " + file + " is not the file OpenAI publishes as RN50", digest, other, url}},
		{"slow", digest, true, []string{"note: checking the SHA-256 of " + file}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if c.slow {
				saved := slowHash
				slowHash = -1 // every hash is slow
				t.Cleanup(func() { slowHash = saved })
			}
			var stderr bytes.Buffer
			if err := checkSHA256(file, c.want, "RN50", url, &stderr); err != nil {
				t.Fatal(err)
			}
			out := stderr.String()
			if c.wantOut == nil && out != "" {
				t.Errorf("stderr %q, want nothing", out)
			}
			for _, w := range c.wantOut {
				if !strings.Contains(out, w) {
					t.Errorf("stderr %q does not say %q", out, w)
				}
			}
			if strings.Count(out, "\n") > 1 {
				t.Errorf("stderr %q: more than one line", out)
			}
		})
	}
	if err := checkSHA256(filepath.Join(t.TempDir(), "absent.pt"), digest, "RN50", url, io.Discard); err == nil || !strings.Contains(err.Error(), "absent.pt") {
		t.Errorf("unreadable file: error %v, want one naming it", err)
	}
}

// TestLoadOpenAIName loads models by name through Load, from fake
// downloads in the caches clip.load uses: a safetensors fixture, and the
// TorchScript fixture (what clip.load really downloads) saved as
// ViT-B-16.pt. Each loads to the same model, with the same embeddings, as
// its equivalent file, and the checksum warning goes to the process's
// stderr.
func TestLoadOpenAIName(t *testing.T) {
	cases := []struct {
		name, file string
		xdg        bool                      // the cache is $XDG_CACHE_HOME/clip, not ~/.cache/clip
		dir        func(t testing.TB) string // the fixtures' folder
		fixture    string                    // saved under file in the cache
		equivalent string
	}{
		{"ViT-B/32", "ViT-B-32.pt", false, referenceDir, "models/vit_tiny.safetensors", "models/vit_tiny.safetensors"},
		{"ViT-B/16", "ViT-B-16.pt", true, formatsDir, "vit_openai_jit.pt", "vit_f16.safetensors"},
	}
	for _, c := range cases {
		t.Run(c.file, func(t *testing.T) {
			dir := c.dir(t)
			set := map[string]string{}
			if c.xdg {
				set["XDG_CACHE_HOME"] = t.TempDir()
			}
			home := isolateCaches(t, set)
			cache := filepath.Join(home, ".cache", "clip")
			if c.xdg {
				cache = filepath.Join(set["XDG_CACHE_HOME"], "clip")
			}
			copyFile(t, filepath.Join(dir, c.fixture), filepath.Join(cache, c.file))
			stderr := captureStderr(t)
			byName, err := Load(c.name)
			out := stderr()
			if err != nil {
				t.Fatal(err)
			}
			want, err := Load(filepath.Join(dir, c.equivalent))
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(byName, want) {
				t.Errorf("Load(%s) differs from loading %s", c.name, c.equivalent)
			}
			sameEmbeddings(t, c.name, byName, want)
			if w := filepath.Join(cache, c.file) + " is not the file OpenAI publishes as " + c.name; !strings.Contains(out, w) {
				t.Errorf("stderr %q does not say %q", out, w)
			}
		})
	}
}

// captureStderr redirects os.Stderr until the returned function is called,
// which returns what was written.
func captureStderr(t *testing.T) func() string {
	t.Helper()
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	saved := os.Stderr
	os.Stderr = w
	done := make(chan string)
	go func() {
		data, _ := io.ReadAll(r)
		done <- string(data)
	}()
	restore := func() string {
		if os.Stderr == w {
			os.Stderr = saved
			w.Close()
		}
		return <-done
	}
	t.Cleanup(func() {
		if os.Stderr == w {
			restore()
		}
	})
	return restore
}

// hubFile is one file of a fake Hugging Face snapshot: its name and the
// file whose content it has.
type hubFile struct{ name, from string }

// fakeHubRepo lays out the repository id in the Hugging Face cache folder
// cache as huggingface_hub does: blobs named by content, a snapshot folder
// of relative links to them, and refs/main naming the snapshot. It returns
// the snapshot folder.
func fakeHubRepo(t *testing.T, cache, id, revision string, files ...hubFile) string {
	t.Helper()
	repo := filepath.Join(cache, "models--"+strings.ReplaceAll(id, "/", "--"))
	snapshot := filepath.Join(repo, "snapshots", revision)
	for _, f := range files {
		data, err := os.ReadFile(f.from)
		if err != nil {
			t.Fatal(err)
		}
		sum := sha256.Sum256(data)
		blob := hex.EncodeToString(sum[:])
		copyFile(t, f.from, filepath.Join(repo, "blobs", blob))
		if err := os.MkdirAll(snapshot, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.Symlink(filepath.Join("..", "..", "blobs", blob), filepath.Join(snapshot, f.name)); err != nil {
			t.Fatal(err)
		}
	}
	testkit.WriteFile(t, filepath.Join(repo, "refs", "main"), []byte(revision))
	return snapshot
}

// TestResolveHubRepository finds repositories in fake Hugging Face caches
// at each place the cache may be, for Hugging Face and open_clip
// repositories, and loads one.
func TestResolveHubRepository(t *testing.T) {
	hf := filepath.Join(referenceDir(t), "models", "hf_vit_tiny")
	sharded := filepath.Join(formatsDir(t), "hf_sharded")
	openCLIPBin := filepath.Join(formatsDir(t), "vit_open_clip_pytorch_model.bin")
	hfFiles := []hubFile{{"config.json", filepath.Join(hf, "config.json")}, {"model.safetensors", filepath.Join(hf, "model.safetensors")}}
	const rev = "0123456789abcdef0123456789abcdef01234567"
	const id = "openai/clip-vit-base-patch16"
	const laion = "laion/CLIP-ViT-B-32-laion2B-s34B-b79K"
	config := hubFile{"open_clip_config.json", filepath.Join(t.TempDir(), "open_clip_config.json")}
	testkit.WriteFile(t, config.from, []byte(`{"model_cfg": {"embed_dim": 32}}`))

	cases := []struct {
		name    string
		env     string // the variable that places the cache ("" for ~/.cache/huggingface/hub)
		sub     string // the cache's folder under the variable's value
		repo    string
		files   []hubFile
		want    string // the snapshot folder (""), or a file in it
		arg     string // what the user types; default repo
		loadsAs string // when set, Load(arg) must equal Load(loadsAs)
	}{
		{"HF_HUB_CACHE", "HF_HUB_CACHE", "", id, hfFiles, "", "", hf},
		{"HF_HOME", "HF_HOME", "hub", id, hfFiles, "", "", ""},
		{"XDG_CACHE_HOME", "XDG_CACHE_HOME", "huggingface/hub", id, hfFiles, "", "", ""},
		{"home", "", "", id, hfFiles, "", "", hf},
		{"sharded", "HF_HUB_CACHE", "", "someone/clip-sharded", []hubFile{
			{"config.json", filepath.Join(sharded, "config.json")},
			{shardIndexName, filepath.Join(sharded, shardIndexName)},
			{"model-00001-of-00002.safetensors", filepath.Join(sharded, "model-00001-of-00002.safetensors")},
			{"model-00002-of-00002.safetensors", filepath.Join(sharded, "model-00002-of-00002.safetensors")},
		}, "", "", hf},
		{"open_clip PyTorch file", "HF_HUB_CACHE", "", laion, []hubFile{config, {"open_clip_pytorch_model.bin", openCLIPBin}},
			"", "", ""},
		{"open_clip safetensors", "HF_HUB_CACHE", "", laion, []hubFile{config, {"open_clip_pytorch_model.bin", openCLIPBin},
			{"open_clip_model.safetensors", filepath.Join(referenceDir(t), "models", "vit_tiny.safetensors")}}, "", "hf-hub:" + laion, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			root := t.TempDir()
			set := map[string]string{}
			if c.env != "" {
				set[c.env] = root
			}
			home := isolateCaches(t, set)
			cache := filepath.Join(root, c.sub)
			if c.env == "" {
				cache = filepath.Join(home, ".cache", "huggingface", "hub")
			}
			snapshot := fakeHubRepo(t, cache, c.repo, rev, c.files...)
			arg := c.arg
			if arg == "" {
				arg = c.repo
			}
			got, err := Resolve(arg, io.Discard)
			if err != nil {
				t.Fatal(err)
			}
			if want := filepath.Join(snapshot, c.want); got != want {
				t.Errorf("Resolve(%s) = %s, want %s", arg, got, want)
			}
			if c.loadsAs == "" {
				return
			}
			m, err := Load(arg)
			if err != nil {
				t.Fatal(err)
			}
			ref, err := Load(c.loadsAs)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(m, ref) {
				t.Errorf("Load(%s) differs from Load(%s)", arg, c.loadsAs)
			}
		})
	}
}

// TestResolveHubErrors: each way a repository can be missing or broken in
// the cache gives an error naming the place and how to fetch it.
func TestResolveHubErrors(t *testing.T) {
	config := filepath.Join(referenceDir(t), "models", "hf_vit_tiny", "config.json")
	const id = "openai/clip-vit-base-patch16"
	const fetch = "unimos downloads nothing: fetch it with 'huggingface-cli download " + id + "'"
	cases := []struct {
		name  string
		setup func(cache string)
		wants []string
	}{
		{"not cached", func(string) {}, []string{id + ": no such file or folder", "has no models--openai--clip-vit-base-patch16", "set by HF_HUB_CACHE", fetch}},
		{"no weights", func(cache string) { fakeHubRepo(t, cache, id, "abc", hubFile{"config.json", config}) },
			[]string{"snapshots/abc holds no CLIP weights", "model.safetensors", "pytorch_model.bin", fetch}},
		{"refs/main names a missing snapshot", func(cache string) {
			fakeHubRepo(t, cache, id, "abc", hubFile{"config.json", config})
			testkit.WriteFile(t, filepath.Join(cache, "models--openai--clip-vit-base-patch16", "refs", "main"), []byte("def\n"))
		}, []string{"refs/main names the snapshot", "snapshots/def, which is missing", fetch}},
		{"two snapshots, no refs/main", func(cache string) {
			fakeHubRepo(t, cache, id, "abc", hubFile{"config.json", config})
			fakeHubRepo(t, cache, id, "def", hubFile{"config.json", config})
			os.Remove(filepath.Join(cache, "models--openai--clip-vit-base-patch16", "refs", "main"))
		}, []string{"no refs/main to choose between its snapshots abc, def", "give the path of one"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cache := t.TempDir()
			isolateCaches(t, map[string]string{"HF_HUB_CACHE": cache})
			c.setup(cache)
			got, err := Resolve(id, io.Discard)
			if err == nil {
				t.Fatalf("Resolve = %s, want an error", got)
			}
			for _, w := range c.wants {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not say %q", err, w)
				}
			}
		})
	}
}

// TestResolveHubOnlySnapshot: without refs/main, the one snapshot there is.
func TestResolveHubOnlySnapshot(t *testing.T) {
	cache := t.TempDir()
	isolateCaches(t, map[string]string{"HF_HUB_CACHE": cache})
	hf := filepath.Join(referenceDir(t), "models", "hf_vit_tiny")
	snapshot := fakeHubRepo(t, cache, "openai/clip-vit-base-patch16", "abc",
		hubFile{"config.json", filepath.Join(hf, "config.json")}, hubFile{"model.safetensors", filepath.Join(hf, "model.safetensors")})
	os.Remove(filepath.Join(cache, "models--openai--clip-vit-base-patch16", "refs", "main"))
	if got, err := Resolve("openai/clip-vit-base-patch16", io.Discard); err != nil || got != snapshot {
		t.Errorf("Resolve = %q, %v, want %s", got, err, snapshot)
	}
}

// TestResolveOtherNames: what is neither a path nor a name is a missing
// file, with a suggestion for a misspelt OpenAI name.
func TestResolveOtherNames(t *testing.T) {
	isolateCaches(t, map[string]string{"HF_HUB_CACHE": t.TempDir()})
	cases := []struct{ name, want string }{
		{"weights/model.safetensors", "clip: weights/model.safetensors: no such file or folder"},
		{"vit-b-16", "clip: vit-b-16: no such file or folder (did you mean ViT-B/16?)"},
		{"ViT-L-14-336px.pt", "(did you mean ViT-L/14@336px?)"},
		{"rn50", "(did you mean RN50?)"},
	}
	for _, c := range cases {
		_, err := Resolve(c.name, io.Discard)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("Resolve(%s): error %v, want %q", c.name, err, c.want)
		}
		if err != nil && strings.Contains(err.Error(), "Hugging Face") {
			t.Errorf("Resolve(%s): error %q speaks of the Hugging Face cache", c.name, err)
		}
	}
}
