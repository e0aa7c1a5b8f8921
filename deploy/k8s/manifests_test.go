// Package k8s holds no code: its tests check the Kubernetes manifests
// beside it without a cluster, decoding them strictly into the Kubernetes
// API's Go types, validating them against the API's OpenAPI schema
// (schema_test.go), and running their command lines as the pods of the
// Jobs would.
package k8s

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"sync"
	"testing"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/yaml"

	"github.com/unimos/unimos/internal/shareddata"
)

// job is the part of a decoded batch/v1 Job the test reads.
type job struct {
	Kind     string `json:"kind"`
	Metadata struct {
		Name string `json:"name"`
	} `json:"metadata"`
	Spec struct {
		CompletionMode string `json:"completionMode"`
		Completions    *int   `json:"completions"`
		Template       struct {
			Spec struct {
				RestartPolicy string `json:"restartPolicy"`
				Containers    []struct {
					Command []string `json:"command"`
					Args    []string `json:"args"`
					Env     []struct {
						Name      string `json:"name"`
						Value     string `json:"value"`
						ValueFrom *struct {
							FieldRef *struct {
								FieldPath string `json:"fieldPath"`
							} `json:"fieldRef"`
						} `json:"valueFrom"`
					} `json:"env"`
					Resources struct {
						Requests map[string]string `json:"requests"`
					} `json:"resources"`
					VolumeMounts []struct {
						Name      string `json:"name"`
						MountPath string `json:"mountPath"`
					} `json:"volumeMounts"`
				} `json:"containers"`
				Volumes []struct {
					Name                  string `json:"name"`
					PersistentVolumeClaim *struct {
						ClaimName string `json:"claimName"`
					} `json:"persistentVolumeClaim"`
				} `json:"volumes"`
			} `json:"spec"`
		} `json:"template"`
	} `json:"spec"`
}

// completionIndexField is where Kubernetes puts an Indexed Job pod's index.
const completionIndexField = "metadata.annotations['batch.kubernetes.io/job-completion-index']"

// decode reads a manifest strictly into the Kubernetes API's Go types
// (k8s.io/api, the types the API server decodes into): a field of the wrong
// type, or a field the object does not have (a typo such as
// "completionMod"), is an error. It returns the object as JSON.
func decode(t *testing.T, file string) []byte {
	t.Helper()
	raw, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	var head struct {
		Kind string `json:"kind"`
	}
	if err := yaml.Unmarshal(raw, &head); err != nil {
		t.Fatalf("%s: %v", file, err)
	}
	var obj any
	switch head.Kind {
	case "Job":
		obj = &batchv1.Job{}
	case "PersistentVolumeClaim":
		obj = &corev1.PersistentVolumeClaim{}
	default:
		t.Fatalf("%s: kind %q; want a Job or a PersistentVolumeClaim", file, head.Kind)
	}
	if err := yaml.UnmarshalStrict(raw, obj); err != nil {
		t.Fatalf("%s: not a valid %s: %v", file, head.Kind, err)
	}
	out, err := json.Marshal(obj)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func readJob(t *testing.T, file string) job {
	t.Helper()
	var j job
	if err := json.Unmarshal(decode(t, file), &j); err != nil {
		t.Fatalf("%s: %v", file, err)
	}
	if j.Kind != "Job" || len(j.Spec.Template.Spec.Containers) != 1 {
		t.Fatalf("%s: a %s with %d containers; want a Job with one", file, j.Kind, len(j.Spec.Template.Spec.Containers))
	}
	return j
}

// TestManifests checks what the cluster would not: the Jobs mount the
// volume of pvc.yaml at /data, request resources, and an Indexed Job's
// shard count is its completions.
func TestManifests(t *testing.T) {
	var pvc struct {
		Kind     string `json:"kind"`
		Metadata struct {
			Name string `json:"name"`
		} `json:"metadata"`
	}
	if err := json.Unmarshal(decode(t, "pvc.yaml"), &pvc); err != nil || pvc.Kind != "PersistentVolumeClaim" {
		t.Fatalf("pvc.yaml: %v, kind %q", err, pvc.Kind)
	}
	for _, c := range []struct {
		file    string
		indexed bool
	}{
		{"extract-job.yaml", true}, {"merge-job.yaml", false}, {"bench-job.yaml", true}, {"report-job.yaml", false},
	} {
		j := readJob(t, c.file)
		pod := j.Spec.Template.Spec
		ct := pod.Containers[0]
		if len(pod.Volumes) != 1 || pod.Volumes[0].PersistentVolumeClaim == nil || pod.Volumes[0].PersistentVolumeClaim.ClaimName != pvc.Metadata.Name {
			t.Errorf("%s: want one volume, the claim %s", c.file, pvc.Metadata.Name)
		}
		if len(ct.VolumeMounts) != 1 || ct.VolumeMounts[0].MountPath != "/data" || len(pod.Volumes) == 0 || ct.VolumeMounts[0].Name != pod.Volumes[0].Name {
			t.Errorf("%s: want the volume mounted at /data", c.file)
		}
		if ct.Resources.Requests["cpu"] == "" || ct.Resources.Requests["memory"] == "" {
			t.Errorf("%s: no CPU or memory request", c.file)
		}
		if pod.RestartPolicy != "Never" {
			t.Errorf("%s: restartPolicy %q; want Never (the Job replaces a failed pod)", c.file, pod.RestartPolicy)
		}
		if (j.Spec.CompletionMode == "Indexed") != c.indexed {
			t.Errorf("%s: completionMode %q", c.file, j.Spec.CompletionMode)
		}
		if c.indexed {
			env := podEnv(t, j, 0)
			if j.Spec.Completions == nil || env["UNIMOS_SHARD_COUNT"] != fmt.Sprint(*j.Spec.Completions) {
				t.Errorf("%s: UNIMOS_SHARD_COUNT %q is not the completions", c.file, env["UNIMOS_SHARD_COUNT"])
			}
		}
	}
}

// podEnv is the environment of the Job's pod with completion index i: the
// manifest's variables, JOB_COMPLETION_INDEX from the annotation.
func podEnv(t *testing.T, j job, index int) map[string]string {
	t.Helper()
	env := map[string]string{}
	for _, e := range j.Spec.Template.Spec.Containers[0].Env {
		switch {
		case e.ValueFrom == nil:
			env[e.Name] = e.Value
		case e.ValueFrom.FieldRef != nil && e.ValueFrom.FieldRef.FieldPath == completionIndexField:
			env[e.Name] = fmt.Sprint(index)
		default:
			t.Fatalf("%s: variable %s comes from somewhere this test does not know", j.Metadata.Name, e.Name)
		}
	}
	if j.Spec.CompletionMode == "Indexed" {
		env["JOB_COMPLETION_INDEX"] = fmt.Sprint(index) // Kubernetes sets it in every pod
	}
	return env
}

// expand replaces $(NAME) with the variable's value, as Kubernetes does in
// command and args ($$ is a '$'; an unknown name is left as it is).
func expand(s string, env map[string]string) string {
	ref := regexp.MustCompile(`\$\$|\$\(([A-Za-z_][A-Za-z0-9_]*)\)`)
	return ref.ReplaceAllStringFunc(s, func(m string) string {
		if m == "$$" {
			return "$"
		}
		if v, ok := env[m[2:len(m)-1]]; ok {
			return v
		}
		return m
	})
}

// cluster runs the Jobs' pods on this machine: /data is a temporary folder
// and unimos the binary built from this repository.
type cluster struct {
	data, bin string
}

// run runs the pod with completion index i of the Job in file, and
// returns its output.
func (c cluster) run(t *testing.T, j job, index int) (string, error) {
	env := podEnv(t, j, index)
	ct := j.Spec.Template.Spec.Containers[0]
	argv := append(append([]string{}, ct.Command...), ct.Args...)
	for k, a := range argv {
		// The volume's mount point is the test's folder.
		argv[k] = strings.ReplaceAll(expand(a, env), "/data/", c.data+"/")
	}
	if argv[0] == "unimos" {
		argv[0] = filepath.Join(c.bin, "unimos")
	}
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Env = []string{"PATH=" + c.bin + string(os.PathListSeparator) + os.Getenv("PATH"), "HOME=" + c.data}
	for k, v := range env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	// The pods multiply matrices with the same backend as the single
	// processes they are compared with (OpenBLAS and pure Go differ in the
	// last bits).
	if v, ok := os.LookupEnv("UNIMOS_BLAS"); ok {
		cmd.Env = append(cmd.Env, "UNIMOS_BLAS="+v)
	}
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// runJob runs every pod of the Job in file, at once as with parallelism
// equal to completions, and fails the test if one fails.
func (c cluster) runJob(t *testing.T, file string) {
	t.Helper()
	j := readJob(t, file)
	n := 1
	if j.Spec.Completions != nil {
		n = *j.Spec.Completions
	}
	var wg sync.WaitGroup
	errs := make([]string, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if out, err := c.run(t, j, i); err != nil {
				errs[i] = fmt.Sprintf("%s pod %d: %v\n%s", file, i, err, out)
			}
		}()
	}
	wg.Wait()
	for _, e := range errs {
		if e != "" {
			t.Fatal(e)
		}
	}
}

// TestJobsRun runs extract-job.yaml's pods, merge-job.yaml, bench-job.yaml's
// pods and report-job.yaml on photos and the tiny test model, and compares
// the store and the report with those of single unimos processes.
func TestJobsRun(t *testing.T) {
	models := shareddata.Dir(t, "clip_reference")
	photos := filepath.Join(shareddata.Dir(t, "office_caltech10"), "images")
	if _, err := exec.LookPath("sh"); err != nil {
		t.Skip("no sh for merge-job.yaml's command")
	}
	c := cluster{data: filepath.Join(t.TempDir(), "data"), bin: t.TempDir()}
	build := goCommand("build", "-o", filepath.Join(c.bin, "unimos"), "github.com/unimos/unimos/cmd/unimos")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("building unimos: %v\n%s", err, out)
	}
	stagePhotos(t, photos, filepath.Join(c.data, "images"), 4)          // 40 a domain: a bench needs a batch of 32
	weights := filepath.Join(c.data, "weights", "ViT-B-16.safetensors") // the file extract-job.yaml names
	os.MkdirAll(filepath.Dir(weights), 0o755)
	if err := os.Symlink(filepath.Join(models, "models", "vit_tiny.safetensors"), weights); err != nil {
		t.Fatal(err)
	}

	c.runJob(t, "extract-job.yaml")
	c.runJob(t, "merge-job.yaml")
	store := filepath.Join(c.data, "features", "store")
	want := filepath.Join(t.TempDir(), "want")
	c.unimos(t, "extract", "--images", filepath.Join(c.data, "images"), "--weights", weights, "--out", want)
	sameFiles(t, want, store)

	c.runJob(t, "bench-job.yaml")
	if _, err := os.Stat(filepath.Join(c.data, "bench", "report.md")); err == nil {
		t.Error("a bench pod wrote a report")
	}
	c.runJob(t, "report-job.yaml")
	whole := filepath.Join(t.TempDir(), "whole")
	c.unimos(t, "bench", "--features", store, "--protocol", "pairs", "--out", whole)
	a, _ := os.ReadFile(filepath.Join(whole, "report.md"))
	b, err := os.ReadFile(filepath.Join(c.data, "bench", "report.md"))
	if err != nil || len(a) == 0 || !bytes.Equal(a, b) {
		t.Errorf("the Jobs' report differs from one bench's (%v):\n%s\nwant:\n%s", err, b, a)
	}
}

// goCommand is the go command of the toolchain running the test.
func goCommand(args ...string) *exec.Cmd {
	return exec.Command(filepath.Join(runtime.GOROOT(), "bin", "go"), args...)
}

// unimos runs the built binary and fails the test if it fails.
func (c cluster) unimos(t *testing.T, args ...string) {
	t.Helper()
	if out, err := exec.Command(filepath.Join(c.bin, "unimos"), args...).CombinedOutput(); err != nil {
		t.Fatalf("unimos %s: %v\n%s", strings.Join(args, " "), err, out)
	}
}

// stagePhotos links perClass photos of each class of two Office-Caltech
// domains into dst/<domain>/<class>/.
func stagePhotos(t *testing.T, src, dst string, perClass int) {
	t.Helper()
	for _, domain := range []string{"amazon", "webcam"} {
		classes, err := os.ReadDir(filepath.Join(src, domain))
		if err != nil {
			t.Fatal(err)
		}
		for _, class := range classes {
			files, err := filepath.Glob(filepath.Join(src, domain, class.Name(), "*.jpg"))
			if err != nil || len(files) < perClass {
				t.Fatalf("%s/%s: %d photos (%v)", domain, class.Name(), len(files), err)
			}
			dir := filepath.Join(dst, domain, class.Name())
			if err := os.MkdirAll(dir, 0o755); err != nil {
				t.Fatal(err)
			}
			for _, f := range files[:perClass] {
				if err := os.Symlink(f, filepath.Join(dir, filepath.Base(f))); err != nil {
					t.Fatal(err)
				}
			}
		}
	}
}

// sameFiles requires the folders want and got to hold the same files with
// the same bytes.
func sameFiles(t *testing.T, want, got string) {
	t.Helper()
	files := func(root string) map[string][]byte {
		m := map[string][]byte{}
		filepath.WalkDir(root, func(path string, d os.DirEntry, err error) error {
			if err != nil || d.IsDir() {
				return err
			}
			rel, _ := filepath.Rel(root, path)
			m[rel], _ = os.ReadFile(path)
			return nil
		})
		return m
	}
	a, b := files(want), files(got)
	if len(a) == 0 || len(a) != len(b) {
		t.Errorf("%s has %d files, %s %d", want, len(a), got, len(b))
	}
	for name, data := range a {
		if !bytes.Equal(data, b[name]) {
			t.Errorf("%s differs between the Jobs' store and one extraction", name)
		}
	}
}
