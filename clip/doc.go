// Package clip implements OpenAI's CLIP for inference in pure Go.
//
// The input side reproduces the reference Python pipeline exactly where it is
// deterministic: the byte-level BPE text tokenizer (Tokenizer,
// DefaultTokenizer; clip.tokenize) and the image preprocessing (Preprocess,
// PreprocessFile, Preprocessor; clip._transform with Pillow and
// torchvision).
//
// The encoders (Model, Load) run the text transformer and both image
// towers, VisionTransformer and ModifiedResNet, in float32, matching
// OpenAI's model.py to about 1e-5 on the reference fixtures. Weights come
// from safetensors files in OpenAI/open_clip or Hugging Face CLIPModel
// naming, with the architecture inferred from their shapes:
//
//	m, err := clip.Load("ViT-B-16.safetensors")
//	pixels, err := clip.PreprocessFile("cat.jpg", m.InputResolution())
//	img, err := m.EncodeImages([][]float32{pixels})
//	tok, err := m.Tokenizer() // CLIP's BPE, or a Hugging Face folder's vocab.json and merges.txt
//	ids, err := tok.Tokenize([]string{"a photo of a cat."}, m.ContextLength(), true)
//	txt, err := m.EncodeText(ids)
//	logits := m.Logits(img, txt)
package clip
