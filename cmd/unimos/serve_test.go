package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/unimos/unimos/features"
	"github.com/unimos/unimos/internal/testkit"
	"github.com/unimos/unimos/serve"
	"github.com/unimos/unimos/tensor"
)

// servedPrediction is one answer of POST /v1/classify.
type servedPrediction struct {
	Name       string  `json:"name"`
	Class      string  `json:"class"`
	Confidence float32 `json:"confidence"`
	Top        []struct {
		Class       string  `json:"class"`
		Probability float32 `json:"probability"`
	} `json:"top"`
	Error string `json:"error"`
}

// newFixtureServer serves the image fixture's run with the weights it was
// trained on, through the same loading as "unimos serve".
func newFixtureServer(t *testing.T, fx imageFixture, cfg serve.Config) *httptest.Server {
	t.Helper()
	m, notes, err := serve.Load(fx.run, fx.weights, false)
	if err != nil || len(notes) != 0 {
		t.Fatalf("Load: %v, notes %q", err, notes)
	}
	s, err := serve.New(m, cfg)
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(s.Handler())
	t.Cleanup(func() {
		ts.Close() // waits for the handlers
		s.Close()
	})
	return ts
}

// predictJSON runs "unimos predict --json" on paths.
func predictJSON(t *testing.T, fx imageFixture, paths ...string) predictionReport {
	t.Helper()
	code, stdout, stderr := runCLI(t, append([]string{"predict", "--model", fx.run, "--weights", fx.weights, "--json"}, paths...)...)
	if code != 0 {
		t.Fatalf("predict %q: status %d, %s", paths, code, stderr)
	}
	var report predictionReport
	if err := json.Unmarshal([]byte(stdout), &report); err != nil {
		t.Fatal(err)
	}
	return report
}

// postFile sends a file as the body of a request to url.
func postFile(t *testing.T, url, path string) (int, []byte) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return post(t, url, "application/octet-stream", data)
}

func post(t *testing.T, url, contentType string, body []byte) (int, []byte) {
	t.Helper()
	resp, err := http.Post(url, contentType, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, raw
}

// multipartBody makes a multipart/form-data form with one file part per
// path, in order.
func multipartBody(t *testing.T, paths []string) (contentType string, body []byte) {
	t.Helper()
	var buf bytes.Buffer
	w := multipart.NewWriter(&buf)
	for _, p := range paths {
		data, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		part, err := w.CreateFormFile("image", filepath.Base(p))
		if err != nil {
			t.Fatal(err)
		}
		part.Write(data)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return w.FormDataContentType(), buf.Bytes()
}

// TestServeAnswersAsPredict trains the image fixture's model (real photos
// extracted with the tiny random ViT, two epochs) and checks the server's
// answers against "unimos predict" on the same files: one image per
// request against predict on that file, and a multipart request of every
// target image against predict on the folder, both identical to the last
// bit (the images are encoded in the same batches); then the embeddings
// against the store's rows and GET /v1/model against the run.
func TestServeAnswersAsPredict(t *testing.T) {
	fx := newImageFixture(t)
	ts := newFixtureServer(t, fx, serve.Config{MaxBatch: 32})
	tgt := filepath.Join(fx.root, "tgt")
	files, err := collectImages([]string{tgt})
	if err != nil {
		t.Fatal(err)
	}

	t.Run("one image per request", func(t *testing.T) {
		for _, f := range files {
			want := predictJSON(t, fx, f).Predictions[0]
			code, raw := postFile(t, ts.URL+"/v1/classify", f)
			var got servedPrediction
			if err := json.Unmarshal(raw, &got); err != nil || code != http.StatusOK {
				t.Fatalf("%s: status %d, %s", f, code, raw)
			}
			if got.Class != want.Class || got.Confidence != want.Confidence {
				t.Errorf("%s: served %s %v, predict %s %v", filepath.Base(f), got.Class, got.Confidence, want.Class, want.Confidence)
			}
			if len(got.Top) != 3 || got.Top[0].Class != got.Class || got.Top[0].Probability != got.Confidence ||
				got.Top[1].Probability > got.Top[0].Probability || got.Top[2].Probability > got.Top[1].Probability {
				t.Errorf("%s: top %+v (3 classes: all of them, best first)", filepath.Base(f), got.Top)
			}
		}
	})

	t.Run("multipart", func(t *testing.T) {
		want := predictJSON(t, fx, tgt)
		contentType, body := multipartBody(t, files)
		code, raw := post(t, ts.URL+"/v1/classify?k=2", contentType, body)
		var got []servedPrediction
		if err := json.Unmarshal(raw, &got); err != nil || code != http.StatusOK {
			t.Fatalf("status %d, %s", code, raw)
		}
		if len(got) != len(want.Predictions) {
			t.Fatalf("%d answers for %d parts", len(got), len(want.Predictions))
		}
		for i, p := range want.Predictions {
			if got[i].Name != filepath.Base(p.Path) || got[i].Class != p.Class || got[i].Confidence != p.Confidence || len(got[i].Top) != 2 {
				t.Errorf("part %d: served %+v, predict %+v", i, got[i], p)
			}
		}
	})

	t.Run("embed", func(t *testing.T) {
		store, err := features.Open(fx.store)
		if err != nil {
			t.Fatal(err)
		}
		d, err := store.Domain("tgt")
		if err != nil {
			t.Fatal(err)
		}
		for row, rel := range d.Paths {
			code, raw := postFile(t, ts.URL+"/v1/embed", filepath.Join(fx.root, rel))
			var got struct{ Embedding []float32 }
			if err := json.Unmarshal(raw, &got); err != nil || code != http.StatusOK {
				t.Fatalf("%s: status %d, %s", rel, code, raw)
			}
			// extract encoded the image in a batch of others: equal up to
			// the rounding of a product's sums, which OpenBLAS orders by
			// the batch size.
			if dist := distance(got.Embedding, d.Features.Row(row)); dist > 1e-5 {
				t.Errorf("%s: embedding %.2g away from the store's row", rel, dist)
			}
		}
	})

	t.Run("model", func(t *testing.T) {
		resp, err := http.Get(ts.URL + "/v1/model")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var got struct {
			Classes  []string
			Backbone string
			Training struct {
				Task   string
				Epochs int
				Final  struct{ Accuracy float64 }
			}
		}
		if err := json.NewDecoder(resp.Body).Decode(&got); err != nil {
			t.Fatal(err)
		}
		meta := readDataset(t, fx.store)
		if !slices.Equal(got.Classes, meta.Classes) || got.Backbone != meta.Backbone || got.Training.Task != "src->tgt" ||
			got.Training.Epochs != 2 || got.Training.Final.Accuracy != 100.0/3 {
			t.Errorf("GET /v1/model: %+v", got)
		}
	})
}

// distance is the Euclidean distance between two vectors.
func distance(a, b []float32) float64 {
	if len(a) != len(b) {
		return math.Inf(1)
	}
	var sum float64
	for i := range a {
		d := float64(a[i] - b[i])
		sum += d * d
	}
	return math.Sqrt(sum)
}

// TestServeConcurrentClients sends every target image from many clients at
// once: each answer must be predict's class for that file, with its
// confidence; batched with other requests, an image's numbers are
// identical on the pure-Go GEMM and equal up to float32 rounding on
// OpenBLAS, which sums a product in an order that depends on the batch
// size.
func TestServeConcurrentClients(t *testing.T) {
	fx := newImageFixture(t)
	ts := newFixtureServer(t, fx, serve.Config{MaxBatch: 8, MaxWait: 20 * time.Millisecond})
	files, err := collectImages([]string{filepath.Join(fx.root, "tgt")})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]predictionJSON{}
	for _, f := range files {
		want[f] = predictJSON(t, fx, f).Predictions[0]
	}
	exact := strings.HasPrefix(tensor.Backend(), "go ")
	const clients, rounds = 16, 3
	var wg sync.WaitGroup
	errs := make(chan string, clients*rounds)
	for c := range clients {
		wg.Go(func() {
			for r := range rounds {
				f := files[(c+r*5)%len(files)]
				data, _ := os.ReadFile(f)
				resp, err := http.Post(ts.URL+"/v1/classify", "image/jpeg", bytes.NewReader(data))
				if err != nil {
					errs <- err.Error()
					return
				}
				var got servedPrediction
				err = json.NewDecoder(resp.Body).Decode(&got)
				resp.Body.Close()
				w := want[f]
				switch {
				case err != nil || resp.StatusCode != http.StatusOK:
					errs <- fmt.Sprintf("%s: status %d, %v", f, resp.StatusCode, err)
				case got.Class != w.Class:
					errs <- fmt.Sprintf("%s: class %s, predict %s", f, got.Class, w.Class)
				case exact && got.Confidence != w.Confidence,
					math.Abs(float64(got.Confidence-w.Confidence)) > 1e-5:
					errs <- fmt.Sprintf("%s: confidence %v, predict %v", f, got.Confidence, w.Confidence)
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Error(e)
	}
	// The requests were coalesced: more images than batches.
	resp, err := http.Get(ts.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	metrics, _ := io.ReadAll(resp.Body)
	var images, batches float64
	fmt.Sscan(metricValue(string(metrics), "unimos_batch_size_sum"), &images)
	fmt.Sscan(metricValue(string(metrics), "unimos_batch_size_count"), &batches)
	if images != clients*rounds || batches >= images {
		t.Errorf("%v images in %v batches", images, batches)
	}
}

// metricValue returns the value of the sample named name in a Prometheus
// text exposition, "" when absent.
func metricValue(text, name string) string {
	for line := range strings.Lines(text) {
		if value, ok := strings.CutPrefix(line, name+" "); ok {
			return strings.TrimSpace(value)
		}
	}
	return ""
}

// TestServeRefusesOtherWeights loads the model with CLIP weights it was not
// trained on: refused with predict's words, served with a note under
// --force.
func TestServeRefusesOtherWeights(t *testing.T) {
	fx := newImageFixture(t)
	other := flippedWeights(t, fx.weights)
	code, _, stderr := runCLI(t, "serve", "--model", fx.run, "--weights", other, "--addr", "127.0.0.1:0")
	if code != 1 || !strings.Contains(stderr, "CLIP weights "+other+": ViT") ||
		!strings.Contains(stderr, "use the weights the model was trained on, or give --force") {
		t.Errorf("status %d, stderr %q", code, stderr)
	}
	_, notes, err := serve.Load(fx.run, other, true)
	if err != nil || len(notes) != 1 || !strings.Contains(notes[0], "classifying anyway (--force)") {
		t.Errorf("--force: %v, notes %q", err, notes)
	}
}

func TestServeUsageErrors(t *testing.T) {
	empty := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(empty, []byte("\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		args []string
		code int
		want string
	}{
		{[]string{"--weights", "w"}, 2, "--model is required"},
		{[]string{"--model", "m"}, 2, "--weights is required"},
		{[]string{"--model", "m", "--weights", "w", "--max-batch", "0"}, 2, "--max-batch 0: give at least 1"},
		{[]string{"--model", "m", "--weights", "w", "--max-wait", "-1s"}, 2, "--max-wait -1s"},
		{[]string{"--model", "m", "--weights", "w", "--max-bytes", "0"}, 2, "--max-bytes 0"},
		{[]string{"--model", "m", "--weights", "w", "extra"}, 2, `unexpected argument "extra"`},
		{[]string{"--model", "m", "--weights", "w", "--max-wiat", "1ms"}, 2, "did you mean --max-wait?"},
		{[]string{"--model", "m", "--weights", "w", "--token-file", "/nonexistent/token"}, 1, "--token-file /nonexistent/token: no such file"},
		{[]string{"--model", "m", "--weights", "w", "--token-file", empty}, 1, "is empty: write the token"},
		{[]string{"--model", t.TempDir(), "--weights", "w"}, 1, "model.safetensors"},
	}
	for _, c := range cases {
		code, _, stderr := runCLI(t, append([]string{"serve"}, c.args...)...)
		if code != c.code || !strings.Contains(stderr, c.want) {
			t.Errorf("%q: status %d, stderr %q, want status %d and %q", c.args, code, stderr, c.code, c.want)
		}
	}
}

// TestServeCommandStopsOnSIGTERM runs the command on a free loopback port
// with a token, checks the token and an answer, then sends SIGTERM while a
// request is in flight: that request is answered and the command exits 0.
func TestServeCommandStopsOnSIGTERM(t *testing.T) {
	fx := newImageFixture(t)
	token := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(token, []byte("s3cret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	stderrR, stderrW := io.Pipe()
	done := make(chan int, 1)
	go func() {
		code := run([]string{"serve", "--model", fx.run, "--weights", fx.weights, "--addr", "127.0.0.1:0",
			"--token-file", token, "--max-wait", "200ms"}, &context{stdout: io.Discard, stderr: stderrW})
		stderrW.Close()
		done <- code
	}()
	lines := bufio.NewScanner(stderrR)
	if !lines.Scan() {
		t.Fatalf("the command ended before serving: status %d", <-done)
	}
	match := regexp.MustCompile(`^serving .* on (http://127\.0\.0\.1:\d+/) \(Ctrl-C to stop\)$`).FindStringSubmatch(lines.Text())
	if match == nil {
		t.Fatalf("first line %q", lines.Text())
	}
	var rest bytes.Buffer
	restDone := make(chan struct{})
	go func() { io.Copy(&rest, stderrR); close(restDone) }()
	base := match[1]

	request := func(method, path, auth string, body []byte) (int, string) {
		req, _ := http.NewRequest(method, base+path, bytes.NewReader(body))
		if auth != "" {
			req.Header.Set("Authorization", auth)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		raw, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(raw)
	}
	if code, _ := request("GET", "healthz", "", nil); code != http.StatusOK {
		t.Errorf("/healthz without a token: %d", code)
	}
	if code, body := request("GET", "v1/model", "Bearer wrong", nil); code != http.StatusUnauthorized || !strings.Contains(body, "--token-file") {
		t.Errorf("wrong token: %d %s", code, body)
	}
	image, _ := os.ReadFile(filepath.Join(fx.root, "tgt", "c", "stripes.tif"))
	// A request in flight when the signal comes: it waits 200 ms for a batch.
	inFlight := make(chan string, 1)
	go func() {
		code, body := request("POST", "v1/classify", "Bearer s3cret", image)
		inFlight <- fmt.Sprint(code, " ", body)
	}()
	time.Sleep(50 * time.Millisecond)
	if err := syscall.Kill(os.Getpid(), syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case code := <-done:
		if answer := <-inFlight; !strings.HasPrefix(answer, "200 ") || !strings.Contains(answer, `"class"`) {
			t.Errorf("the request in flight: %s", answer)
		}
		<-restDone
		if code != 0 || !strings.Contains(rest.String(), "SIGTERM: stopping") || !strings.HasSuffix(rest.String(), "stopped\n") {
			t.Errorf("status %d, stderr after serving %q", code, rest.String())
		}
	case <-time.After(30 * time.Second):
		t.Fatal("the command did not stop within 30 s of SIGTERM")
	}
}

// TestSpecialTokenFile checks that a --token-file that is not a regular
// file is refused at once, naming it.
func TestSpecialTokenFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "token")
	testkit.RefusesSpecialFiles(t, path, func() error { _, err := readToken(path); return err })
}
