package serve

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"io"
	"math"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/unimos/unimos/internal/testkit"
	"github.com/unimos/unimos/tensor"
)

// colourClasses are the classes of the test double: the dominant colour.
var colourClasses = []string{"red", "green", "blue"}

// colourEncoder is a CLIP double: an image's features are its mean
// normalised value per channel. When gate is set, every batch waits for a
// value from it (a slow model); panics makes it panic instead.
type colourEncoder struct {
	gate    chan struct{}
	panics  atomic.Bool
	fails   atomic.Bool
	batches atomic.Int64
}

// testResolution is the double's input size: small, so decoding is quick.
const testResolution = 8

func (e *colourEncoder) InputResolution() int { return testResolution }

func (e *colourEncoder) EncodeImages(images [][]float32) (*tensor.Matrix, error) {
	if e.gate != nil {
		<-e.gate
	}
	e.batches.Add(1)
	if e.panics.Load() {
		panic("the double panics")
	}
	if e.fails.Load() {
		return nil, errors.New("the double fails")
	}
	plane := testResolution * testResolution
	out := tensor.New(len(images), 3)
	for i, img := range images {
		for c := range 3 {
			var sum float32
			for _, v := range img[c*plane : (c+1)*plane] {
				sum += v
			}
			out.Row(i)[c] = sum / float32(plane)
		}
	}
	return out, nil
}

// softmaxClassifier gives softmax(10·x): the channel with the largest
// normalised mean wins.
type softmaxClassifier struct{}

func (softmaxClassifier) Probabilities(x *tensor.Matrix) (*tensor.Matrix, error) {
	out := tensor.New(x.Rows, x.Cols)
	for i := range x.Rows {
		var sum float64
		for j, v := range x.Row(i) {
			e := math.Exp(10 * float64(v))
			out.Row(i)[j] = float32(e)
			sum += e
		}
		for j := range out.Row(i) {
			out.Row(i)[j] /= float32(sum)
		}
	}
	return out, nil
}

// newTestServer serves the colour double with cfg.
func newTestServer(t *testing.T, enc *colourEncoder, cfg Config) (*Server, *httptest.Server) {
	t.Helper()
	s, err := New(Model{Encoder: enc, Classifier: softmaxClassifier{}, Classes: colourClasses, Backbone: "colour double"}, cfg)
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(s.Handler())
	t.Cleanup(func() {
		ts.Close()
		s.Close()
	})
	return s, ts
}

// solidPNG is a 20x12 PNG of one colour.
func solidPNG(t testing.TB, c color.Color) []byte {
	t.Helper()
	img := image.NewRGBA(image.Rect(0, 0, 20, 12))
	for y := range 12 {
		for x := range 20 {
			img.Set(x, y, c)
		}
	}
	var buf bytes.Buffer
	if err := png.Encode(&buf, img); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

var (
	red   = color.RGBA{220, 20, 30, 255}
	green = color.RGBA{10, 200, 40, 255}
	blue  = color.RGBA{20, 30, 230, 255}
)

// part is one part of a multipart form.
type part struct {
	name string
	data []byte
}

func multipartForm(t testing.TB, parts ...part) (string, []byte) {
	t.Helper()
	var buf bytes.Buffer
	w := multipart.NewWriter(&buf)
	for _, p := range parts {
		pw, err := w.CreateFormFile("image", p.name)
		if err != nil {
			t.Fatal(err)
		}
		pw.Write(p.data)
	}
	w.Close()
	return w.FormDataContentType(), buf.Bytes()
}

// call makes one request and returns the status, headers and body.
func call(t testing.TB, method, url, contentType string, body []byte, header ...string) (int, http.Header, string) {
	t.Helper()
	req, err := http.NewRequest(method, url, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, resp.Header, string(raw)
}

// TestRequests covers each route's answers and every error path, with the
// colour double.
func TestRequests(t *testing.T) {
	_, ts := newTestServer(t, &colourEncoder{}, Config{MaxBytes: 4000, MaxQueue: 4})
	multi := func(parts ...part) (string, []byte) { return multipartForm(t, parts...) }
	redBlue, redBlueBody := multi(part{"r.png", solidPNG(t, red)}, part{"b.png", solidPNG(t, blue)})
	mixed, mixedBody := multi(part{"r.png", solidPNG(t, red)}, part{"notes.txt", []byte("hello")}, part{"g.png", solidPNG(t, green)})
	bad, badBody := multi(part{"a.txt", []byte("a")}, part{"b.txt", []byte("b")})
	five, fiveBody := multi(part{"1", []byte("1")}, part{"2", []byte("2")}, part{"3", []byte("3")}, part{"4", []byte("4")}, part{"5", []byte("5")})
	empty, emptyBody := multi()
	cases := []struct {
		name, method, path, contentType string
		body                            []byte
		code                            int
		want                            []string // substrings of the body
	}{
		{"one image", "POST", "/v1/classify", "image/png", solidPNG(t, red), 200,
			[]string{`"class": "red"`, `"confidence": 0.9`, `"top": [`, `"class": "green"`}},
		{"k=1", "POST", "/v1/classify?k=1", "image/png", solidPNG(t, green), 200, []string{`"class": "green"`}},
		{"multipart", "POST", "/v1/classify", redBlue, redBlueBody, 200,
			[]string{`"name": "r.png",` + "\n" + `    "class": "red"`, `"name": "b.png",` + "\n" + `    "class": "blue"`}},
		{"multipart, one part undecodable", "POST", "/v1/classify", mixed, mixedBody, 200,
			[]string{`"class": "red"`, `"name": "notes.txt",` + "\n" + `    "error": "not a JPEG, PNG, GIF, BMP, TIFF or WebP image"`, `"class": "green"`}},
		{"embed", "POST", "/v1/embed", "image/png", solidPNG(t, blue), 200, []string{`"embedding": [`}},
		{"embed multipart", "POST", "/v1/embed", redBlue, redBlueBody, 200, []string{`"name": "b.png",` + "\n" + `    "embedding": [`}},
		{"model", "GET", "/v1/model", "", nil, 200, []string{`"classes": [`, `"backbone": "colour double"`, `"training": null`, `"max_queue": 4`}},
		{"healthz", "GET", "/healthz", "", nil, 200, []string{`"status": "ok"`}},
		{"readyz", "GET", "/readyz", "", nil, 200, []string{`"status": "ready"`}},
		{"web page", "GET", "/", "", nil, 200, []string{"<title>unimos</title>", `src="app.js"`}},
		{"script", "GET", "/app.js", "", nil, 200, []string{"v1/classify"}},

		{"k=0", "POST", "/v1/classify?k=0", "image/png", solidPNG(t, red), 400, []string{`"error": "k=\"0\": give the number of best classes to list, a whole number from 1 to 3"`}},
		{"k=x", "POST", "/v1/classify?k=x", "image/png", solidPNG(t, red), 400, []string{`k=\"x\"`}},
		{"no body", "POST", "/v1/classify", "image/png", nil, 400, []string{"the request has no body"}},
		{"not an image", "POST", "/v1/classify", "image/png", []byte("hello"), 422, []string{`"error": "not a JPEG, PNG, GIF, BMP, TIFF or WebP image"`}},
		{"truncated", "POST", "/v1/embed", "image/png", solidPNG(t, red)[:50], 422, []string{"png: invalid format: not enough pixel data"}},
		{"too many pixels", "POST", "/v1/classify", "image/png", testkit.PNGDeclaring(30000, 30000), 422, []string{"png image of 30000×30000 pixels exceeds the limit of 178956970 pixels"}},
		{"body too large", "POST", "/v1/classify", "image/png", make([]byte, 5000), 413, []string{"over the server's limit of 4000 bytes (--max-bytes)"}},
		{"multipart too large", "POST", "/v1/classify", redBlue, append(bytes.Repeat([]byte{'x'}, 4000), redBlueBody...), 413, []string{"--max-bytes"}},
		{"no boundary", "POST", "/v1/classify", "multipart/form-data", redBlueBody, 400, []string{"no boundary"}},
		{"no parts", "POST", "/v1/classify", empty, emptyBody, 400, []string{"the multipart form has no parts"}},
		{"more parts than the queue", "POST", "/v1/classify", five, fiveBody, 413, []string{"more than 4 images in one request"}},
		{"no part decodable", "POST", "/v1/classify", bad, badBody, 422, []string{"none of the 2 images could be decoded (first: a.txt: not a JPEG"}},
		{"wrong method", "GET", "/v1/classify", "", nil, 405, []string{"/v1/classify takes POST, not GET"}},
		{"wrong method, GET route", "POST", "/v1/model", "", nil, 405, []string{"takes GET"}},
		{"unknown route", "GET", "/v2/classify", "", nil, 404, []string{"no route /v2/classify"}},
		{"a file name", "GET", "/../../etc/passwd", "", nil, 404, []string{"no route"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			code, header, body := call(t, c.method, ts.URL+c.path, c.contentType, c.body)
			if code != c.code {
				t.Errorf("status %d, want %d: %s", code, c.code, body)
			}
			for _, w := range c.want {
				if !strings.Contains(body, w) {
					t.Errorf("body lacks %q:\n%s", w, body)
				}
			}
			if ct := header.Get("Content-Type"); c.path != "/" && c.path != "/app.js" && ct != "application/json" {
				t.Errorf("Content-Type %q", ct)
			}
			if c.code == 405 && header.Get("Allow") == "" {
				t.Error("405 without Allow")
			}
		})
	}
	// An image over the limit sent without a Content-Length (chunked) is cut
	// off while it is read.
	req, _ := http.NewRequest("POST", ts.URL+"/v1/classify", io.MultiReader(bytes.NewReader(make([]byte, 3000)), bytes.NewReader(make([]byte, 3000))))
	req.ContentLength = -1
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 413 {
		t.Errorf("chunked body over the limit: status %d", resp.StatusCode)
	}
}

// TestClassificationTop checks the top-k list against the probabilities:
// the class first, then the others by decreasing probability, and every
// probability of the row summing to 1.
func TestClassificationTop(t *testing.T) {
	s := &Server{model: Model{Classes: []string{"a", "b", "c", "d"}}}
	cases := []struct {
		probs []float32
		k     int
		want  []string
	}{
		{[]float32{0.1, 0.6, 0.2, 0.1}, 4, []string{"b", "c", "a", "d"}},
		{[]float32{0.1, 0.6, 0.2, 0.1}, 2, []string{"b", "c"}},
		{[]float32{0.3, 0.3, 0.3, 0.1}, 3, []string{"a", "b", "c"}}, // ties: the first, as predict's argmax
	}
	for _, c := range cases {
		got := s.classification(c.probs, c.k)
		var names []string
		for _, p := range got.Top {
			names = append(names, p.Class)
		}
		if got.Class != c.want[0] || got.Confidence != max(c.probs[0], c.probs[1], c.probs[2], c.probs[3]) || strings.Join(names, ",") != strings.Join(c.want, ",") {
			t.Errorf("%v k=%d: %+v, want %v", c.probs, c.k, got, c.want)
		}
	}
}

// TestModelFailureFailsOnlyItsBatch makes the encoder panic, then fail:
// those requests get 500 with the reason, and the next request is answered.
func TestModelFailureFailsOnlyItsBatch(t *testing.T) {
	enc := &colourEncoder{}
	_, ts := newTestServer(t, enc, Config{})
	enc.panics.Store(true)
	code, _, body := call(t, "POST", ts.URL+"/v1/classify", "image/png", solidPNG(t, red))
	if code != 500 || !strings.Contains(body, "the model failed on a batch of 1 images: the double panics") {
		t.Errorf("panic: status %d, %s", code, body)
	}
	enc.panics.Store(false)
	enc.fails.Store(true)
	if code, _, body := call(t, "POST", ts.URL+"/v1/classify", "image/png", solidPNG(t, red)); code != 500 || !strings.Contains(body, "the double fails") {
		t.Errorf("error: status %d, %s", code, body)
	}
	enc.fails.Store(false)
	if code, _, body := call(t, "POST", ts.URL+"/v1/classify", "image/png", solidPNG(t, red)); code != 200 || !strings.Contains(body, `"class": "red"`) {
		t.Errorf("after the failures: status %d, %s", code, body)
	}
}

// TestToken requires the bearer token on every route but /healthz.
func TestToken(t *testing.T) {
	_, ts := newTestServer(t, &colourEncoder{}, Config{Token: "s3cret"})
	png := solidPNG(t, red)
	cases := []struct {
		method, path string
		auth         string // "" sends no Authorization header
		code         int
	}{
		{"GET", "/healthz", "", 200},
		{"GET", "/readyz", "", 401},
		{"GET", "/metrics", "", 401},
		{"GET", "/", "", 401},
		{"GET", "/v1/model", "", 401},
		{"GET", "/nowhere", "", 401}, // no hint of which routes exist
		{"POST", "/v1/classify", "", 401},
		{"POST", "/v1/classify", "Bearer wrong", 401},
		{"POST", "/v1/classify", "Bearer s3cret2", 401},
		{"POST", "/v1/classify", "Bearer s3cre", 401},
		{"POST", "/v1/classify", "s3cret", 401},
		{"POST", "/v1/classify", "Basic s3cret", 401},
		{"POST", "/v1/classify", "Bearer s3cret", 200},
		{"POST", "/v1/embed", "Bearer s3cret", 200},
		{"GET", "/v1/model", "Bearer s3cret", 200},
		{"GET", "/metrics", "Bearer s3cret", 200},
		{"GET", "/", "Bearer s3cret", 200},
	}
	for _, c := range cases {
		var header []string
		if c.auth != "" {
			header = []string{"Authorization", c.auth}
		}
		code, h, body := call(t, c.method, ts.URL+c.path, "image/png", png, header...)
		if code != c.code {
			t.Errorf("%s %s with %q: status %d, want %d: %s", c.method, c.path, c.auth, code, c.code, body)
		}
		if code == 401 && (h.Get("WWW-Authenticate") != `Bearer realm="unimos"` || !strings.Contains(body, "Authorization: Bearer TOKEN")) {
			t.Errorf("%s %s: 401 with WWW-Authenticate %q: %s", c.method, c.path, h.Get("WWW-Authenticate"), body)
		}
	}
}

// TestQueueLimit fills the queue behind a model that waits for the test:
// the next request gets 503 with Retry-After and /readyz says busy; once
// the model goes on, the queued requests are answered and the server takes
// requests again.
func TestQueueLimit(t *testing.T) {
	enc := &colourEncoder{gate: make(chan struct{})}
	s, ts := newTestServer(t, enc, Config{MaxBatch: 1, MaxQueue: 2})
	answers := make(chan string, 2)
	for _, c := range []color.Color{red, blue} {
		go func() {
			code, _, body := call(t, "POST", ts.URL+"/v1/classify", "image/png", solidPNG(t, c))
			answers <- fmt.Sprint(code, body)
		}()
	}
	deadline := time.Now().Add(10 * time.Second)
	for s.queue.depth() < 2 {
		if time.Now().After(deadline) {
			t.Fatalf("the queue holds %d images after 10 s, want 2", s.queue.depth())
		}
		time.Sleep(time.Millisecond)
	}
	code, header, body := call(t, "POST", ts.URL+"/v1/classify", "image/png", solidPNG(t, green))
	if code != 503 || header.Get("Retry-After") != "1" || !strings.Contains(body, "the server is busy: 2 images are waiting") {
		t.Errorf("full queue: status %d, Retry-After %q, %s", code, header.Get("Retry-After"), body)
	}
	if code, header, _ := call(t, "GET", ts.URL+"/readyz", "", nil); code != 503 || header.Get("Retry-After") == "" {
		t.Errorf("/readyz with a full queue: %d", code)
	}
	if code, _, _ := call(t, "GET", ts.URL+"/healthz", "", nil); code != 200 {
		t.Errorf("/healthz with a full queue: %d", code)
	}
	enc.gate <- struct{}{}
	enc.gate <- struct{}{}
	for range 2 {
		if a := <-answers; !strings.HasPrefix(a, "200") {
			t.Errorf("a queued request: %s", a)
		}
	}
	close(enc.gate) // from now on the model does not wait
	if code, _, _ := call(t, "GET", ts.URL+"/readyz", "", nil); code != 200 {
		t.Errorf("/readyz after the queue drained: %d", code)
	}
	if code, _, body := call(t, "POST", ts.URL+"/v1/classify", "image/png", solidPNG(t, green)); code != 200 || !strings.Contains(body, `"class": "green"`) {
		t.Errorf("after the queue drained: %d %s", code, body)
	}
	if s.queue.depth() != 0 {
		t.Errorf("queue depth %d after every answer", s.queue.depth())
	}
}

// TestMetrics checks the Prometheus text: requests by route and status,
// latency, batch sizes, queue depth and throughput.
func TestMetrics(t *testing.T) {
	_, ts := newTestServer(t, &colourEncoder{}, Config{})
	call(t, "POST", ts.URL+"/v1/classify", "image/png", solidPNG(t, red))
	call(t, "POST", ts.URL+"/v1/classify", "image/png", []byte("x"))
	call(t, "GET", ts.URL+"/nowhere/at/all", "", nil)
	code, header, body := call(t, "GET", ts.URL+"/metrics", "", nil)
	if code != 200 || !strings.HasPrefix(header.Get("Content-Type"), "text/plain") {
		t.Fatalf("status %d, Content-Type %q", code, header.Get("Content-Type"))
	}
	for _, want := range []string{
		`unimos_http_requests_total{code="200",route="/v1/classify"} 1`,
		`unimos_http_requests_total{code="422",route="/v1/classify"} 1`,
		`unimos_http_requests_total{code="404",route="other"} 1`,
		`unimos_http_request_duration_seconds_count{route="/v1/classify"} 2`,
		"unimos_batch_size_sum 1",
		"unimos_batch_size_count 1",
		"unimos_queue_depth 0",
		"unimos_queue_capacity 128",
		"unimos_images_total 1",
		"unimos_images_per_second 0.1",
		"process_resident_memory_bytes",
		"go_goroutines",
	} {
		if !strings.Contains(body, want) {
			t.Errorf("no %q in the metrics", want)
		}
	}
}

// TestNewRefusesIncompleteModels covers New's checks.
func TestNewRefusesIncompleteModels(t *testing.T) {
	cases := []struct {
		model Model
		want  string
	}{
		{Model{Classifier: softmaxClassifier{}, Classes: colourClasses}, "needs an encoder and a classifier"},
		{Model{Encoder: &colourEncoder{}, Classes: colourClasses}, "needs an encoder and a classifier"},
		{Model{Encoder: &colourEncoder{}, Classifier: softmaxClassifier{}, Classes: []string{"one"}}, "1 classes"},
	}
	for _, c := range cases {
		if _, err := New(c.model, Config{}); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%v, want %q", err, c.want)
		}
	}
}

// TestWebPageHeaders checks that the page may load nothing from elsewhere.
func TestWebPageHeaders(t *testing.T) {
	_, ts := newTestServer(t, &colourEncoder{}, Config{})
	_, header, body := call(t, "GET", ts.URL+"/", "", nil)
	if csp := header.Get("Content-Security-Policy"); !strings.Contains(csp, "default-src 'none'") || !strings.Contains(csp, "connect-src 'self'") {
		t.Errorf("Content-Security-Policy %q", csp)
	}
	if strings.Contains(body, "http://") || strings.Contains(body, "https://") || strings.Contains(body, "//cdn") {
		t.Errorf("the page refers to another site:\n%s", body)
	}
	var model modelJSON
	_, _, raw := call(t, "GET", ts.URL+"/v1/model", "", nil)
	if err := json.Unmarshal([]byte(raw), &model); err != nil || len(model.Classes) != 3 {
		t.Errorf("GET /v1/model: %v %s", err, raw)
	}
}
