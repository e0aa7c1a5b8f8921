package unimos

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"hash"
	"math"

	"github.com/unimos/unimos/features"
)

// A checkpoint records what data the run trained on, so that a resumed run
// cannot silently continue on a store whose files were replaced since (same
// row counts, other rows): half a run on one dataset and half on another
// would end "successfully" with a result of neither.

// dataParts are the parts of a task's data a checkpoint fingerprints, each
// with how an error names it.
var dataParts = []struct{ key, what string }{
	{"source", "the source features or labels"},
	{"target", "the target features or labels"},
	{"text", "the text features"},
}

// dataFingerprintKey is the checkpoint metadata key of a part's fingerprint.
func dataFingerprintKey(part string) string { return "data_sha256." + part }

// dataFingerprint returns the SHA-256, in hex, of each part of the task's
// data as the trainer reads it: the source features and labels, the target
// features and labels (the labels only score the run, but a history scored
// against other labels would be mixed too) and the text features as trained
// on (rounded to float16 unless the run keeps them in float32). Features are
// hashed by value, so a store rewritten from F16 to F32 with the same values
// keeps its fingerprint.
func dataFingerprint(task Task) map[string]string {
	sum := func(write func(h hash.Hash)) string {
		h := sha256.New()
		write(h)
		return hex.EncodeToString(h.Sum(nil))
	}
	return map[string]string{
		"source": sum(func(h hash.Hash) { hashRows(h, task.SourceFeatures); hashLabels(h, task.SourceLabels) }),
		"target": sum(func(h hash.Hash) { hashRows(h, task.TargetFeatures); hashLabels(h, task.TargetLabels) }),
		"text":   sum(func(h hash.Hash) { hashRows(h, task.Text) }),
	}
}

// hashRows writes the shape of m, then its values row by row as
// little-endian float32 bits.
func hashRows(h hash.Hash, m features.Rows) {
	rows, cols := m.Dims()
	buf := binary.LittleEndian.AppendUint64(nil, uint64(rows))
	buf = binary.LittleEndian.AppendUint64(buf, uint64(cols))
	h.Write(buf)
	row := make([]float32, cols)
	buf = make([]byte, 4*cols)
	for i := range rows {
		m.RowInto(row, i)
		for j, v := range row {
			binary.LittleEndian.PutUint32(buf[4*j:], math.Float32bits(v))
		}
		h.Write(buf)
	}
}

// hashLabels writes the count, then each label as a little-endian int64.
func hashLabels(h hash.Hash, labels []int) {
	buf := binary.LittleEndian.AppendUint64(nil, uint64(len(labels)))
	for _, y := range labels {
		buf = binary.LittleEndian.AppendUint64(buf, uint64(int64(y)))
	}
	h.Write(buf)
}
