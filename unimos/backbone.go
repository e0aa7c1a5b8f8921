package unimos

import (
	"fmt"

	"github.com/unimos/unimos/clip"
	"github.com/unimos/unimos/extract"
)

// CheckBackbone refuses features of other CLIP weights than the model was
// trained on (want), unless force. source names the features' origin
// ("store DIR", "CLIP weights FILE") and got is what it records; advice says
// what to use instead. The names are only for messages: the fingerprints
// decide.
//
// It returns a note for the user, or "", when the check passes: when the
// model or the source records no fingerprint nothing can be checked, and
// with force a mismatch is only noted. Every command that classifies
// features (predict, serve) calls this one check, so that they accept and
// refuse the same weights with the same words.
func CheckBackbone(want, got Backbone, source, advice string, force bool) (note string, err error) {
	switch {
	case len(want.Fingerprint) == 0:
		return fmt.Sprintf("note: the model does not record the CLIP weights it was trained on (it was saved before unimos recorded them, or trained on a store that does not record them); cannot check %s against them", source), nil
	case len(got.Fingerprint) == 0:
		return fmt.Sprintf("note: %s does not record which CLIP weights its features come from (imported or generated features); cannot check them against the model's (%s)", source, want.displayName()), nil
	case clip.Fingerprint(want.Fingerprint).Matches(got.Fingerprint):
		return "", nil
	}
	trainedOn := want.displayName()
	if got.Name == want.Name {
		trainedOn = "other weights of " + trainedOn + " (their fingerprints differ)"
	}
	problem := fmt.Sprintf("%s: %s, but the model was trained on %s", source, got.displayName(), trainedOn)
	if force {
		return fmt.Sprintf("note: %s; classifying anyway (--force)", problem), nil
	}
	return "", fmt.Errorf("%s; %s, or give --force to classify anyway", problem, advice)
}

// CheckCLIP checks that the CLIP weights model, loaded from path, are the
// ones s was trained on, before any image is encoded with them: the
// embedding width must be the model's (nothing can be classified
// otherwise, even with force), then CheckBackbone compares the
// fingerprints. It returns CheckBackbone's note.
func (s *SavedModel) CheckCLIP(model *clip.Model, path string, force bool) (note string, err error) {
	if model.EmbedDim() != s.Dim() {
		return "", fmt.Errorf("CLIP weights %s give %d-dimensional features but the UniMoS model takes %d: use the weights the model was trained on",
			path, model.EmbedDim(), s.Dim())
	}
	fingerprint, err := model.Fingerprint()
	if err != nil {
		return "", err
	}
	got := Backbone{Name: extract.Backbone(model.Config), Fingerprint: fingerprint}
	return CheckBackbone(s.Backbone, got, "CLIP weights "+path, "use the weights the model was trained on", force)
}

// displayName is a backbone's name for messages.
func (b Backbone) displayName() string {
	if b.Name == "" {
		return "unnamed CLIP weights"
	}
	return b.Name
}
