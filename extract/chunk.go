package extract

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"

	"github.com/unimos/unimos/internal/atomicfile"
	"github.com/unimos/unimos/safetensors"
	"github.com/unimos/unimos/tensor"
)

// State folders. A run keeps its finished batches ("chunks") in a state
// folder of DIR: .partial for a whole-dataset run, which removes it once the
// store is written, and chunks for a shard, whose chunks are its output.
// Either holds
//
//	plan.json                                the Plan the chunks belong to
//	<Domain>/images.txt                      "LABEL NAME" per image of the domain (see imageList)
//	<Domain>/batch-<b>.safetensors           one finished batch (see writeChunk)
const (
	partialDir = ".partial"
	chunksDir  = "chunks"
	planFile   = "plan.json"
	imagesFile = "images.txt"
	shardFile  = "shard.json"
	// SkippedFile lists the images that got no row: "NAME<TAB>REASON" per
	// line, in domain order, then image order.
	SkippedFile = "skipped.txt"
)

// chunkFeatures is the tensor of a chunk.
const chunkFeatures = "features"

// skippedKey is the chunk metadata key listing the batch's skipped images.
const skippedKey = "skipped"

// Skip is an image that got no row, and why.
type Skip struct {
	Domain string `json:"-"`
	Name   string `json:"-"`
	Row    int    `json:"row"` // index of the image in its domain's list
	Reason string `json:"reason"`
}

// chunkPath names the file of batch b in a domain's chunk folder.
func chunkPath(domainDir string, b int) string {
	return filepath.Join(domainDir, fmt.Sprintf("batch-%06d.safetensors", b))
}

// writeChunk saves a finished batch atomically: the normalised features
// [m, dim] of its decoded images, in row order, as F32 "features", and the
// skipped images, as JSON in the metadata key "skipped". The batch's other
// m rows are the ones in order that were not skipped.
func writeChunk(path string, feats *tensor.Matrix, skips []Skip) error {
	if skips == nil {
		skips = []Skip{}
	}
	meta, err := json.Marshal(skips)
	if err != nil {
		return fmt.Errorf("extract: %w", err)
	}
	values := make([]float32, 0, feats.Rows*feats.Cols)
	for i := range feats.Rows {
		values = append(values, feats.Row(i)...)
	}
	t, err := safetensors.FromFloat32(chunkFeatures, safetensors.F32, []int{feats.Rows, feats.Cols}, values)
	if err != nil {
		return fmt.Errorf("extract: %w", err)
	}
	if err := safetensors.WriteFile(path, []*safetensors.Tensor{t}, map[string]string{skippedKey: string(meta)}); err != nil {
		return fmt.Errorf("extract: %w", err)
	}
	return nil
}

// readChunk reads and validates the chunk of rows [lo, hi) of a domain with
// features of width dim. It returns the features [m, dim] and the skipped
// images (Row and Reason set).
func readChunk(path string, lo, hi, dim int) (*tensor.Matrix, []Skip, error) {
	f, err := safetensors.Open(path)
	if err != nil {
		return nil, nil, fmt.Errorf("extract: %w", err)
	}
	defer f.Close()
	var skips []Skip
	if err := json.Unmarshal([]byte(f.Metadata()[skippedKey]), &skips); err != nil {
		return nil, nil, fmt.Errorf("extract: %s: metadata %q: %w", path, skippedKey, err)
	}
	for i, s := range skips {
		if s.Row < lo || s.Row >= hi || (i > 0 && s.Row <= skips[i-1].Row) {
			return nil, nil, fmt.Errorf("extract: %s: skipped row %d is not in [%d, %d) in increasing order", path, s.Row, lo, hi)
		}
	}
	t, err := f.Tensor(chunkFeatures)
	if err != nil {
		return nil, nil, fmt.Errorf("extract: %w", err)
	}
	m := hi - lo - len(skips)
	if t.DType != safetensors.F32 || len(t.Shape) != 2 || t.Shape[0] != m || t.Shape[1] != dim {
		return nil, nil, fmt.Errorf("extract: %s: %q is %s %v; want F32 [%d, %d]", path, chunkFeatures, t.DType, t.Shape, m, dim)
	}
	feats := tensor.New(m, dim)
	if err := t.Float32Into(feats.Data); err != nil {
		return nil, nil, fmt.Errorf("extract: %w", err)
	}
	return feats, skips, nil
}

// removeTemporaries deletes the temporary files that writes cut short by
// a crash left in dir.
func removeTemporaries(dir string) error {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return fmt.Errorf("extract: %w", err)
	}
	for _, e := range entries {
		if atomicfile.IsTemporary(e.Name()) {
			if err := os.Remove(filepath.Join(dir, e.Name())); err != nil {
				return fmt.Errorf("extract: %w", err)
			}
		}
	}
	return nil
}
