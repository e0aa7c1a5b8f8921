package extract

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"time"

	"github.com/unimos/unimos/clip"
)

// batchWork is a batch whose images the decoding workers fill in.
type batchWork struct {
	index   int           // batch number within its domain
	lo      int           // row of its first image
	pixels  [][]float32   // [hi-lo] preprocessed images [3, n, n]; nil where decoding failed
	reasons []string      // [hi-lo] why an image failed; "" where it decoded
	left    atomic.Int64  // images not decoded yet
	done    chan struct{} // closed when left reaches 0
}

// decodeJob asks a worker to decode image k of a batch.
type decodeJob struct {
	batch *batchWork
	k     int
	image Image
}

// stopGrace is how long decodeAhead waits, once it is stopping, for the
// decodes in progress to end. An image is decoded within seconds (clip reads
// regular files only, under a pixel limit), but a read can hang on a broken
// network mount; a stop (Ctrl-C, SIGTERM) must not wait for it for ever.
var stopGrace = 30 * time.Second

// decodeAhead decodes the images of the pending batches of domain d with
// decode on workers goroutines and calls consume with each batch, in
// order, once its images are ready, while up to prefetch further batches
// are decoded. It returns consume's first error, or ctx.Err() when ctx is
// cancelled, once every goroutine it started has stopped, or after
// stopGrace when a decode does not end (that goroutine then finishes on its
// own, and its result is dropped).
func decodeAhead(ctx context.Context, p *Plan, d int, pending []int, images []Image, decode func(Image) ([]float32, string), workers int, consume func(*batchWork) error) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	jobs := make(chan decodeJob)
	ready := make(chan *batchWork, prefetch)
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for j := range jobs {
				j.batch.pixels[j.k], j.batch.reasons[j.k] = decode(j.image)
				if j.batch.left.Add(-1) == 0 {
					close(j.batch.done)
				}
			}
		})
	}
	wg.Go(func() {
		defer close(ready)
		defer close(jobs)
		for _, b := range pending {
			lo, hi := p.rows(d, b)
			w := &batchWork{index: b, lo: lo, pixels: make([][]float32, hi-lo), reasons: make([]string, hi-lo), done: make(chan struct{})}
			w.left.Store(int64(hi - lo))
			for k := range hi - lo {
				select {
				case jobs <- decodeJob{w, k, images[lo+k]}:
				case <-ctx.Done():
					return // w is never handed on, so nobody waits for it
				}
			}
			select {
			case ready <- w:
			case <-ctx.Done():
				return
			}
		}
	})
	var err error
	consumed := 0
	for w := range ready {
		select {
		case <-w.done:
		case <-ctx.Done():
		}
		if err = ctx.Err(); err != nil {
			break
		}
		if err = consume(w); err != nil {
			break
		}
		consumed++
	}
	if err == nil && consumed < len(pending) {
		err = ctx.Err() // the producer stopped early: ctx was cancelled
	}
	cancel()
	for range ready {
		// Let the producer reach its cancellation check.
	}
	stopped := make(chan struct{})
	go func() {
		wg.Wait()
		close(stopped)
	}()
	select {
	case <-stopped:
	case <-time.After(stopGrace):
	}
	return err
}

// decodeImage preprocesses image im, or returns why it cannot: the reason
// without the path, which skipped.txt and the progress lines give already.
// clip reads the file only if it is a regular file whose image is within
// the pixel limit, and turns a decoder's panic into an error.
func decodeImage(pre clip.Preprocessor, im Image) (px []float32, reason string) {
	if im.SkipReason != "" {
		return nil, im.SkipReason
	}
	px, err := pre.File(im.Path)
	if err != nil {
		if inner := errors.Unwrap(err); inner != nil {
			err = inner
		}
		return nil, err.Error()
	}
	return px, ""
}
