package synth

import (
	"fmt"
	"math"
	"slices"
	"strings"
)

// Preset describes a synthetic benchmark: its classes, its domains and the
// geometry of the generated features.
type Preset struct {
	Name     string       // dataset name written to dataset.json
	Backbone string       // backbone name written to dataset.json
	Dim      int          // feature dimension d
	Classes  []string     // class names, in label order
	Domains  []DomainSpec // domains, in the order written to dataset.json
	Geometry Geometry     // knobs shared by all domains
}

// DomainSpec describes one domain: its size and how far it sits from the
// language side of the embedding space.
type DomainSpec struct {
	Name string
	Size int // number of images; every class gets at least one

	// Imbalance is the Zipf exponent of the class proportions: class k gets a
	// share proportional to rank(k)^-Imbalance, with the ranks shuffled per
	// domain. 0 is balanced; 0.5 gives a largest/smallest ratio of about
	// sqrt(K).
	Imbalance float64

	// Style is the weight of the domain's common offset (its "look"), shared
	// by all its images. Domains with different styles are shifted apart.
	Style float64

	// Confusion is the mean of the per-class blend η ~ Exponential(Confusion),
	// capped at 0.9, that pulls a class's text-aligned direction towards a
	// confuser class in this domain. Classes with η above about one half are
	// mostly mistaken for their confuser by zero-shot CLIP; the confusers
	// differ per domain, so zero-shot mistakes are domain-specific.
	Confusion float64

	// Ambiguity is the scale of a per-image blend λ = min(1, Ambiguity·|z|),
	// z ~ N(0,1), of the image's class part with that of one random other
	// class. Images with λ > 1/2 look like another class to every
	// classifier, so this caps even an oracle's accuracy: about 90% at 0.3,
	// 80% at 0.4.
	Ambiguity float64

	// Noise is the weight of per-image Gaussian noise (its energy is shared
	// between the class subspaces and all directions, see
	// Geometry.ClassSpanNoise).
	Noise float64
}

// Geometry holds the weights of the components that features are built
// from. Image and text vectors are sums of weighted components and are
// L2-normalised at the end, so only ratios of weights matter within each
// modality. See the package documentation for the model.
type Geometry struct {
	// ClassRank caps the dimension r of the text and vision class subspaces
	// (r = min(K, ClassRank, room left by the dimension)). Real CLIP class
	// structure is low-rank; with r < K classes crowd and some look alike.
	ClassRank int
	// GroupCorrelation is the squared cosine of each class's semantic and
	// visual directions with those of its super-class (classes are put in
	// groups of about six).
	GroupCorrelation float64

	// Text side: t = TextMean·e_txt + Hubness·h_k·e_img + TextClass·s_k
	// + TextDomain·w_d + TextJitter·χ_kd.
	TextMean   float64 // shared text direction: sets how alike all prompts are
	TextClass  float64 // class semantic direction s_k
	TextDomain float64 // domain word ("a sketch photo of ...") direction w_d
	TextJitter float64 // class-specific change of the prompt with the domain word
	Hubness    float64 // std of a per-class pull of the prompt towards all images (hub classes)

	// Image side: x = ImageMean·m + ImageText·ŝ + ImageVision·v̂ + Style_d·o'_d
	// + Noise_d·(noise).
	ImageMean   float64 // shared image direction m; with GapCos it sets the modality gap
	GapCos      float64 // cosine between m and the shared text direction e_txt
	ImageText   float64 // text-aligned class part, seen by zero-shot CLIP
	ImageVision float64 // vision-only class part, orthogonal to every prompt

	// StyleTextAlign is the cosine between a domain's image style offset and
	// its text domain-word direction, i.e. how much the domain word in the
	// prompt matches what the domain's images look like.
	StyleTextAlign float64
	// ClassDistortion is the weight of a random per-domain, per-class change
	// of the text-aligned class part (on top of the confuser blend).
	ClassDistortion float64
	// VisionShift is the weight of a random per-domain, per-class change of
	// the vision-only class part; 0 makes it identical in every domain.
	VisionShift float64
	// ConfusionJitter is the per-image standard deviation of the confuser
	// blend η around its class value, which makes zero-shot accuracy vary
	// smoothly within a class.
	ConfusionJitter float64
	// ClassSpanNoise is the fraction of a domain's noise energy that falls in
	// the class subspaces (split evenly between text and vision); the rest
	// is isotropic. In real CLIP-like data within-class spread is
	// concentrated in the directions that separate classes.
	ClassSpanNoise float64
}

// defaultGeometry is calibrated so that generated stores match real CLIP
// ViT-B/16 on 500 COCO pairs (modality gap 0.85, matched cosine 0.31, mean
// image-image cosine 0.53); see the package documentation.
var defaultGeometry = Geometry{
	ClassRank:        32,
	GroupCorrelation: 0.3,

	TextMean:   0.64,
	TextClass:  0.58,
	TextDomain: 0.22,
	TextJitter: 0.12,
	Hubness:    0.02,

	ImageMean:   0.61,
	GapCos:      0.35,
	ImageText:   0.26,
	ImageVision: 0.30,

	StyleTextAlign:  0.3,
	ClassDistortion: 0.25,
	VisionShift:     1.0,
	ConfusionJitter: 0.15,
	ClassSpanNoise:  0.35,
}

// PresetNames returns the names of the built-in presets.
func PresetNames() []string {
	ps := Presets()
	names := make([]string, len(ps))
	for i, p := range ps {
		names[i] = p.Name
	}
	return names
}

// PresetByName returns the built-in preset with the given name.
func PresetByName(name string) (Preset, error) {
	for _, p := range Presets() {
		if p.Name == name {
			return p, nil
		}
	}
	return Preset{}, fmt.Errorf("synth: unknown preset %q (valid: %s)", name, strings.Join(PresetNames(), ", "))
}

// Presets returns the built-in presets, fresh copies on every call:
//
//   - "office-home": CLIP RN50-like (d 1024), 65 Office-Home classes, Art
//     2427, Clipart 4365, Product 4439, Real_World 4357 images (the real
//     sizes); about 32 MB written.
//   - "visda": CLIP RN101-like (d 512), 12 VisDA-2017 classes, synthetic
//     152397 and real 55388 images (the real sizes); about 200 MB written.
//   - "visda-small": "visda" at one tenth of the size.
//   - "domainnet126": CLIP ViT-B/16-like (d 512), 126 classes, clipart,
//     painting, real, sketch at one fifth of the DomainNet-126 sizes.
//   - "domainnet": CLIP ViT-B/16-like (d 512), 345 classes, six domains at
//     one tenth of the (cleaned) DomainNet sizes; about 60 MB written.
//   - "tiny": d 64, 8 classes, three domains of a few hundred images, for
//     fast tests.
//
// Synthetic class names (class_000, ...) stand in for DomainNet's. The
// domain knobs are set so that zero-shot accuracy per domain falls roughly
// where CLIP's does on the real benchmark.
func Presets() []Preset {
	visda := Preset{
		Name:     "visda",
		Backbone: "synthetic-CLIP-RN101",
		Dim:      512,
		Classes:  slices.Clone(visdaClasses),
		Domains: []DomainSpec{
			{Name: "synthetic", Size: 152397, Imbalance: 0.3, Style: 0.30, Confusion: 0.18, Ambiguity: 0.35, Noise: 0.45},
			{Name: "real", Size: 55388, Imbalance: 0.5, Style: 0.12, Confusion: 0.04, Ambiguity: 0.20, Noise: 0.38},
		},
		Geometry: defaultGeometry,
	}
	visdaSmall := visda
	visdaSmall.Name = "visda-small"
	visdaSmall.Domains = scaleSizes(visda.Domains, 0.1)
	return []Preset{
		{
			Name:     "office-home",
			Backbone: "synthetic-CLIP-RN50",
			Dim:      1024,
			Classes:  slices.Clone(officeHomeClasses),
			Domains: []DomainSpec{
				{Name: "Art", Size: 2427, Imbalance: 0.5, Style: 0.18, Confusion: 0.10, Ambiguity: 0.30, Noise: 0.50},
				{Name: "Clipart", Size: 4365, Imbalance: 0.4, Style: 0.25, Confusion: 0.30, Ambiguity: 0.40, Noise: 0.55},
				{Name: "Product", Size: 4439, Imbalance: 0.4, Style: 0.15, Confusion: 0.07, Ambiguity: 0.25, Noise: 0.45},
				{Name: "Real_World", Size: 4357, Imbalance: 0.3, Style: 0.10, Confusion: 0.06, Ambiguity: 0.25, Noise: 0.45},
			},
			Geometry: defaultGeometry,
		},
		visda,
		visdaSmall,
		{
			Name:     "domainnet126",
			Backbone: "synthetic-CLIP-ViT-B/16",
			Dim:      512,
			Classes:  numberedClasses(126),
			// One fifth of clipart 18523, painting 30042, real 69622, sketch 24147.
			Domains: []DomainSpec{
				{Name: "clipart", Size: 3705, Imbalance: 0.5, Style: 0.22, Confusion: 0.12, Ambiguity: 0.30, Noise: 0.50},
				{Name: "painting", Size: 6008, Imbalance: 0.5, Style: 0.20, Confusion: 0.15, Ambiguity: 0.30, Noise: 0.50},
				{Name: "real", Size: 13924, Imbalance: 0.5, Style: 0.10, Confusion: 0.04, Ambiguity: 0.22, Noise: 0.45},
				{Name: "sketch", Size: 4829, Imbalance: 0.5, Style: 0.25, Confusion: 0.14, Ambiguity: 0.35, Noise: 0.55},
			},
			Geometry: defaultGeometry,
		},
		{
			Name:     "domainnet",
			Backbone: "synthetic-CLIP-ViT-B/16",
			Dim:      512,
			Classes:  numberedClasses(345),
			// One tenth of clipart 48837, infograph 53201, painting 75759,
			// quickdraw 172500, real 175327, sketch 70386.
			Domains: []DomainSpec{
				{Name: "clipart", Size: 4884, Imbalance: 0.5, Style: 0.22, Confusion: 0.07, Ambiguity: 0.30, Noise: 0.50},
				{Name: "infograph", Size: 5320, Imbalance: 0.5, Style: 0.30, Confusion: 0.18, Ambiguity: 0.45, Noise: 0.60},
				{Name: "painting", Size: 7576, Imbalance: 0.5, Style: 0.20, Confusion: 0.10, Ambiguity: 0.30, Noise: 0.50},
				{Name: "quickdraw", Size: 17250, Imbalance: 0, Style: 0.35, Confusion: 1.0, Ambiguity: 0.40, Noise: 0.65},
				{Name: "real", Size: 17533, Imbalance: 0.5, Style: 0.10, Confusion: 0.04, Ambiguity: 0.22, Noise: 0.45},
				{Name: "sketch", Size: 7039, Imbalance: 0.5, Style: 0.25, Confusion: 0.10, Ambiguity: 0.35, Noise: 0.55},
			},
			Geometry: defaultGeometry,
		},
		{
			Name:     "tiny",
			Backbone: "synthetic-tiny",
			Dim:      64,
			Classes:  []string{"cat", "dog", "car", "boat", "chair", "cup", "tree", "house"},
			Domains: []DomainSpec{
				{Name: "photo", Size: 320, Imbalance: 0.5, Style: 0.10, Confusion: 0.04, Ambiguity: 0.20, Noise: 0.40},
				{Name: "sketch", Size: 280, Imbalance: 0.5, Style: 0.25, Confusion: 0.25, Ambiguity: 0.35, Noise: 0.45},
				{Name: "painting", Size: 240, Imbalance: 0.5, Style: 0.20, Confusion: 0.12, Ambiguity: 0.30, Noise: 0.45},
			},
			Geometry: defaultGeometry,
		},
	}
}

// Scaled returns a copy of p with every domain's size multiplied by factor
// (rounded, and at least one image per class).
func (p Preset) Scaled(factor float64) (Preset, error) {
	if !(factor > 0) || math.IsInf(factor, 0) {
		return Preset{}, fmt.Errorf("synth: preset %s: scale factor %v is not a positive finite number", p.Name, factor)
	}
	q := p
	q.Classes = slices.Clone(p.Classes)
	q.Domains = scaleSizes(p.Domains, factor)
	for i := range q.Domains {
		q.Domains[i].Size = max(q.Domains[i].Size, len(p.Classes))
	}
	return q, nil
}

func scaleSizes(domains []DomainSpec, factor float64) []DomainSpec {
	out := slices.Clone(domains)
	for i := range out {
		out[i].Size = int(math.Round(float64(out[i].Size) * factor))
	}
	return out
}

// Validate reports the first problem that would make p impossible to
// generate or write.
func (p Preset) Validate() error {
	if p.Name == "" {
		return fmt.Errorf("synth: preset has no name")
	}
	k := len(p.Classes)
	if k < 2 {
		return fmt.Errorf("synth: preset %s: %d classes, need at least 2", p.Name, k)
	}
	if len(p.Domains) == 0 {
		return fmt.Errorf("synth: preset %s: no domains", p.Name)
	}
	if err := p.Geometry.validate(); err != nil {
		return fmt.Errorf("synth: preset %s: %w", p.Name, err)
	}
	if need := 2 + 2*len(p.Domains) + 2*p.classRank(); p.Dim < need {
		return fmt.Errorf("synth: preset %s: dim %d too small for %d domains and class subspaces of rank %d (need at least %d)",
			p.Name, p.Dim, len(p.Domains), p.classRank(), need)
	}
	if err := uniqueNonEmpty(p.Classes); err != nil {
		return fmt.Errorf("synth: preset %s: class names: %w", p.Name, err)
	}
	names := make([]string, len(p.Domains))
	for i, d := range p.Domains {
		names[i] = d.Name
		if d.Size < k {
			return fmt.Errorf("synth: preset %s: domain %q has %d images, fewer than its %d classes", p.Name, d.Name, d.Size, k)
		}
		if strings.ContainsAny(d.Name, `/\`) {
			return fmt.Errorf("synth: preset %s: domain name %q contains a path separator", p.Name, d.Name)
		}
		for _, knob := range []struct {
			name  string
			value float64
		}{{"imbalance", d.Imbalance}, {"style", d.Style}, {"confusion", d.Confusion}, {"ambiguity", d.Ambiguity}, {"noise", d.Noise}} {
			if !(knob.value >= 0) || math.IsInf(knob.value, 0) {
				return fmt.Errorf("synth: preset %s: domain %q: %s %v is not a finite number >= 0", p.Name, d.Name, knob.name, knob.value)
			}
		}
	}
	if err := uniqueNonEmpty(names); err != nil {
		return fmt.Errorf("synth: preset %s: domain names: %w", p.Name, err)
	}
	return nil
}

// classRank is the dimension r of the text and of the vision class subspace.
func (p Preset) classRank() int { return min(len(p.Classes), p.Geometry.ClassRank) }

func (g Geometry) validate() error {
	weights := []struct {
		name  string
		value float64
	}{
		{"TextMean", g.TextMean}, {"TextClass", g.TextClass}, {"TextDomain", g.TextDomain},
		{"TextJitter", g.TextJitter}, {"Hubness", g.Hubness}, {"ImageMean", g.ImageMean},
		{"ImageText", g.ImageText}, {"ImageVision", g.ImageVision}, {"ClassDistortion", g.ClassDistortion},
		{"VisionShift", g.VisionShift}, {"ConfusionJitter", g.ConfusionJitter},
	}
	for _, w := range weights {
		if !(w.value >= 0) || math.IsInf(w.value, 0) {
			return fmt.Errorf("geometry: %s %v is not a finite number >= 0", w.name, w.value)
		}
	}
	for _, c := range []struct {
		name  string
		value float64
	}{{"GapCos", g.GapCos}, {"StyleTextAlign", g.StyleTextAlign}, {"GroupCorrelation", g.GroupCorrelation}, {"ClassSpanNoise", g.ClassSpanNoise}} {
		if !(c.value >= 0 && c.value <= 1) {
			return fmt.Errorf("geometry: %s %v is outside [0, 1]", c.name, c.value)
		}
	}
	if g.TextMean+g.TextClass == 0 || g.ImageMean+g.ImageText+g.ImageVision == 0 {
		return fmt.Errorf("geometry: all text or all image weights are zero")
	}
	if g.ClassRank < 2 {
		return fmt.Errorf("geometry: ClassRank %d is below 2", g.ClassRank)
	}
	return nil
}

func uniqueNonEmpty(names []string) error {
	seen := make(map[string]bool, len(names))
	for _, n := range names {
		if n == "" {
			return fmt.Errorf("empty name")
		}
		if seen[n] {
			return fmt.Errorf("%q appears twice", n)
		}
		seen[n] = true
	}
	return nil
}

func numberedClasses(k int) []string {
	names := make([]string, k)
	for i := range names {
		names[i] = fmt.Sprintf("class_%03d", i)
	}
	return names
}

// officeHomeClasses are the 65 Office-Home class folder names in the label
// order of the reference UniMoS image lists.
var officeHomeClasses = []string{
	"Drill", "Exit_Sign", "Bottle", "Glasses", "Computer", "File_Cabinet", "Shelf", "Toys", "Sink",
	"Laptop", "Kettle", "Folder", "Keyboard", "Flipflops", "Pencil", "Bed", "Hammer", "ToothBrush",
	"Couch", "Bike", "Postit_Notes", "Mug", "Webcam", "Desk_Lamp", "Telephone", "Helmet", "Mouse",
	"Pen", "Monitor", "Mop", "Sneakers", "Notebook", "Backpack", "Alarm_Clock", "Push_Pin",
	"Paper_Clip", "Batteries", "Radio", "Fan", "Ruler", "Pan", "Screwdriver", "Trash_Can", "Printer",
	"Speaker", "Eraser", "Bucket", "Chair", "Calendar", "Calculator", "Flowers", "Lamp_Shade", "Spoon",
	"Candles", "Clipboards", "Scissors", "TV", "Curtains", "Fork", "Soda", "Table", "Knives", "Oven",
	"Refrigerator", "Marker",
}

// visdaClasses are the 12 VisDA-2017 classes in their usual label order.
var visdaClasses = []string{
	"aeroplane", "bicycle", "bus", "car", "horse", "knife", "motorcycle", "person", "plant",
	"skateboard", "train", "truck",
}
