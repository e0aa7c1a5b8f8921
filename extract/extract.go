// Package extract turns image folders into a feature store (package
// features) with a CLIP model. It lists the images (ScanFolders, ReadLists),
// decodes them on a worker pool ahead of the encoder, and saves every
// finished batch, so that an interrupted run resumes where it stopped (Run).
// The work splits into shards that can run anywhere, joined back by Merge
// into the store a single run would have written, byte for byte.
//
// A run works through each domain's images in batches of Options.Batch.
// Batches are the unit of encoding, of saving ("chunks") and of sharding,
// so the features of an image depend only on its batch: a resumed run or a
// set of merged shards gives the bytes of an uninterrupted run on the same
// machine. The state folder layout is described at partialDir.
package extract

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"

	"github.com/unimos/unimos/clip"
	"github.com/unimos/unimos/features"
	"github.com/unimos/unimos/internal/shard"
	"github.com/unimos/unimos/internal/words"
	"github.com/unimos/unimos/tensor"
)

// Shard selects the slice Index of Count of a dataset's batches: batches
// are numbered across domains in order (domain 0's first, then domain 1's,
// ...), and shard i takes the batches whose number is i modulo Count.
type Shard = shard.Shard

// ParseShard reads "i/n" with 0 <= i < n.
func ParseShard(s string) (Shard, error) { return shard.Parse(s) }

// Options configure Run.
type Options struct {
	// Out is the store folder DIR (a shard folder when Shard is set).
	Out string
	// Prompt is the text template with {domain} and {class} placeholders
	// (see PromptText); "" means DefaultPrompt.
	Prompt string
	// Batch is the number of images per batch; 0 means DefaultBatch.
	Batch int
	// Workers is the number of decoding goroutines; 0 means DefaultWorkers.
	Workers int
	// DType is how the store holds image features; "" means F16, as the
	// reference code caches them.
	DType features.DType
	// Precision is the precision of the encoders' matrix products: f32,
	// bf16 (operands rounded to bfloat16, sums in f32; LayerNorm, softmax
	// and the residual stream stay f32) or auto, resolved by
	// tensor.ChoosePrecision (bf16 becomes f32 on CPUs without
	// AVX512_BF16); "" means f32. Run sets the resolved precision
	// process-wide (tensor.SetPrecision) while it encodes, restores it after,
	// and records it in the plan and the store's dataset.json.
	Precision tensor.Precision
	// Shard, when Count > 0, extracts that shard only.
	Shard Shard
	// Progress, when set, is called when a domain starts, after each
	// encoding step of up to 16 images, and when a batch is saved (with a
	// batch of at most 16 images: once per batch, after it is saved).
	Progress func(Progress)
	// Warn receives warnings (a damaged chunk being redone); nil writes them
	// to os.Stderr.
	Warn func(msg string)
}

// DefaultBatch is the default batch size: large enough for efficient
// matrix products (the encoders work on groups of up to about 20 images at
// 224 px anyway), small enough that an interruption loses little work.
const DefaultBatch = 64

// encodeStep is the number of images encoded per call, so that an
// interruption is noticed within a few images rather than a whole batch.
const encodeStep = 16

// prefetch is the number of decoded batches that may wait for the encoder.
const prefetch = 2

// DefaultWorkers returns the default number of decoding goroutines: one per
// four cores, at least one. Decoding and resizing an Office-Caltech photo
// takes 16 ms of one core on average (50 ms for its 1000×1000 DSLR images)
// against about 420 ms of CPU to encode it with ViT-B/16 and 240 ms with
// RN50 (OpenBLAS, 2 cores), so one decoder per four cores keeps the encoder
// fed while leaving it the cores; raise Workers for small, fast models.
func DefaultWorkers() int { return max(1, runtime.GOMAXPROCS(0)/4) }

// Progress reports the state of one domain.
type Progress struct {
	Domain  string
	Done    int    // images handled so far (encoded or skipped), resumed ones included
	Resumed int    // images already done when this run started
	Total   int    // images of the domain in this run (in this shard)
	Skipped []Skip // images found bad since the previous report
}

// Summary describes a finished run or merge.
type Summary struct {
	Plan    *Plan
	Images  int    // images handled (of the shard, for a shard run)
	Resumed int    // of which an earlier, interrupted run had done
	Skipped []Skip // images that got no row
	// Unlabelled counts the rows (images not skipped) with label
	// Unlabelled.
	Unlabelled int
}

// withDefaults fills in the defaults and validates the options.
func (o Options) withDefaults() (Options, error) {
	if o.Prompt == "" {
		o.Prompt = DefaultPrompt
	}
	if o.Batch == 0 {
		o.Batch = DefaultBatch
	}
	if o.Workers == 0 {
		o.Workers = DefaultWorkers()
	}
	if o.DType == "" {
		o.DType = features.F16
	}
	if o.Warn == nil {
		o.Warn = func(msg string) { fmt.Fprintln(os.Stderr, "warning: "+msg) }
	}
	if o.Precision == "" {
		o.Precision = tensor.PrecisionF32
	}
	precision, _, err := tensor.ChoosePrecision(o.Precision)
	if err != nil {
		return o, fmt.Errorf("extract: %w", err)
	}
	o.Precision = precision
	switch {
	case o.Out == "":
		return o, errors.New("extract: no output folder")
	case o.Batch < 1:
		return o, fmt.Errorf("extract: batch size %d is not positive", o.Batch)
	case o.Workers < 1:
		return o, fmt.Errorf("extract: %s; want at least 1", words.Count(o.Workers, "decoding worker"))
	case o.DType != features.F16 && o.DType != features.F32:
		return o, fmt.Errorf("extract: dtype %q; want F16 or F32", o.DType)
	}
	if err := CheckPrompt(o.Prompt); err != nil {
		return o, fmt.Errorf("extract: %w", err)
	}
	if o.Shard.Count > 0 {
		if err := o.Shard.Validate(); err != nil {
			return o, fmt.Errorf("extract: %w", err)
		}
	}
	return o, nil
}

// runner is one Run in progress.
type runner struct {
	model *clip.Model
	ds    *Dataset
	opt   Options
	plan  *Plan
	state string // the state folder
	pre   clip.Preprocessor
	// skips[d][b] are the skipped images of batch b of domain d.
	skips [][][]Skip
	// done and total count the run's images, for the interruption message.
	done, total, resumed int
}

// Run extracts ds with model m into opt.Out and returns what it did.
//
// Without a shard, it writes the feature store: per domain, as soon as the
// domain is done, <Domain>.safetensors (rows L2-normalised, in opt.DType),
// <Domain>.paths.txt and text/<Domain>.safetensors (the normalised text
// embeddings of the domain's prompts); at the end skipped.txt (when an image
// could not be decoded) and dataset.json, written last so that the folder
// becomes a store only when complete; then it removes DIR/.partial.
//
// With a shard, it writes the shard's chunks to DIR/chunks, the text
// features of every domain, its skipped.txt and, last, shard.json (its
// Plan), which Merge requires.
//
// A bad image (unreadable, not a regular file, undecodable, empty, over
// Pillow's decompression-bomb limit, or named with a line break that
// paths.txt cannot hold) gets no row and is reported; the run goes on.
// When ctx is cancelled, Run stops after the step in progress (waiting at
// most stopGrace for a decode that hangs), keeps the finished batches and
// returns an error wrapping ctx.Err(): running it again with the same
// dataset, model and options resumes. A folder that
// already holds a finished store or shard is refused.
func Run(ctx context.Context, m *clip.Model, ds *Dataset, opt Options) (*Summary, error) {
	opt, err := opt.withDefaults()
	if err != nil {
		return nil, err
	}
	plan, err := newPlan(m, ds, opt)
	if err != nil {
		return nil, err
	}
	r := &runner{model: m, ds: ds, opt: opt, plan: plan, pre: clip.Preprocessor{Size: m.InputResolution()}}
	if r.state, err = prepareState(opt.Out, plan, ds); err != nil {
		return nil, err
	}
	// After newPlan: the weights' fingerprint is always computed in f32.
	defer tensor.SetPrecision(opt.Precision)()
	for d := range ds.Domains {
		r.total += plan.ownImages(d)
	}
	for d := range ds.Domains {
		if err := r.domain(ctx, d); err != nil {
			if ctx.Err() != nil && errors.Is(err, ctx.Err()) {
				return nil, &interruptedError{
					msg: fmt.Sprintf("extract: interrupted with %d of %s done; the finished batches are kept in %s: run the same command again to resume",
						r.done, words.Count(r.total, "image"), r.state),
					cause: err,
				}
			}
			return nil, err
		}
	}
	skips, err := r.finish()
	if err != nil {
		return nil, err
	}
	return &Summary{Plan: plan, Images: r.total, Resumed: r.resumed, Skipped: skips, Unlabelled: r.unlabelled()}, nil
}

// interruptedError is Run's error after a cancellation: its message says how
// to resume, and it wraps the context's error for errors.Is without showing
// its Go wording ("context canceled") to the user.
type interruptedError struct {
	msg   string
	cause error
}

func (e *interruptedError) Error() string { return e.msg }
func (e *interruptedError) Unwrap() error { return e.cause }

// prepareState creates the state folder for plan in out, or checks that
// the one there belongs to the same plan, and returns its path.
func prepareState(out string, plan *Plan, ds *Dataset) (string, error) {
	state, other, otherKind := partialDir, chunksDir, "sharded"
	if plan.Shard != nil {
		state, other, otherKind = chunksDir, partialDir, "whole-dataset"
	}
	for _, f := range []struct{ file, what string }{{features.DatasetFile, "feature store"}, {shardFile, "shard"}} {
		if exists(filepath.Join(out, f.file)) {
			return "", fmt.Errorf("extract: %s already holds a finished %s (%s); remove it or choose another output folder", out, f.what, f.file)
		}
	}
	if exists(filepath.Join(out, other, planFile)) {
		return "", fmt.Errorf("extract: %s holds the unfinished state of a %s run (%s); finish that run or remove the folder",
			out, otherKind, filepath.Join(out, other))
	}
	state = filepath.Join(out, state)
	planPath := filepath.Join(state, planFile)
	if exists(planPath) {
		old, err := readPlan(planPath)
		if err != nil {
			return "", err
		}
		if d := old.diff(plan); d != "" {
			return "", fmt.Errorf("extract: %s holds an interrupted run that differs in %s; rerun it with the same inputs and flags, or remove %s to start over", out, d, state)
		}
		if old.Shard != nil && *old.Shard != *plan.Shard {
			return "", fmt.Errorf("extract: %s holds an interrupted run of shard %v, not %v", out, old.Shard, plan.Shard)
		}
		for _, d := range plan.Domains {
			if err := removeTemporaries(filepath.Join(state, d.Name)); err != nil {
				return "", err
			}
		}
		return state, nil
	}
	for i, d := range ds.Domains {
		dir := filepath.Join(state, d.Name)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return "", fmt.Errorf("extract: %w", err)
		}
		if err := removeTemporaries(dir); err != nil {
			return "", err
		}
		if err := writeFile(filepath.Join(dir, imagesFile), imageList(ds.Domains[i].Images)); err != nil {
			return "", err
		}
	}
	// The plan comes last: its presence says that the rest is in place.
	return state, writePlan(planPath, plan)
}

func exists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}

// domain extracts the batches of domain d that this run owns and are not
// done yet, then writes the domain's outputs.
func (r *runner) domain(ctx context.Context, d int) error {
	dom := r.ds.Domains[d]
	dir := filepath.Join(r.state, dom.Name)
	var pending []int
	resumed := 0
	r.skips = append(r.skips, make([][]Skip, r.plan.batches(d)))
	for b := range r.plan.batches(d) {
		if !r.plan.mine(d, b) {
			continue
		}
		lo, hi := r.plan.rows(d, b)
		path := chunkPath(dir, b)
		if !exists(path) {
			pending = append(pending, b)
			continue
		}
		_, skips, err := readChunk(path, lo, hi, r.plan.Dim)
		if err != nil {
			r.opt.Warn(fmt.Sprintf("%v; extracting that batch again", err))
			if err := os.Remove(path); err != nil {
				return fmt.Errorf("extract: %w", err)
			}
			pending = append(pending, b)
			continue
		}
		r.skips[d][b] = r.named(d, skips)
		resumed += hi - lo
	}
	total := r.plan.ownImages(d)
	if total == 0 {
		return r.writeText(d)
	}
	r.resumed += resumed
	r.done += resumed
	progress := Progress{Domain: dom.Name, Done: resumed, Resumed: resumed, Total: total}
	r.report(progress)
	decode := func(im Image) ([]float32, string) { return decodeImage(r.pre, im) }
	err := decodeAhead(ctx, r.plan, d, pending, dom.Images, decode, r.opt.Workers, func(w *batchWork) error {
		return r.encode(ctx, d, w, func(n int, skips []Skip) {
			progress.Done += n
			progress.Skipped = skips
			r.report(progress)
		})
	})
	if err != nil {
		return err
	}
	if r.plan.Shard == nil {
		store, _, err := assembleDomain(r.plan, d, dom.Images, func(b int) string { return chunkPath(dir, b) })
		if err != nil {
			return err
		}
		if err := features.WriteDomain(r.opt.Out, store); err != nil {
			return err
		}
	}
	return r.writeText(d)
}

// unlabelled counts the rows of this run's batches with label Unlabelled.
func (r *runner) unlabelled() int {
	n := 0
	for d, dom := range r.ds.Domains {
		for b := range r.plan.batches(d) {
			if r.plan.mine(d, b) {
				lo, hi := r.plan.rows(d, b)
				n += unlabelledRows(dom.Images, lo, hi, r.skips[d][b])
			}
		}
	}
	return n
}

// unlabelledRows counts the rows that the images [lo, hi) of a domain get
// with label Unlabelled: the unlabelled images less those among skips, the
// skipped images of these rows.
func unlabelledRows(images []Image, lo, hi int, skips []Skip) int {
	n := countUnlabelled(images[lo:hi])
	for _, s := range skips {
		if images[s.Row].Label == Unlabelled {
			n--
		}
	}
	return n
}

func (r *runner) report(p Progress) {
	if r.opt.Progress != nil {
		r.opt.Progress(p)
	}
}

// named fills in the domain and image name of skips of domain d.
func (r *runner) named(d int, skips []Skip) []Skip {
	for i := range skips {
		skips[i].Domain = r.ds.Domains[d].Name
		skips[i].Name = r.ds.Domains[d].Images[skips[i].Row].Name
	}
	return skips
}

// encode embeds the decoded images of a batch, normalises the rows and
// saves the chunk. It calls report after each encoding step but the last
// with the images handled (the first call also with the batch's skipped
// images), and once the chunk is saved with the rest.
func (r *runner) encode(ctx context.Context, d int, w *batchWork, report func(n int, skips []Skip)) error {
	var good [][]float32 // [m] images [3, n, n]
	var skips []Skip
	for k, px := range w.pixels {
		if px == nil {
			skips = append(skips, Skip{Row: w.lo + k, Reason: w.reasons[k]})
		} else {
			good = append(good, px)
		}
	}
	name := r.ds.Domains[d].Name
	r.named(d, skips)
	unreported, unreportedSkips := len(w.pixels), skips
	feats, err := encodePixels(ctx, r.model, good, func(n int) {
		report(n+len(unreportedSkips), unreportedSkips)
		unreported, unreportedSkips = unreported-n-len(unreportedSkips), nil
	})
	if err != nil {
		return fmt.Errorf("extract: domain %s: %w", name, err)
	}
	if err := checkUnitRows(feats); err != nil {
		return fmt.Errorf("extract: domain %s, batch %d: the model gave an embedding that %w", name, w.index, err)
	}
	if err := writeChunk(chunkPath(filepath.Join(r.state, name), w.index), feats, skips); err != nil {
		return err
	}
	r.skips[d][w.index] = skips
	r.done += len(w.pixels)
	report(unreported, unreportedSkips)
	return nil
}

// checkUnitRows rejects rows that normalisation could not bring to unit
// length: all zeros, or NaN or Inf.
func checkUnitRows(m *tensor.Matrix) error {
	for i := range m.Rows {
		var ss float64
		for _, v := range m.Row(i) {
			ss += float64(v) * float64(v)
		}
		if !(ss > 0.99 && ss < 1.01) {
			return fmt.Errorf("has squared norm %g (row %d)", ss, i)
		}
	}
	return nil
}

// writeText writes the text features of domain d.
func (r *runner) writeText(d int) error {
	text, err := textFeatures(r.model, r.plan.Prompt, r.ds.Domains[d].Name, r.plan.Classes)
	if err != nil {
		return err
	}
	return features.WriteText(r.opt.Out, r.ds.Domains[d].Name, text)
}

// finish writes skipped.txt and the completion marker (dataset.json or
// shard.json), and removes the state of a whole-dataset run.
func (r *runner) finish() ([]Skip, error) {
	var skips []Skip
	for _, batches := range r.skips {
		for _, s := range batches {
			skips = append(skips, s...)
		}
	}
	if err := writeSkipped(r.opt.Out, skips); err != nil {
		return nil, err
	}
	if r.plan.Shard != nil {
		return skips, writePlan(filepath.Join(r.opt.Out, shardFile), r.plan)
	}
	if err := features.WriteDataset(r.opt.Out, r.plan.dataset()); err != nil {
		return nil, err
	}
	if err := os.RemoveAll(r.state); err != nil {
		return nil, fmt.Errorf("extract: the store is complete but its state folder remains: %w", err)
	}
	return skips, nil
}

// writeSkipped writes DIR/skipped.txt when there are skipped images.
func writeSkipped(out string, skips []Skip) error {
	if len(skips) == 0 {
		return nil
	}
	var b strings.Builder
	for _, s := range skips {
		fmt.Fprintf(&b, "%s\t%s\n", s.Name, strings.Join(strings.Fields(s.Reason), " "))
	}
	return writeFile(filepath.Join(out, SkippedFile), []byte(b.String()))
}

// assembleDomain joins the chunks of domain d, chunk(b) naming the file of
// batch b, into the store's domain, in image order; it also returns the
// domain's skipped images.
func assembleDomain(p *Plan, d int, images []Image, chunk func(b int) string) (*features.Domain, []Skip, error) {
	name := p.Domains[d].Name
	feats := tensor.New(len(images), p.Dim) // [N, dim], trimmed to the rows kept
	var labels []int
	var paths []string
	var skipped []Skip
	for b := range p.batches(d) {
		lo, hi := p.rows(d, b)
		f, skips, err := readChunk(chunk(b), lo, hi, p.Dim)
		if err != nil {
			return nil, nil, fmt.Errorf("extract: domain %s, batch %d: %w", name, b, err)
		}
		next := 0 // next unread row of f
		for r := lo; r < hi; r++ {
			if len(skips) > 0 && skips[0].Row == r {
				skipped = append(skipped, Skip{Domain: name, Name: images[r].Name, Row: r, Reason: skips[0].Reason})
				skips = skips[1:]
				continue
			}
			copy(feats.Row(len(labels)), f.Row(next))
			next++
			labels = append(labels, images[r].Label)
			paths = append(paths, images[r].Name)
		}
	}
	if len(labels) == 0 {
		return nil, nil, fmt.Errorf("extract: domain %s has no image that could be decoded (%s tried; first: %s: %s)", name, words.Count(len(images), "image"), skipped[0].Name, skipped[0].Reason)
	}
	return &features.Domain{
		Name:     name,
		Features: feats.Slice(0, len(labels), 0, p.Dim),
		Labels:   labels,
		Paths:    paths,
		DType:    p.DType,
	}, skipped, nil
}
