package unimos

import (
	"fmt"

	"github.com/unimos/unimos/tensor"
)

// Probabilities returns the class probabilities [N, K] of image embeddings
// x [N, d] (unit-norm rows): the softmax of the ensemble that Predict
// classifies with, so the argmax and maximum of each row are Predict's
// prediction and confidence. Unlike Predict it computes no label-free
// criteria over the rows, and each row's probabilities are computed from
// that row alone: a server may classify an image in a batch with any
// others. (To the last bit on the pure-Go GEMM; OpenBLAS chooses its
// kernels by matrix size, so the batch size may change the rounding.)
//
// A SavedModel is not safe for concurrent use: inference switches its
// modules to evaluation mode and back.
func (s *SavedModel) Probabilities(x *tensor.Matrix) (*tensor.Matrix, error) {
	if x.Cols != s.Dim() {
		return nil, fmt.Errorf("features have dimension %d but the model takes %d", x.Cols, s.Dim())
	}
	if x.Rows == 0 {
		return nil, fmt.Errorf("no rows to classify")
	}
	// As in Predict: the test after a first epoch ensembles with the
	// zero-shot teacher, and infer counts epochs from -1.
	var teacher *tensor.Matrix
	if s.Config.Epochs <= 1 {
		teacher = teacherLogits(x, s.model.Text, s.model.logitScale)
	}
	return infer(s.model, s.Config, s.prior, x, teacher, s.Config.Epochs-1).probs, nil
}
