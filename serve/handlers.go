package serve

import (
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/unimos/unimos/internal/words"
	"github.com/unimos/unimos/tensor"
	"github.com/unimos/unimos/unimos"
)

// route is one path the server answers.
type route struct {
	method string
	handle http.HandlerFunc
	// public routes need no token (only /healthz: a liveness probe must not
	// need a secret).
	public bool
}

// DefaultTopK is the number of classes in "top" without ?k=.
const DefaultTopK = 5

// routes returns the server's handler: a fixed table of paths, so that
// the metrics are labelled by route (never by arbitrary paths) and every
// error, even 404 and 405, is JSON.
func (s *Server) routes() http.Handler {
	table := map[string]route{
		"/v1/classify": {method: http.MethodPost, handle: s.handleImages(true)},
		"/v1/embed":    {method: http.MethodPost, handle: s.handleImages(false)},
		"/v1/model":    {method: http.MethodGet, handle: s.handleModel},
		"/healthz":     {method: http.MethodGet, handle: s.handleHealth, public: true},
		"/readyz":      {method: http.MethodGet, handle: s.handleReady},
		"/metrics":     {method: http.MethodGet, handle: s.metrics.handler().ServeHTTP},
	}
	for path, h := range webRoutes() {
		table[path] = route{method: http.MethodGet, handle: h}
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		rt, known := table[r.URL.Path]
		label := r.URL.Path
		if !known {
			label = "other"
		}
		rec := &statusRecorder{ResponseWriter: w}
		defer func() {
			if p := recover(); p != nil {
				// One request's failure must not take the server down.
				if !rec.wroteHeader {
					writeError(rec, http.StatusInternalServerError, fmt.Sprintf("internal error: %v", p))
				}
			}
			s.metrics.observeRequest(label, rec.status(), time.Since(start))
		}()
		switch {
		case s.cfg.Token != "" && !rt.public && !s.authorized(r):
			rec.Header().Set("WWW-Authenticate", `Bearer realm="unimos"`)
			writeError(rec, http.StatusUnauthorized, "missing or wrong token: send the header \"Authorization: Bearer TOKEN\" with the token of the server's --token-file")
		case !known:
			writeError(rec, http.StatusNotFound, fmt.Sprintf("no route %s: the routes are POST /v1/classify, POST /v1/embed, GET /v1/model, /healthz, /readyz, /metrics and the web page /", r.URL.Path))
		case r.Method != rt.method && !(rt.method == http.MethodGet && r.Method == http.MethodHead):
			rec.Header().Set("Allow", rt.method)
			writeError(rec, http.StatusMethodNotAllowed, fmt.Sprintf("%s takes %s, not %s", r.URL.Path, rt.method, r.Method))
		default:
			rt.handle(rec, r)
		}
	})
}

// authorized reports whether r carries the server's token, compared in
// constant time so that the answer's timing tells nothing about it.
func (s *Server) authorized(r *http.Request) bool {
	token, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	return ok && subtle.ConstantTimeCompare([]byte(token), []byte(s.cfg.Token)) == 1
}

// statusRecorder remembers the status a handler wrote, for the metrics.
type statusRecorder struct {
	http.ResponseWriter
	code        int
	wroteHeader bool
}

func (r *statusRecorder) WriteHeader(code int) {
	if !r.wroteHeader {
		r.code, r.wroteHeader = code, true
	}
	r.ResponseWriter.WriteHeader(code)
}

func (r *statusRecorder) Write(b []byte) (int, error) {
	if !r.wroteHeader {
		r.WriteHeader(http.StatusOK)
	}
	return r.ResponseWriter.Write(b)
}

func (r *statusRecorder) status() int {
	if !r.wroteHeader {
		return http.StatusOK
	}
	return r.code
}

// errorJSON is the body of every error answer.
type errorJSON struct {
	Error string `json:"error"`
}

func writeError(w http.ResponseWriter, code int, msg string) {
	writeJSON(w, code, errorJSON{msg})
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(code)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.Encode(v) // an error here is the client gone; nothing left to tell it
}

// retryAfterSeconds is the Retry-After of a 503: about the time a full
// queue of small batches takes to drain.
const retryAfterSeconds = "1"

// refuseBusy answers a request that does not fit in the queue.
func (s *Server) refuseBusy(w http.ResponseWriter) {
	w.Header().Set("Retry-After", retryAfterSeconds)
	writeError(w, http.StatusServiceUnavailable, fmt.Sprintf("the server is busy: %s are waiting to be classified, the most it queues; retry after %s s",
		words.Count(s.queue.capacity, "image"), retryAfterSeconds))
}

// classification is the answer for one image of POST /v1/classify.
type classification struct {
	Name       string      `json:"name,omitempty"` // multipart: the part's file name
	Class      string      `json:"class,omitempty"`
	Confidence float32     `json:"confidence,omitempty"`
	Top        []classProb `json:"top,omitempty"`
	Error      string      `json:"error,omitempty"` // multipart: why this part could not be decoded
}

type classProb struct {
	Class       string  `json:"class"`
	Probability float32 `json:"probability"`
}

// embedding is the answer for one image of POST /v1/embed.
type embedding struct {
	Name      string    `json:"name,omitempty"`
	Embedding []float32 `json:"embedding,omitempty"` // L2-normalised CLIP image features
	Error     string    `json:"error,omitempty"`
}

// upload is one image of a request.
type upload struct {
	name string
	data []byte
}

// handleImages answers POST /v1/classify (classify) and POST /v1/embed.
// The body is one image, or a multipart/form-data form whose parts are
// images; the answer is one object, or an array of one object per part in
// order. A part that cannot be decoded gets an object with "error" (the
// others are answered); when no image can be decoded, the request fails
// with 422.
func (s *Server) handleImages(classify bool) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		k := 0
		if classify {
			var err error
			if k, err = topK(r.URL.Query().Get("k"), len(s.model.Classes)); err != nil {
				writeError(w, http.StatusBadRequest, err.Error())
				return
			}
		}
		// A place in the queue before the body is read, so that the bodies
		// held at once are bounded too.
		if !s.queue.reserve(1) {
			s.refuseBusy(w)
			return
		}
		held := 1
		defer func() { s.queue.release(held) }()
		uploads, multi, herr := s.readImages(w, r)
		if herr != nil {
			writeError(w, herr.code, herr.msg)
			return
		}
		if extra := len(uploads) - 1; extra > 0 {
			if !s.queue.reserve(extra) {
				s.refuseBusy(w)
				return
			}
			held += extra
		}
		images := make([][]byte, len(uploads))
		for i, u := range uploads {
			images[i] = u.data
		}
		items := s.process(images, classify)

		decoded := 0
		for _, it := range items {
			if it.err != nil {
				writeError(w, http.StatusInternalServerError, it.err.Error())
				return
			}
			if it.undecodable == "" {
				decoded++
			}
		}
		if decoded == 0 {
			msg := items[0].undecodable
			if multi {
				msg = fmt.Sprintf("none of the %s could be decoded (first: %s: %s)", words.Count(len(items), "image"), uploads[0].name, msg)
			}
			writeError(w, http.StatusUnprocessableEntity, msg)
			return
		}
		answers := make([]any, len(items))
		for i, it := range items {
			switch {
			case !multi && classify:
				answers[i] = s.classification(it.probs, k)
			case !multi:
				answers[i] = embedding{Embedding: it.features}
			case it.undecodable != "" && classify:
				answers[i] = classification{Name: uploads[i].name, Error: it.undecodable}
			case it.undecodable != "":
				answers[i] = embedding{Name: uploads[i].name, Error: it.undecodable}
			case classify:
				c := s.classification(it.probs, k)
				c.Name = uploads[i].name
				answers[i] = c
			default:
				answers[i] = embedding{Name: uploads[i].name, Embedding: it.features}
			}
		}
		if !multi {
			writeJSON(w, http.StatusOK, answers[0])
			return
		}
		writeJSON(w, http.StatusOK, answers)
	}
}

// classification is the answer for one row of probabilities: the class
// and confidence are the argmax and maximum as "unimos predict" takes them
// (tensor.ArgmaxRows: the first of equal maxima), then the k best classes.
func (s *Server) classification(probs []float32, k int) classification {
	best := tensor.ArgmaxRows(&tensor.Matrix{Rows: 1, Cols: len(probs), Stride: len(probs), Data: probs})[0]
	order := make([]int, 0, len(probs))
	order = append(order, best)
	for c := range probs {
		if c != best {
			order = append(order, c)
		}
	}
	slices.SortStableFunc(order[1:], func(a, b int) int {
		switch {
		case probs[a] > probs[b]:
			return -1
		case probs[a] < probs[b]:
			return 1
		}
		return 0
	})
	out := classification{Class: s.model.Classes[best], Confidence: probs[best]}
	for _, c := range order[:k] {
		out.Top = append(out.Top, classProb{s.model.Classes[c], probs[c]})
	}
	return out
}

// topK parses ?k=: the number of classes in "top", DefaultTopK when
// absent, at most the number of classes.
func topK(raw string, classes int) (int, error) {
	if raw == "" {
		return min(DefaultTopK, classes), nil
	}
	k, err := strconv.Atoi(raw)
	if err != nil || k < 1 {
		return 0, fmt.Errorf("k=%q: give the number of best classes to list, a whole number from 1 to %d", raw, classes)
	}
	return min(k, classes), nil
}

// httpError is a client error found while reading a request.
type httpError struct {
	code int
	msg  string
}

// readImages reads the images of a request: the body itself, or the parts
// of a multipart form (multi), within MaxBytes in all and at most MaxQueue
// parts.
func (s *Server) readImages(w http.ResponseWriter, r *http.Request) (uploads []upload, multi bool, herr *httpError) {
	tooLarge := &httpError{http.StatusRequestEntityTooLarge,
		fmt.Sprintf("the request body is over the server's limit of %d bytes (--max-bytes): send smaller or fewer images per request", s.cfg.MaxBytes)}
	if r.ContentLength > s.cfg.MaxBytes {
		return nil, false, tooLarge // refused before reading a byte
	}
	body := http.MaxBytesReader(w, r.Body, s.cfg.MaxBytes)
	readErr := func(err error) *httpError {
		if _, ok := errors.AsType[*http.MaxBytesError](err); ok {
			return tooLarge
		}
		return &httpError{http.StatusBadRequest, fmt.Sprintf("reading the request: %v", err)}
	}
	mediaType, params, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if !strings.HasPrefix(mediaType, "multipart/") {
		data, err := io.ReadAll(body)
		if err != nil {
			return nil, false, readErr(err)
		}
		if len(data) == 0 {
			return nil, false, &httpError{http.StatusBadRequest, "the request has no body: send an image file as the body, or several as a multipart/form-data form"}
		}
		return []upload{{name: "body", data: data}}, false, nil
	}
	if params["boundary"] == "" {
		return nil, true, &httpError{http.StatusBadRequest, "the multipart Content-Type has no boundary"}
	}
	mr := multipart.NewReader(body, params["boundary"])
	for {
		part, err := mr.NextPart()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, true, readErr(err)
		}
		if len(uploads) == s.cfg.MaxQueue {
			return nil, true, &httpError{http.StatusRequestEntityTooLarge,
				fmt.Sprintf("more than %s in one request, the most the server queues (--max-queue): send them in several requests", words.Count(s.cfg.MaxQueue, "image"))}
		}
		data, err := io.ReadAll(part)
		if err != nil {
			return nil, true, readErr(err)
		}
		name := part.FileName()
		if name == "" {
			name = part.FormName()
		}
		if name == "" {
			name = fmt.Sprintf("part %d", len(uploads)+1)
		}
		uploads = append(uploads, upload{name: name, data: data})
	}
	if len(uploads) == 0 {
		return nil, true, &httpError{http.StatusBadRequest, "the multipart form has no parts: add the images as its parts"}
	}
	return uploads, true, nil
}

// modelJSON is the answer of GET /v1/model.
type modelJSON struct {
	Classes  []string         `json:"classes"`
	Backbone string           `json:"backbone"`
	Training *trainingSummary `json:"training"` // null when the run's result.json is unknown
	Limits   limitsJSON       `json:"limits"`
}

// trainingSummary is result.json without the per-epoch history and the
// hyperparameters.
type trainingSummary struct {
	Task         string            `json:"task"`
	Source       string            `json:"source"`
	Target       string            `json:"target"`
	Method       string            `json:"method"`
	Preset       string            `json:"preset,omitempty"`
	Seed         uint64            `json:"seed"`
	Epochs       int               `json:"epochs"`
	ZeroShot     *unimos.Score     `json:"zero_shot,omitempty"`
	Final        *unimos.Score     `json:"final,omitempty"`
	Best         *unimos.BestEpoch `json:"best,omitempty"`
	TrainSeconds float64           `json:"train_seconds"`
}

type limitsJSON struct {
	MaxBatch int   `json:"max_batch"`
	MaxBytes int64 `json:"max_bytes"`
	MaxQueue int   `json:"max_queue"`
}

func (s *Server) handleModel(w http.ResponseWriter, r *http.Request) {
	out := modelJSON{
		Classes:  s.model.Classes,
		Backbone: s.model.Backbone,
		Limits:   limitsJSON{s.cfg.MaxBatch, s.cfg.MaxBytes, s.cfg.MaxQueue},
	}
	if t := s.model.Training; t != nil {
		out.Training = &trainingSummary{Task: t.Task, Source: t.Source, Target: t.Target, Method: t.Method, Preset: t.Preset,
			Seed: t.Seed, Epochs: t.Epochs, ZeroShot: t.ZeroShot, Best: t.Best, TrainSeconds: t.TrainSeconds}
		if t.Final != nil {
			out.Training.Final = &t.Final.Score
		}
	}
	writeJSON(w, http.StatusOK, out)
}

// handleHealth answers GET /healthz: the process is up.
func (s *Server) handleHealth(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
}

// handleReady answers GET /readyz: the model is loaded (a Server always
// has one) and the queue has room for a request.
func (s *Server) handleReady(w http.ResponseWriter, r *http.Request) {
	if s.queue.full() {
		s.refuseBusy(w)
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"status": "ready"})
}
