package serve

import (
	"fmt"
	"sync"
	"time"

	"github.com/unimos/unimos/clip"
	"github.com/unimos/unimos/tensor"
)

// item is one image of a request on its way through the pipeline.
type item struct {
	classify bool      // classify (true) or only embed
	pixels   []float32 // preprocessed, until encoded
	// undecodable says why the image could not be decoded (a client error);
	// it never reaches the batcher.
	undecodable string
	// Set by the batcher: the unit-norm features, the class probabilities
	// (when classify), or err when the batch failed (a server error).
	features []float32
	probs    []float32
	err      error
	group    *group
}

// group is the decoded images of one request, handed to the batcher
// together so that they go into one batch when they fit: a request's
// images are then encoded exactly as "unimos predict" encodes the same
// files.
type group struct {
	items []*item
	done  sync.WaitGroup // one count per item, until the batcher is done with it
}

// decodeJob asks the decode pool to preprocess one image.
type decodeJob struct {
	data []byte
	out  *item
	done *sync.WaitGroup
}

// process decodes images on the decode pool, hands the decodable ones to
// the batcher and waits for their rows. The caller has admitted them to the
// queue.
func (s *Server) process(images [][]byte, classify bool) []*item {
	items := make([]*item, len(images))
	var decoded sync.WaitGroup
	decoded.Add(len(images))
	for i, data := range images {
		items[i] = &item{classify: classify}
		s.decode <- decodeJob{data: data, out: items[i], done: &decoded}
	}
	decoded.Wait()
	g := &group{}
	for _, it := range items {
		if it.undecodable == "" {
			it.group = g
			g.items = append(g.items, it)
		}
	}
	if len(g.items) > 0 {
		g.done.Add(len(g.items))
		s.groups <- g
		g.done.Wait()
	}
	return items
}

// decodeWorker is one goroutine of the decode pool.
func (s *Server) decodeWorker() {
	n := s.model.Encoder.InputResolution()
	for job := range s.decode {
		start := time.Now()
		job.out.pixels, job.out.undecodable = preprocess(job.data, n)
		s.metrics.decodeSeconds.Observe(time.Since(start).Seconds())
		job.done.Done()
	}
}

// preprocess decodes and transforms one image as "unimos predict" does a
// file, or says why it cannot.
func preprocess(data []byte, n int) (px []float32, reason string) {
	defer func() {
		// The decoders are not supposed to panic on bad data; if one does,
		// the image is refused like any other undecodable one.
		if r := recover(); r != nil {
			px, reason = nil, fmt.Sprintf("the decoder failed on this image: %v", r)
		}
	}()
	px, err := clip.PreprocessBytes(data, n)
	if err != nil {
		return nil, err.Error()
	}
	return px, ""
}

// batcher is the one goroutine that runs the encoder: it takes the groups
// of decoded images in the order they come, fills batches of up to MaxBatch
// (a group that does not fit goes on in the next batch), and encodes a
// batch that is not full once MaxWait has passed or when no other image is
// admitted, since waiting then only adds latency. It returns when the
// groups channel is closed and drained.
func (s *Server) batcher() {
	maxBatch := s.cfg.MaxBatch
	var carry []*item // the rest of a group that did not fit in the last batch
	for {
		if len(carry) == 0 {
			g, ok := <-s.groups
			if !ok {
				return
			}
			carry = g.items
		}
		batch := take(&carry, maxBatch)
		if len(batch) < maxBatch {
			timer := time.NewTimer(s.cfg.MaxWait)
		collect:
			for len(batch) < maxBatch && s.queue.depth() > len(batch) {
				select {
				case g, ok := <-s.groups:
					if !ok {
						break collect
					}
					carry = g.items
					batch = append(batch, take(&carry, maxBatch-len(batch))...)
				case <-timer.C:
					break collect
				}
			}
			timer.Stop()
		}
		s.runBatch(batch)
	}
}

// take removes up to n items from the front of *items and returns them.
func take(items *[]*item, n int) []*item {
	n = min(n, len(*items))
	head := (*items)[:n:n]
	*items = (*items)[n:]
	return head
}

// runBatch encodes and classifies a batch and releases its requests.
func (s *Server) runBatch(batch []*item) {
	start := time.Now()
	err := s.encode(batch)
	for _, it := range batch {
		if err != nil {
			it.err = err
		}
		it.pixels = nil // the largest part of an item, no longer needed
		it.group.done.Done()
	}
	s.metrics.observeBatch(len(batch), time.Since(start), err == nil)
}

// encode runs the CLIP encoder on the batch, normalises the rows as
// predict does, and classifies the rows that ask for classes. A panic in
// the model fails this batch only.
func (s *Server) encode(batch []*item) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("the model failed on a batch of %d images: %v", len(batch), r)
		}
	}()
	images := make([][]float32, len(batch))
	for i, it := range batch {
		images[i] = it.pixels
	}
	enc, err := s.model.Encoder.EncodeImages(images)
	if err != nil {
		return err
	}
	tensor.NormalizeRows(enc, 0)
	var classify []int // rows of enc to classify
	for i, it := range batch {
		it.features = append([]float32(nil), enc.Row(i)...)
		if it.classify {
			classify = append(classify, i)
		}
	}
	if len(classify) == 0 {
		return nil
	}
	x := enc
	if len(classify) < len(batch) {
		x = tensor.New(len(classify), enc.Cols)
		for r, i := range classify {
			copy(x.Row(r), enc.Row(i))
		}
	}
	probs, err := s.model.Classifier.Probabilities(x)
	if err != nil {
		return err
	}
	for r, i := range classify {
		batch[i].probs = append([]float32(nil), probs.Row(r)...)
	}
	return nil
}
