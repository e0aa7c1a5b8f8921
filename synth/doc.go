// Package synth generates synthetic CLIP-like domain-adaptation benchmarks:
// feature stores whose image and text features have the geometry of real
// CLIP embeddings, so that unimos can be demonstrated and tested without
// downloading images or models.
//
// # Model
//
// Everything lives in a random orthonormal frame of d-dimensional
// directions: a shared text direction e_txt, a shared image direction e_img,
// an r-dimensional text (semantic) subspace, an r-dimensional vision-only
// subspace orthogonal to it, and per domain a domain-word direction w_d and a
// style direction o_d, with r = min(K, Geometry.ClassRank) for K classes.
//
// Each class k has a semantic vector s_k and a visual vector v_k (unit, in
// their subspaces), correlated within super-classes of about six classes.
//
// The text feature of the prompt "a {domain} photo of a {class}." is
//
//	t_kd ∝ TextMean·e_txt + Hubness·h_k·e_img + TextClass·s_k + TextDomain·w_d + TextJitter·χ_kd
//
// with h_k ~ N(0,1) (some prompts score high on every image, like CLIP's hub
// classes, which is what UniMoS's prediction debiasing corrects) and χ_kd a
// random class-specific effect of the domain word.
//
// In domain d, class k blends its semantic vector towards a confuser class
// c(k,d), drawn per domain (from the same super-class half the time), by
// η_kd ~ Exponential(Confusion_d) capped at 0.9, and gets a random
// distortion: ŝ_kd(η) ∝ (1−η)·s_k + η·s_c(k,d) + ClassDistortion·ζ_kd. Its
// visual vector shifts too: v̂_kd ∝ v_k + VisionShift·ξ_kd. An image of class
// k in domain d is
//
//	x ∝ ImageMean·m + Style_d·o'_d
//	    + (1−λ)·[ImageText·ŝ_kd(η) + ImageVision·v̂_kd] + λ·[ImageText·ŝ_jd(η_jd) + ImageVision·v̂_jd]
//	    + noise
//
// where m = GapCos·e_txt + √(1−GapCos²)·e_img puts the image centroid off the
// text centroid (the modality gap); o'_d = StyleTextAlign·w_d +
// √(1−StyleTextAlign²)·o_d is the domain's look; η = η_kd + ConfusionJitter·z
// (clamped to [0, 1]) varies per image, so zero-shot accuracy varies
// smoothly within a class; j is a random other class and λ = min(1,
// Ambiguity_d·|z'|) makes some images ambiguous; the noise is Gaussian with
// energy Noise_d², a share ClassSpanNoise of it spread over the two class
// subspaces and the rest over all d directions. Images and prompts are
// L2-normalised.
//
// Zero-shot CLIP sees only the text-aligned part ŝ, so it makes the
// domain's confusions; the vision-only part v̂ is invisible to every prompt
// but shared (up to VisionShift) across domains, so a classifier trained on
// source labels, or on pseudo-labels, can use it. That is the room UniMoS's
// vision branch exploits.
//
// Class proportions follow a Zipf law with shuffled ranks per domain
// (DomainSpec.Imbalance). Rows of a domain are in random order. Every domain
// draws from its own random stream, so changing one domain's size leaves the
// others unchanged.
//
// # Calibration
//
// The default geometry was tuned against real CLIP ViT-B/16 embeddings of
// 500 COCO image-caption pairs (shared data clip_coco500_modality_gap): there
// the modality gap ‖mean(image) − mean(text)‖ is 0.851, the mean cosine of
// matching pairs 0.310, of non-matching pairs 0.162, and between two images
// 0.531. The office-home preset (seed 2023) gives, per domain, a gap of
// 0.85-0.86, a cosine of 0.29-0.34 between an image and its own class's
// prompt, about 0.19 with other prompts (prompts from one template are more
// alike than free captions: 0.57 between two prompts) and 0.52-0.56 between
// images. Its zero-shot accuracies are 71.7 / 47.0 / 82.0 / 83.4 on Art /
// Clipart / Product / Real_World (CLIP RN50 on the real images: roughly
// 72 / 52 / 82 / 83). The package tests measure these statistics on both
// and log them.
//
// # Sizes
//
// Features are stored as float16, 2·d bytes per image: office-home writes
// about 32 MB, visda about 200 MB (use visda-small, a tenth of it, for quick
// runs), domainnet about 60 MB. Generating office-home takes about 0.6 s.
package synth
