package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/unimos/unimos/clip"
	"github.com/unimos/unimos/internal/words"
	"github.com/unimos/unimos/safetensors"
)

func runConvert(ctx *context, args []string) error {
	fs := newFlags(ctx, "convert", "--weights WEIGHTS --out FILE [--dtype f16|bf16|f32] [--force]", `
Writes CLIP weights as one safetensors file in OpenAI's naming (shared by
open_clip), with the model configuration in its metadata, whatever the
weights came as (OpenAI, open_clip or Hugging Face naming, one file or a
sharded Hugging Face folder): one file that needs no config.json beside it,
for unimos and for tools that read OpenAI's state dicts.

--weights takes what every command takes: a file, a folder, one of the
names OpenAI's clip.load takes (ViT-B/16, found in ~/.cache/clip), or a
Hugging Face repository id (openai/clip-vit-base-patch16, found in the
Hugging Face cache). Nothing is downloaded.

The file holds the weights the model uses, under OpenAI's names, stored as
--dtype: f16 or bf16 round each weight to nearest, f32 keeps every value.
Without --dtype each weight keeps its value exactly, in the narrowest type
that holds them all (f16 or bf16 for a half-precision checkpoint, f32
otherwise). An existing --out is refused unless --force; the file is
written through a temporary file renamed into place.`)
	weights := fs.String("weights", "", weightsUsage)
	out := fs.String("out", "", "safetensors `FILE` to write")
	dtypeFlag := fs.String("dtype", "", "storage `TYPE` of the weights: f16, bf16 or f32 (default: the narrowest that keeps every value)")
	force := fs.Bool("force", false, "replace --out if it exists")
	if err := parseFlags(fs, args, 0); err != nil {
		return err
	}
	if err := requireFlags(fs, "weights", "out"); err != nil {
		return err
	}
	dtype, err := parseWeightsDType(*dtypeFlag)
	if err != nil {
		return err
	}
	if st, err := os.Stat(*out); err == nil {
		switch {
		case st.IsDir():
			return usagef("--out %s is a folder: give a file name, such as %s", *out, filepath.Join(*out, "model.safetensors"))
		case !*force:
			return usagef("%s exists: choose another --out, or replace it with --force", *out)
		}
	}

	path, err := clip.Resolve(*weights, ctx.stderr)
	if err != nil {
		return err
	}
	if path != *weights {
		fmt.Fprintf(ctx.stderr, "%s: %s\n", *weights, path)
	}
	ck, err := clip.ReadCheckpoint(path, dtype)
	if err != nil {
		return err
	}
	if err := ck.WriteFile(*out); err != nil {
		return err
	}
	var count, size int
	for _, t := range ck.Tensors {
		count += t.NumElements()
		size += len(t.Data)
	}
	fmt.Fprintf(ctx.stdout, "%s: %s, %.1fM weights (%d MiB) in %s; %s\n",
		*out, ck.DType, float64(count)/1e6, size>>20, words.Count(len(ck.Tensors), "tensor"), ck.Config)
	return nil
}

// parseWeightsDType reads --dtype: "" (keep every value) or f16, bf16, f32 in any
// case.
func parseWeightsDType(s string) (safetensors.DType, error) {
	switch strings.ToLower(s) {
	case "":
		return "", nil
	case "f16":
		return safetensors.F16, nil
	case "bf16":
		return safetensors.BF16, nil
	case "f32":
		return safetensors.F32, nil
	}
	return "", usagef("--dtype %q: want f16, bf16 or f32", s)
}
