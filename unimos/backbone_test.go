package unimos

import (
	"strings"
	"testing"
)

// TestCheckBackbone covers every outcome of the CLIP identity check: a
// match, nothing to check on either side, a mismatch refused, and a
// mismatch noted with force.
func TestCheckBackbone(t *testing.T) {
	vit := Backbone{Name: "CLIP ViT-B/16", Fingerprint: []float32{1, 0, 0, 0}}
	near := Backbone{Name: "CLIP ViT-B/16", Fingerprint: []float32{0.99, 0.01, 0, 0}} // F16 rounding of the same weights
	other := Backbone{Name: "CLIP ViT-B/16", Fingerprint: []float32{0, 1, 0, 0}}
	rn50 := Backbone{Name: "CLIP RN50", Fingerprint: []float32{0, 0, 1, 0}}
	cases := []struct {
		name      string
		want, got Backbone
		force     bool
		note, err string // substrings; "" expects none
	}{
		{"same weights", vit, near, false, "", ""},
		{"model records nothing", Backbone{}, rn50, false, "note: the model does not record the CLIP weights it was trained on", ""},
		{"source records nothing", vit, Backbone{}, false, "does not record which CLIP weights its features come from", ""},
		{"other architecture", vit, rn50, false, "", "src: CLIP RN50, but the model was trained on CLIP ViT-B/16; use X, or give --force"},
		{"same name, other weights", vit, other, false, "", "trained on other weights of CLIP ViT-B/16 (their fingerprints differ)"},
		{"forced", vit, rn50, true, "note: src: CLIP RN50, but the model was trained on CLIP ViT-B/16; classifying anyway (--force)", ""},
		{"unnamed", Backbone{Fingerprint: vit.Fingerprint}, Backbone{Fingerprint: rn50.Fingerprint}, false, "", "src: unnamed CLIP weights, but the model was trained on other weights of unnamed CLIP weights"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			note, err := CheckBackbone(c.want, c.got, "src", "use X", c.force)
			if (c.note == "") != (note == "") || !strings.Contains(note, c.note) {
				t.Errorf("note %q, want %q", note, c.note)
			}
			if c.err == "" && err != nil || c.err != "" && (err == nil || !strings.Contains(err.Error(), c.err)) {
				t.Errorf("error %v, want %q", err, c.err)
			}
		})
	}
}
