package clip

import "github.com/unimos/unimos/tensor"

// probe receives intermediate activations, named by stage, so that tests
// can compare them with the reference implementation's. It only observes:
// the encoders run the same code with or without one, so a stage holds
// just the rows the encoder computes. After the towers' pooling (from the
// last transformer block on) that is one row per input, and the text
// tower's rows stop at each row's end-of-text token. A nil probe ignores
// the stages. The matrices are the encoder's own and change after the call.
type probe func(stage string, m *tensor.Matrix)

func (p probe) see(stage string, m *tensor.Matrix) {
	if p != nil {
		p(stage, m)
	}
}

// prefixed returns a probe that prepends prefix to stage names.
func (p probe) prefixed(prefix string) probe {
	if p == nil {
		return nil
	}
	return func(stage string, m *tensor.Matrix) { p(prefix+stage, m) }
}
