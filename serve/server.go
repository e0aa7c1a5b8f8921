// Package serve answers classification requests over HTTP with a model
// that "unimos adapt" trained: it holds one CLIP image encoder and one
// adapted model in memory, decodes the images of concurrent requests on a
// worker pool and encodes them together in batches, so that throughput
// grows with the number of clients while every answer is the one "unimos
// predict --images" gives for the same file.
//
// A request goes through four stages:
//
//  1. admission: a bounded queue counts the images admitted and not yet
//     answered; a request that does not fit is refused at once with 503 and
//     Retry-After, so memory stays bounded however many clients call;
//  2. reading: the body, one image or a multipart form of several, up to
//     Config.MaxBytes (413 beyond);
//  3. decoding: each image on the decode pool, with clip.PreprocessBytes
//     (the decoding and pixel limit of files, from memory);
//  4. batching: one goroutine collects the decoded images of all requests
//     into batches of up to Config.MaxBatch, waiting at most
//     Config.MaxWait for a batch to fill, runs the CLIP encoder and the
//     classifier on each batch and hands every request its rows.
//
// The routes are in handlers.go, the metrics in metrics.go, the web page in
// web/.
package serve

import (
	"errors"
	"fmt"
	"net/http"
	"runtime"
	"sync"
	"time"

	"github.com/unimos/unimos/tensor"
	"github.com/unimos/unimos/unimos"
)

// Encoder turns preprocessed images ([3, n, n] with n = InputResolution(),
// as clip.PreprocessBytes returns them) into image features [N, d], not
// normalised. *clip.Model is one.
type Encoder interface {
	InputResolution() int
	EncodeImages(images [][]float32) (*tensor.Matrix, error)
}

// Classifier gives the class probabilities [N, K] of unit-norm image
// features [N, d], each row depending on its own features alone.
// *unimos.SavedModel is one.
type Classifier interface {
	Probabilities(x *tensor.Matrix) (*tensor.Matrix, error)
}

// Model is what the server answers with.
type Model struct {
	Encoder    Encoder
	Classifier Classifier
	Classes    []string // in the classifier's column order
	// Backbone names the CLIP weights (for GET /v1/model).
	Backbone string
	// Training is the run's result.json, nil when unknown; GET /v1/model
	// shows its summary.
	Training *unimos.Result
}

// Config sets the limits of a Server. Zero values take the defaults.
type Config struct {
	// MaxBatch is the most images encoded at once (default 32).
	MaxBatch int
	// MaxWait is how long a batch that is not full waits for more images
	// from other requests before it is encoded (default 5ms).
	MaxWait time.Duration
	// MaxBytes bounds a request's body (default 20,000,000).
	MaxBytes int64
	// MaxQueue is the most images admitted and not yet answered, across all
	// requests (default 4 × MaxBatch); beyond it requests get 503. It bounds
	// the memory of requests in flight to about MaxQueue bodies of MaxBytes
	// and MaxQueue preprocessed images.
	MaxQueue int
	// DecodeWorkers is the size of the decode pool (default: the number of
	// CPUs).
	DecodeWorkers int
	// Token, when not empty, is required as "Authorization: Bearer TOKEN"
	// on every route but /healthz.
	Token string
}

// Defaults of Config.
const (
	DefaultMaxBatch = 32
	DefaultMaxWait  = 5 * time.Millisecond
	DefaultMaxBytes = 20_000_000
)

// withDefaults fills the zero fields of c.
func (c Config) withDefaults() Config {
	if c.MaxBatch <= 0 {
		c.MaxBatch = DefaultMaxBatch
	}
	if c.MaxWait <= 0 {
		c.MaxWait = DefaultMaxWait
	}
	if c.MaxBytes <= 0 {
		c.MaxBytes = DefaultMaxBytes
	}
	if c.MaxQueue <= 0 {
		c.MaxQueue = 4 * c.MaxBatch
	}
	if c.DecodeWorkers <= 0 {
		c.DecodeWorkers = runtime.NumCPU()
	}
	return c
}

// Server is the HTTP service. Create it with New, serve its Handler, and
// Close it after the HTTP server has stopped (http.Server.Shutdown waits
// for the requests in flight).
type Server struct {
	cfg     Config
	model   Model
	queue   *queue
	decode  chan decodeJob // to the decode pool
	groups  chan *group    // decoded images, to the batcher
	metrics *metrics
	handler http.Handler

	closeOnce sync.Once
	workers   sync.WaitGroup // the decode pool and the batcher
}

// New starts the decode pool and the batcher of a server answering with m.
func New(m Model, cfg Config) (*Server, error) {
	switch {
	case m.Encoder == nil || m.Classifier == nil:
		return nil, errors.New("serve: the model needs an encoder and a classifier")
	case len(m.Classes) < 2:
		return nil, fmt.Errorf("serve: the model has %d classes, want at least 2", len(m.Classes))
	}
	cfg = cfg.withDefaults()
	s := &Server{
		cfg:    cfg,
		model:  m,
		queue:  &queue{capacity: cfg.MaxQueue},
		decode: make(chan decodeJob),
		// Every admitted request holds a slot, so MaxQueue groups always fit
		// and a handler never blocks handing its images over.
		groups: make(chan *group, cfg.MaxQueue),
	}
	s.metrics = newMetrics(s.queue)
	for range cfg.DecodeWorkers {
		s.workers.Go(s.decodeWorker)
	}
	s.workers.Go(s.batcher)
	s.handler = s.routes()
	return s, nil
}

// Handler returns the server's routes, each request guarded against panics.
func (s *Server) Handler() http.Handler { return s.handler }

// Close stops the decode pool and the batcher once the images handed to
// them are done. Call it after no handler runs any more; it is safe to call
// twice.
func (s *Server) Close() {
	s.closeOnce.Do(func() {
		close(s.decode)
		close(s.groups)
		s.workers.Wait()
	})
}

// queue counts the images admitted and not yet answered, up to capacity.
type queue struct {
	mu       sync.Mutex
	used     int
	capacity int
}

// reserve admits n more images, or none when they do not fit.
func (q *queue) reserve(n int) bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.used+n > q.capacity {
		return false
	}
	q.used += n
	return true
}

// release returns n images' places.
func (q *queue) release(n int) {
	q.mu.Lock()
	q.used -= n
	q.mu.Unlock()
}

// depth is the number of images admitted and not yet answered.
func (q *queue) depth() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.used
}

// full reports whether a request of one image would be refused.
func (q *queue) full() bool { return q.depth() >= q.capacity }
