package extract

import (
	"context"

	"github.com/unimos/unimos/clip"
	"github.com/unimos/unimos/tensor"
)

// encodePixels encodes preprocessed images ([3, n, n] each) with m,
// encodeStep images per call so that a cancelled ctx is noticed within a
// few images, into L2-normalised rows [len(px), dim]. After each call but
// the last, step, when set, is told how many images that call encoded.
func encodePixels(ctx context.Context, m *clip.Model, px [][]float32, step func(n int)) (*tensor.Matrix, error) {
	feats := tensor.New(len(px), m.EmbedDim()) // [len(px), dim]
	for i := 0; i < len(px); i += encodeStep {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		hi := min(i+encodeStep, len(px))
		part, err := m.EncodeImages(px[i:hi]) // [hi-i, dim]
		if err != nil {
			return nil, err
		}
		tensor.Copy(feats.Slice(i, hi, 0, feats.Cols), part)
		if hi < len(px) && step != nil {
			step(hi - i)
		}
	}
	tensor.NormalizeRows(feats, 0)
	return feats, nil
}

// Encoded is what EncodeFiles made of a list of image files.
type Encoded struct {
	Features *tensor.Matrix // [len(Files), dim] unit-norm rows
	Files    []string       // the files that decoded, in the order given
	Skipped  []Skip         // the others: Name the file, Row its index, Reason why
}

// EncodeFiles encodes image files with model m as Run encodes a domain: the
// same decoding (regular files only, the pixel limit, CLIP's preprocessing)
// on workers goroutines ahead of the model, DefaultBatch images at a time.
// A file that cannot be decoded gets no row and is listed with the reason.
// progress, when set, sees after each batch the number of files done and
// that batch's skips.
func EncodeFiles(ctx context.Context, m *clip.Model, files []string, workers int, progress func(done int, skipped []Skip)) (*Encoded, error) {
	images := make([]Image, len(files))
	for i, f := range files {
		images[i] = Image{Path: f, Name: f, Label: Unlabelled}
	}
	p := &Plan{Batch: DefaultBatch, Domains: []DomainPlan{{Images: len(files)}}}
	pending := make([]int, p.batches(0))
	for b := range pending {
		pending[b] = b
	}
	pre := clip.Preprocessor{Size: m.InputResolution()}
	decode := func(im Image) ([]float32, string) { return decodeImage(pre, im) }
	out := &Encoded{Features: tensor.New(len(files), m.EmbedDim())}
	err := decodeAhead(ctx, p, 0, pending, images, decode, max(1, workers), func(w *batchWork) error {
		var good [][]float32
		var skips []Skip
		for k, px := range w.pixels {
			if px == nil {
				skips = append(skips, Skip{Name: files[w.lo+k], Row: w.lo + k, Reason: w.reasons[k]})
				continue
			}
			good = append(good, px)
			out.Files = append(out.Files, files[w.lo+k])
		}
		feats, err := encodePixels(ctx, m, good, nil)
		if err != nil {
			return err
		}
		done := len(out.Files) - len(good) // rows encoded before this batch
		tensor.Copy(out.Features.Slice(done, len(out.Files), 0, out.Features.Cols), feats)
		out.Skipped = append(out.Skipped, skips...)
		if progress != nil {
			progress(w.lo+len(w.pixels), skips)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	out.Features = out.Features.Slice(0, len(out.Files), 0, out.Features.Cols)
	return out, nil
}
