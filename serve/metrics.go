package serve

import (
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// metrics are the server's Prometheus metrics, in a registry of its own
// (not the global one) so that several servers in one process, as in the
// tests, count separately.
type metrics struct {
	registry        *prometheus.Registry
	requests        *prometheus.CounterVec   // by route and status code
	latency         *prometheus.HistogramVec // by route
	batchSize       prometheus.Histogram
	batchSeconds    prometheus.Histogram
	decodeSeconds   prometheus.Histogram
	images          prometheus.Counter
	failedBatches   prometheus.Counter
	imagesPerSecond *rateWindow
}

// rateWindowLength is the span over which unimos_images_per_second counts.
const rateWindowLength = 10 * time.Second

func newMetrics(q *queue) *metrics {
	m := &metrics{
		registry: prometheus.NewRegistry(),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "unimos_http_requests_total",
			Help: "HTTP requests answered, by route and status code.",
		}, []string{"route", "code"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "unimos_http_request_duration_seconds",
			Help:    "Time from a request's arrival to its answer, by route.",
			Buckets: prometheus.ExponentialBucketsRange(0.001, 30, 16),
		}, []string{"route"}),
		batchSize: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "unimos_batch_size",
			Help:    "Images per batch the CLIP encoder ran on.",
			Buckets: []float64{1, 2, 4, 8, 16, 32, 64, 128},
		}),
		batchSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "unimos_batch_duration_seconds",
			Help:    "Time to encode and classify one batch.",
			Buckets: prometheus.ExponentialBucketsRange(0.001, 30, 16),
		}),
		decodeSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "unimos_decode_duration_seconds",
			Help:    "Time to decode and preprocess one image.",
			Buckets: prometheus.ExponentialBucketsRange(0.0001, 10, 16),
		}),
		images: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "unimos_images_total",
			Help: "Images encoded (rate() of it is the throughput).",
		}),
		failedBatches: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "unimos_failed_batches_total",
			Help: "Batches the model failed on (their requests got 500).",
		}),
		imagesPerSecond: &rateWindow{span: rateWindowLength},
	}
	m.registry.MustRegister(m.requests, m.latency, m.batchSize, m.batchSeconds, m.decodeSeconds, m.images, m.failedBatches,
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "unimos_queue_depth",
			Help: "Images admitted and not yet answered.",
		}, func() float64 { return float64(q.depth()) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "unimos_queue_capacity",
			Help: "The most images admitted at once (--max-queue); requests beyond it get 503.",
		}, func() float64 { return float64(q.capacity) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "unimos_images_per_second",
			Help: "Images encoded per second over the last 10 seconds.",
		}, func() float64 { return m.imagesPerSecond.rate(time.Now()) }),
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	)
	return m
}

// handler serves the metrics in the Prometheus text format.
func (m *metrics) handler() http.Handler {
	return promhttp.HandlerFor(m.registry, promhttp.HandlerOpts{})
}

// observeRequest counts an answered request.
func (m *metrics) observeRequest(route string, code int, d time.Duration) {
	m.requests.WithLabelValues(route, strconv.Itoa(code)).Inc()
	m.latency.WithLabelValues(route).Observe(d.Seconds())
}

// observeBatch counts a batch of n images that took d.
func (m *metrics) observeBatch(n int, d time.Duration, ok bool) {
	m.batchSize.Observe(float64(n))
	m.batchSeconds.Observe(d.Seconds())
	if !ok {
		m.failedBatches.Inc()
		return
	}
	m.images.Add(float64(n))
	m.imagesPerSecond.add(time.Now(), n)
}

// rateWindow counts events over the last span.
type rateWindow struct {
	mu     sync.Mutex
	span   time.Duration
	events []rateEvent // in time order, none older than span
}

type rateEvent struct {
	at time.Time
	n  int
}

func (w *rateWindow) add(now time.Time, n int) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.prune(now)
	w.events = append(w.events, rateEvent{now, n})
}

// rate is the events per second over the last span.
func (w *rateWindow) rate(now time.Time) float64 {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.prune(now)
	total := 0
	for _, e := range w.events {
		total += e.n
	}
	return float64(total) / w.span.Seconds()
}

// prune drops the events older than span, so that the slice stays as long
// as the batches of one span.
func (w *rateWindow) prune(now time.Time) {
	i := 0
	for i < len(w.events) && now.Sub(w.events[i].at) > w.span {
		i++
	}
	w.events = append(w.events[:0], w.events[i:]...)
}
