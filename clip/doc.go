// Package clip implements the input side of OpenAI's CLIP in pure Go: the byte-level
// BPE text tokenizer (Tokenizer, DefaultTokenizer) and the image preprocessing
// (Preprocess, PreprocessFile, Preprocessor), both reproducing the reference Python
// pipeline (clip.tokenize and clip._transform with Pillow and torchvision) exactly
// where the reference is deterministic.
package clip
