package extract

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"image"
	"os"
	"sync"

	"github.com/unimos/unimos/clip"
)

// batchWork is a batch whose images the decoding workers fill in.
type batchWork struct {
	index   int         // batch number within its domain
	lo      int         // row of its first image
	pixels  [][]float32 // [hi-lo] preprocessed images [3, n, n]; nil where decoding failed
	reasons []string    // [hi-lo] why an image failed; "" where it decoded
	wg      sync.WaitGroup
}

// decodeJob asks a worker to decode image k of a batch.
type decodeJob struct {
	batch *batchWork
	k     int
	path  string
}

// decodeAhead decodes the images of the pending batches of domain d on
// workers goroutines and calls consume with each batch, in order, once its
// images are ready, while up to prefetch further batches are decoded. It
// returns consume's first error, or ctx.Err() when ctx is cancelled, after
// every goroutine it started has stopped.
func decodeAhead(ctx context.Context, p *Plan, d int, pending []int, images []Image, pre clip.Preprocessor, workers int, consume func(*batchWork) error) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	jobs := make(chan decodeJob)
	ready := make(chan *batchWork, prefetch)
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for j := range jobs {
				j.batch.pixels[j.k], j.batch.reasons[j.k] = decodeImage(pre, j.path)
				j.batch.wg.Done()
			}
		})
	}
	wg.Go(func() {
		defer close(ready)
		defer close(jobs)
		for _, b := range pending {
			lo, hi := p.rows(d, b)
			w := &batchWork{index: b, lo: lo, pixels: make([][]float32, hi-lo), reasons: make([]string, hi-lo)}
			w.wg.Add(hi - lo)
			for k := range hi - lo {
				select {
				case jobs <- decodeJob{w, k, images[lo+k].Path}:
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
		w.wg.Wait()
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
	wg.Wait()
	return err
}

// maxPixels is Pillow's decompression-bomb limit (2 × MAX_IMAGE_PIXELS):
// larger images are refused before decoding, as the reference would fail
// on them, and so that a hostile file cannot exhaust memory.
const maxPixels = 2 * 89_478_485

// decodeImage preprocesses the image at path, or returns why it cannot.
func decodeImage(pre clip.Preprocessor, path string) (px []float32, reason string) {
	defer func() {
		// The decoders are not supposed to panic on bad data; if one does,
		// the image is skipped like any other bad file.
		if r := recover(); r != nil {
			px, reason = nil, fmt.Sprintf("decoder panicked: %v", r)
		}
	}()
	f, err := os.Open(path)
	if err != nil {
		return nil, err.Error()
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, err.Error()
	}
	if st.Size() == 0 {
		f.Close()
		return nil, "empty file"
	}
	cfg, format, err := image.DecodeConfig(bufio.NewReader(f))
	f.Close()
	if err != nil {
		return nil, fmt.Sprintf("cannot decode: %v", err)
	}
	if int64(cfg.Width)*int64(cfg.Height) > maxPixels {
		return nil, fmt.Sprintf("%s image of %d×%d pixels exceeds the limit of %d pixels", format, cfg.Width, cfg.Height, maxPixels)
	}
	px, err = pre.File(path)
	if err != nil {
		// The decoder's own message, without the wrapping that repeats the
		// path (skipped.txt names the image already).
		if inner := errors.Unwrap(err); inner != nil {
			err = inner
		}
		return nil, fmt.Sprintf("cannot decode: %v", err)
	}
	return px, ""
}
