package clip

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"strings"
	"time"

	"github.com/unimos/unimos/internal/regularfile"
)

// openAIModels are the names openai/CLIP's clip.load takes and the addresses
// it downloads them from (clip/clip.py, _MODELS). The folder before the file
// name is the file's SHA-256; clip.load keeps the file under its base name.
var openAIModels = []struct{ name, url string }{
	{"RN50", "https://openaipublic.azureedge.net/clip/models/afeb0e10f9e5a86da6080e35cf09123aca3b358a0c3e3b6c78a7b63bc04b6762/RN50.pt"},
	{"RN101", "https://openaipublic.azureedge.net/clip/models/8fa8567bab74a42d41c5915025a8e4538c3bdbe8804a470a72f30b0d94fab599/RN101.pt"},
	{"RN50x4", "https://openaipublic.azureedge.net/clip/models/7e526bd135e493cef0776de27d5f42653e6b4c8bf9e0f653bb11773263205fdd/RN50x4.pt"},
	{"RN50x16", "https://openaipublic.azureedge.net/clip/models/52378b407f34354e150460fe41077663dd5b39c54cd0bfd2b27167a4a06ec9aa/RN50x16.pt"},
	{"RN50x64", "https://openaipublic.azureedge.net/clip/models/be1cfb55d75a9666199fb2206c106743da0f6468c9d327f3e0d0a543a9919d9c/RN50x64.pt"},
	{"ViT-B/32", "https://openaipublic.azureedge.net/clip/models/40d365715913c9da98579312b702a82c18be219cc2a73407c4526f58eba950af/ViT-B-32.pt"},
	{"ViT-B/16", "https://openaipublic.azureedge.net/clip/models/5806e77cd80f8b59890b7e101eabd078d9fb84e6937f9e85e4ecb61988df416f/ViT-B-16.pt"},
	{"ViT-L/14", "https://openaipublic.azureedge.net/clip/models/b8cca3fd41ae0c99ba7e8951adf17d267cdb84cd88be6f7c2e0eca1737a03836/ViT-L-14.pt"},
	{"ViT-L/14@336px", "https://openaipublic.azureedge.net/clip/models/3035c92b350959924f9f00213499208652fc7ea050643e8b385c2dac08641f02/ViT-L-14-336px.pt"},
}

// Resolve returns the file or folder that the weights name stands for, as
// Load reads it, looking only on this machine: nothing is downloaded.
//
//   - A path that exists is returned as it is: a path always wins over a name.
//   - One of the names OpenAI's clip.load takes (RN50, RN101, RN50x4,
//     RN50x16, RN50x64, ViT-B/32, ViT-B/16, ViT-L/14, ViT-L/14@336px) is the
//     file clip.load downloads (ViT-B/16: ViT-B-16.pt), in
//     $XDG_CACHE_HOME/clip or ~/.cache/clip. The file is checked against the
//     SHA-256 that OpenAI publishes in its download address; a file that
//     differs (damaged, or another model) gets a warning, and is used.
//   - A Hugging Face repository id (openai/clip-vit-base-patch16;
//     open_clip's laion/CLIP-ViT-B-32-laion2B-s34B-b79K, also spelt
//     hf-hub:laion/...) is the snapshot that refs/main names in the Hugging
//     Face cache ($HF_HUB_CACHE, else $HF_HOME/hub, else
//     $XDG_CACHE_HOME/huggingface/hub, else ~/.cache/huggingface/hub): its
//     folder, or its PyTorch weights file when it holds no safetensors
//     weights.
//
// Warnings, and a note while a large file's SHA-256 is computed, go to
// stderr (os.Stderr when nil). A name found nowhere is an error that lists
// the places looked in and says how to fetch the weights.
func Resolve(name string, stderr io.Writer) (string, error) {
	if stderr == nil {
		stderr = os.Stderr
	}
	if _, err := os.Stat(name); err == nil {
		return name, nil
	} else if !errors.Is(err, fs.ErrNotExist) {
		return "", fmt.Errorf("clip: %s: %w", name, errors.Unwrap(err))
	}
	for _, m := range openAIModels {
		if m.name == name {
			return resolveOpenAI(m.name, m.url, stderr)
		}
	}
	if id, ok := hubRepoID(name); ok {
		return resolveHub(name, id)
	}
	return "", fmt.Errorf("clip: %s: no such file or folder%s", name, suggestName(name))
}

// openAICacheDirs returns the folders clip.load's files are looked for in:
// $XDG_CACHE_HOME/clip when set, then ~/.cache/clip, where clip.load puts
// them.
func openAICacheDirs() []string {
	var dirs []string
	if xdg := os.Getenv("XDG_CACHE_HOME"); xdg != "" {
		dirs = append(dirs, filepath.Join(xdg, "clip"))
	}
	if home, err := os.UserHomeDir(); err == nil {
		if d := filepath.Join(home, ".cache", "clip"); len(dirs) == 0 || dirs[0] != d {
			dirs = append(dirs, d)
		}
	}
	return dirs
}

// resolveOpenAI finds the file of OpenAI's model name, downloaded from url,
// and checks its SHA-256.
func resolveOpenAI(name, url string, stderr io.Writer) (string, error) {
	file := path.Base(url)
	var looked []string
	for _, dir := range openAICacheDirs() {
		p := filepath.Join(dir, file)
		st, err := os.Stat(p)
		if err != nil {
			looked = append(looked, p)
			continue
		}
		if !st.Mode().IsRegular() {
			return "", fmt.Errorf("clip: %s: %s is not a regular file; remove it and download %s again", name, p, url)
		}
		if err := checkSHA256(p, publishedSHA256(url), name, url, stderr); err != nil {
			return "", err
		}
		return p, nil
	}
	where := "~/.cache/clip"
	if len(looked) > 0 {
		where = filepath.Dir(looked[len(looked)-1])
	}
	return "", fmt.Errorf("clip: %s: no such file or folder, and OpenAI's %s is not in %s; unimos downloads nothing: download %s into %s (or run clip.load(%q) in Python once), then try again",
		name, file, orList(looked), url, where, name)
}

// publishedSHA256 returns the SHA-256 that an OpenAI download address
// carries: the folder that holds the file.
func publishedSHA256(url string) string { return path.Base(path.Dir(url)) }

// slowHash is how long computing a SHA-256 may take before a note says
// what is going on.
var slowHash = 2 * time.Second

// checkSHA256 computes the SHA-256 of the file path, which should be want,
// the digest OpenAI publishes for its model name (downloaded from url). A
// mismatch is a warning on stderr, not an error: the file may still be a
// usable model, and Load checks what it reads. Only a read failure is an
// error.
func checkSHA256(path, want, name, url string, stderr io.Writer) error {
	got, err := fileSHA256(path, stderr)
	if err != nil {
		return err
	}
	if got != want {
		fmt.Fprintf(stderr, "warning: %s is not the file OpenAI publishes as %s (its SHA-256 is %s, not %s): it is damaged or another model; download %s again to replace it\n",
			path, name, got, want, url)
	}
	return nil
}

// fileSHA256 streams the file through SHA-256 once and returns the hex
// digest. When that takes longer than slowHash, a note on stderr says why
// the command waits.
func fileSHA256(path string, stderr io.Writer) (string, error) {
	f, st, err := regularfile.Open(path, "a CLIP weights file")
	if err != nil {
		return "", fmt.Errorf("clip: %w", err)
	}
	defer f.Close()
	size := st.Size()
	h := sha256.New()
	start, noted := time.Now(), false
	buf := make([]byte, 4<<20)
	for {
		n, err := f.Read(buf)
		h.Write(buf[:n])
		if !noted && time.Since(start) > slowHash {
			fmt.Fprintf(stderr, "note: checking the SHA-256 of %s (%d MB) against the one OpenAI publishes\n", path, size>>20)
			noted = true
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			return "", fmt.Errorf("clip: %s: %w", path, errors.Unwrap(err))
		}
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// hubIDPattern matches a Hugging Face repository id, owner/name.
var hubIDPattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]*/[A-Za-z0-9][A-Za-z0-9._-]*$`)

// hubRepoID returns the repository id that name spells (open_clip's
// "hf-hub:" prefix removed), or false when name cannot be one, or looks
// like a file name (weights/model.safetensors is a missing file, not a
// repository).
func hubRepoID(name string) (string, bool) {
	id := strings.TrimPrefix(name, "hf-hub:")
	if !hubIDPattern.MatchString(id) {
		return "", false
	}
	switch strings.ToLower(path.Ext(id)) {
	case ".safetensors", ".pt", ".pth", ".bin", ".json", ".ckpt":
		return "", false
	}
	return id, true
}

// hubCache returns the Hugging Face hub cache folder as huggingface_hub
// chooses it, and a note on how it was chosen, for messages.
func hubCache() (dir, from string) {
	if d := os.Getenv("HF_HUB_CACHE"); d != "" {
		return d, "set by HF_HUB_CACHE"
	}
	if d := os.Getenv("HF_HOME"); d != "" {
		return filepath.Join(d, "hub"), "set by HF_HOME"
	}
	if d := os.Getenv("XDG_CACHE_HOME"); d != "" {
		return filepath.Join(d, "huggingface", "hub"), "set by XDG_CACHE_HOME; HF_HUB_CACHE or HF_HOME choose another"
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return "~/.cache/huggingface/hub", "but no home folder is set; HF_HUB_CACHE or HF_HOME choose one"
	}
	return filepath.Join(home, ".cache", "huggingface", "hub"), "the default; HF_HUB_CACHE or HF_HOME choose another"
}

// resolveHub finds the repository id in the Hugging Face cache: the folder
// models--OWNER--NAME, whose refs/main names the snapshot (a folder of
// links into blobs/). It returns the snapshot folder, in which Load finds
// the weights (safetensors or PyTorch, sharded or not) and the
// configuration beside them.
func resolveHub(name, id string) (string, error) {
	cache, from := hubCache()
	repo := filepath.Join(cache, "models--"+strings.ReplaceAll(id, "/", "--"))
	fetch := fmt.Sprintf("unimos downloads nothing: fetch it with 'huggingface-cli download %s', then try again", id)
	if st, err := os.Stat(repo); err != nil || !st.IsDir() {
		return "", fmt.Errorf("clip: %s: no such file or folder, and the Hugging Face cache %s (%s) has no %s; %s",
			name, cache, from, filepath.Base(repo), fetch)
	}
	snapshot, err := hubSnapshot(repo)
	if err != nil {
		return "", fmt.Errorf("clip: %s: %w; %s", name, err, fetch)
	}
	if _, err := weightsFile(snapshot); err != nil {
		return "", fmt.Errorf("clip: %s: the snapshot %s holds no CLIP weights (none of %s; a download that was interrupted?); %s",
			name, snapshot, strings.Join(modelFileNames, ", "), fetch)
	}
	return snapshot, nil
}

// hubSnapshot returns the snapshot folder of the cached repository repo:
// the one refs/main names or, without refs/main, the only one there is.
func hubSnapshot(repo string) (string, error) {
	snapshots := filepath.Join(repo, "snapshots")
	ref := filepath.Join(repo, "refs", "main")
	data, err := regularfile.ReadFile(ref, "a text file", maxRefBytes)
	switch {
	case err == nil:
		hash := strings.TrimSpace(string(data))
		if hash == "" || hash != filepath.Base(hash) || !filepath.IsLocal(hash) {
			return "", fmt.Errorf("%s does not name a snapshot (it holds %q)", ref, hash)
		}
		dir := filepath.Join(snapshots, hash)
		if st, err := os.Stat(dir); err != nil || !st.IsDir() {
			return "", fmt.Errorf("%s names the snapshot %s, which is missing", ref, dir)
		}
		return dir, nil
	case !errors.Is(err, fs.ErrNotExist):
		return "", fmt.Errorf("%s: %w", ref, errors.Unwrap(err))
	}
	entries, _ := os.ReadDir(snapshots)
	var dirs []string
	for _, e := range entries {
		if e.IsDir() {
			dirs = append(dirs, e.Name())
		}
	}
	switch len(dirs) {
	case 0:
		return "", fmt.Errorf("%s has no refs/main and no snapshot in %s", repo, snapshots)
	case 1:
		return filepath.Join(snapshots, dirs[0]), nil
	}
	return "", fmt.Errorf("%s has no refs/main to choose between its snapshots %s; give the path of one", repo, strings.Join(dirs, ", "))
}

// fileExists reports whether path names a file (following links).
func fileExists(path string) bool {
	st, err := os.Stat(path)
	return err == nil && !st.IsDir()
}

// orList joins items as "a", "a or b", "a, b or c".
func orList(items []string) string {
	if len(items) <= 1 {
		return strings.Join(items, "")
	}
	return strings.Join(items[:len(items)-1], ", ") + " or " + items[len(items)-1]
}

// suggestName returns " (did you mean NAME?)" when name is one of OpenAI's
// model names spelt another way (vit-b-16, ViT-B-16.pt, rn50), "" otherwise.
func suggestName(name string) string {
	squash := func(s string) string {
		s = strings.ToLower(strings.TrimSuffix(s, ".pt"))
		return strings.NewReplacer("-", "", "/", "", "@", "", "_", "", " ", "").Replace(s)
	}
	for _, m := range openAIModels {
		if squash(m.name) == squash(name) {
			return fmt.Sprintf(" (did you mean %s?)", m.name)
		}
	}
	return ""
}
