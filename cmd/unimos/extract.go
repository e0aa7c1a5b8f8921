package main

import (
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/unimos/unimos/clip"
	"github.com/unimos/unimos/extract"
	"github.com/unimos/unimos/features"
	"github.com/unimos/unimos/internal/progress"
	"github.com/unimos/unimos/internal/words"
	"github.com/unimos/unimos/tensor"
)

// listFlags collects repeated --list arguments.
type listFlags []extract.List

func (l *listFlags) String() string {
	parts := make([]string, len(*l))
	for i, x := range *l {
		parts[i] = x.Domain + "=" + x.File
	}
	return strings.Join(parts, ",")
}

func (l *listFlags) Set(s string) error {
	x, err := extract.ParseList(s)
	if err != nil {
		return err
	}
	*l = append(*l, x)
	return nil
}

func runExtract(ctx *context, args []string) error {
	fs := newFlags(ctx, "extract", "--weights WEIGHTS (--images ROOT | --list DOMAIN=FILE...) --out DIR [flags]", `
Encodes every image with a CLIP model and writes the feature store DIR:
dataset.json, <Domain>.safetensors (image features, rows L2-normalised, F16
as the reference caches them, or F32), <Domain>.paths.txt, and
text/<Domain>.safetensors (the text features of the prompt for each class).

Images come from ROOT/<Domain>/<Class>/<image> (as torchvision's
ImageFolder: .jpg .jpeg .png .bmp .webp .ppm .pgm .tif .tiff, any case,
also in subfolders; names starting with "." ignored) or from image lists in
the reference code's format, one "PATH LABEL" per line, PATH relative to
--images (default: the current folder). Folders give the classes as the
sorted union of the class folders (or --classes; another folder is then an
error) and the images sorted by class, then path; lists give class k the
name of the folder of the images labelled k and keep their order.

Unlabelled images (label -1 in the store), such as a target domain's, are
the image files directly in ROOT/<Domain>/ (after the domain's class
folders, sorted by path), and list lines "PATH -1" or just "PATH". A domain
may be all unlabelled; when no image has a class, give the class names with
--classes FILE, since the prompts need them. Empty class folders, and
classes without a labelled image, get a warning.

The prompt is "a {domain} photo of a {class}." with the domain in lower case
and '_' turned into ' ' in both names (--prompt changes the template).

Images that cannot be decoded get no row and are listed, with the reason,
in DIR/skipped.txt. Finished batches are saved in DIR/.partial: after an
interruption (Ctrl-C) run the same command again to resume; the store is
the same, byte for byte, as an uninterrupted run's.

--shard i/n extracts every n-th batch (batches numbered across domains)
into a shard folder; 'unimos merge' joins the n shards into the store.
--shard auto takes i and n from a Slurm array task (sbatch --array=0-3) or
a Kubernetes Indexed Job (JOB_COMPLETION_INDEX, with --shard-count or
UNIMOS_SHARD_COUNT); deploy/slurm and deploy/k8s have ready-made jobs.

Decoding runs on --workers goroutines ahead of the model; the model's
matrix products use --threads threads. Decoding a photo takes about 5% of
the CPU time of encoding it with ViT-B/16 or RN50, so the default keeps one
decoder per four cores; for small, fast models raise --workers (and lower
--threads).

--precision bf16 rounds the operands of the encoders' matrix products to
bfloat16 and sums them in f32 (LayerNorm, softmax, the residual stream and
the ResNet's Winograd convolutions stay f32); in the tests every feature
row stays within cosine 0.9995 of the f32 one. It needs AVX512_BF16 (elsewhere the
products stay f32) and pays only where that instruction is fast: twice the
f32 rate on AMD Zen 4, half of it on Intel Emerald Rapids.
--precision auto (the default) times both at start-up and takes bf16 only
where it runs at least 1.25 times as fast. dataset.json records the
precision used, and a run resumes or merges only with the same one.`)
	weights := fs.String("weights", "", weightsUsage)
	images := fs.String("images", "", "image folder `ROOT` (ROOT/<Domain>/<Class>/<image>), or with --list the folder the listed paths are relative to")
	var lists listFlags
	fs.Var(&lists, "list", "image list `DOMAIN=FILE` of \"PATH LABEL\" lines (\"PATH\" or \"PATH -1\": unlabelled), repeatable; FILE alone names the domain after the file (Art.txt: Art)")
	out := fs.String("out", "", "output `DIR`: the feature store, or the shard folder with --shard")
	domains := fs.String("domains", "", "comma-separated `DOMAINS`: the folders of ROOT to extract, in this order (default: all, sorted)")
	classFile := fs.String("classes", "", "class names `FILE`, one per line (or \"INDEX NAME\" lines); sets the class order")
	name := fs.String("name", "", "dataset `NAME` in dataset.json (default: the name of ROOT, or for lists of the folder holding the domain folders, going up past generic names such as images or data)")
	prompt := fs.String("prompt", extract.DefaultPrompt, "prompt `TEMPLATE` with {domain} and {class} placeholders")
	batch := fs.Int("batch", extract.DefaultBatch, "images per batch: the unit of encoding, resuming and sharding")
	threads := fs.Int("threads", 0, "matrix-multiply threads (0: one per core)")
	workers := fs.Int("workers", extract.DefaultWorkers(), "image decoding goroutines")
	dtype := fs.String("dtype", "f16", "storage `TYPE` of the image features: f16 or f32")
	precisionFlag := fs.String("precision", string(tensor.PrecisionAuto), "`PRECISION` of the encoders' matrix products: f32, bf16 (needs AVX512_BF16) or auto (bf16 where it measures faster)")
	shardFlag := addShardFlags(fs, "batches, for 'unimos merge'")
	if err := parseFlags(fs, args, 0); err != nil {
		return err
	}
	if err := requireFlags(fs, "weights", "out"); err != nil {
		return err
	}
	opt := extract.Options{Out: *out, Prompt: *prompt, Batch: *batch, Workers: *workers}
	switch strings.ToLower(*dtype) {
	case "f16":
		opt.DType = features.F16
	case "f32":
		opt.DType = features.F32
	default:
		return usagef("--dtype %q: want f16 or f32", *dtype)
	}
	precision, err := tensor.ParsePrecision(strings.ToLower(*precisionFlag))
	if err != nil {
		return usagef("--precision: %v", err)
	}
	switch {
	case len(lists) == 0 && *images == "":
		return usagef("--images or --list is required")
	case len(lists) > 0 && *domains != "":
		return usagef("--domains selects folders of ROOT; with --list, the lists name the domains")
	case *batch < 1:
		return usagef("--batch %d: want at least 1", *batch)
	case *workers < 1:
		return usagef("--workers %d: want at least 1", *workers)
	case *threads < 0:
		return usagef("--threads %d: want 0 (one per core) or more", *threads)
	}
	if err := extract.CheckPrompt(*prompt); err != nil {
		return usagef("--prompt: %v", err)
	}
	sh, err := shardFlag.resolve()
	if err != nil {
		return err
	}
	opt.Shard = sh

	var classes []string
	if *classFile != "" {
		var err error
		if classes, err = extract.ReadClassFile(*classFile); err != nil {
			return err
		}
	}
	var ds *extract.Dataset
	if len(lists) > 0 {
		root := *images
		if root == "" {
			root = "."
		}
		ds, err = extract.ReadLists(root, lists, classes)
	} else {
		var chosen []string
		if *domains != "" {
			chosen = strings.Split(*domains, ",")
		}
		ds, err = extract.ScanFolders(*images, chosen, classes)
	}
	if err != nil {
		return err
	}
	if *name != "" {
		ds.Name = *name
	}
	for _, w := range ds.Warnings {
		fmt.Fprintln(ctx.stderr, "warning: "+w)
	}
	if *threads > 0 {
		tensor.SetThreads(*threads)
	}
	model, err := clip.Load(*weights)
	if err != nil {
		return err
	}
	if opt.Precision, err = chooseProductPrecision(ctx, precision); err != nil {
		return err
	}
	total, unlabelled := ds.Counts()
	fmt.Fprintf(ctx.stderr, "%s: %s in %s, %s; %s; %s; GEMM %s\n",
		ds.Name, imageCount(total, unlabelled), words.Count(len(ds.Domains), "domain"), words.Count(len(ds.Classes), "class"),
		extract.Backbone(model.Config), words.Count(opt.Workers, "decoding worker"), tensor.BackendFor(opt.Precision))

	runCtx, stop := interruptible(ctx.stderr, "the finished batches")
	defer stop()
	opt.Progress = newExtractProgress(ctx.stderr).update
	opt.Warn = func(msg string) { progress.Printf(ctx.stderr, "warning: %s\n", msg) }
	sum, err := extract.Run(runCtx, model, ds, opt)
	if err != nil {
		return err
	}
	what := "feature store"
	if opt.Shard.Count > 0 {
		what = fmt.Sprintf("shard %v (merge the %s with 'unimos merge')", opt.Shard, words.Count(opt.Shard.Count, "shard"))
	}
	printStoreSummary(ctx.stdout, *out, what, sum)
	return nil
}

// chooseProductPrecision resolves --precision and says on stderr what the
// products will run in when that is not simply what was asked for: auto's
// choice with its measurement, or bf16's fallback to f32.
func chooseProductPrecision(ctx *context, asked tensor.Precision) (tensor.Precision, error) {
	p, why, err := tensor.ChoosePrecision(asked)
	if err != nil {
		return "", err
	}
	if p != asked || asked == tensor.PrecisionAuto {
		fmt.Fprintf(ctx.stderr, "products in %s: %s\n", p, why)
	}
	return p, nil
}

// printStoreSummary reports a finished extraction or merge on stdout.
func printStoreSummary(w io.Writer, dir, what string, sum *extract.Summary) {
	p := sum.Plan
	dtype := string(p.DType)
	if p.Precision == tensor.PrecisionBF16 {
		dtype += " (bf16 products)"
	}
	fmt.Fprintf(w, "%s: %s of %s, %s features [%d] of %s in %s, %s\n",
		dir, what, p.Name, dtype, p.Dim, imageCount(sum.Images-len(sum.Skipped), sum.Unlabelled),
		words.Count(len(p.Domains), "domain"), words.Count(len(p.Classes), "class"))
	if n := len(sum.Skipped); n == 1 {
		fmt.Fprintf(w, "1 image could not be decoded and has no row: see %s\n", dir+"/"+extract.SkippedFile)
	} else if n > 1 {
		fmt.Fprintf(w, "%d images could not be decoded and have no row: see %s\n", n, dir+"/"+extract.SkippedFile)
	}
}

// imageCount says how many images there are and, when some are, how many
// of them are unlabelled: "120 images (40 unlabelled)".
func imageCount(images, unlabelled int) string {
	if unlabelled == 0 {
		return words.Count(images, "image")
	}
	return fmt.Sprintf("%s (%d unlabelled)", words.Count(images, "image"), unlabelled)
}

// extractProgress draws a progress bar per domain on a terminal and prints a
// summary line per domain and a line per skipped image everywhere.
type extractProgress struct {
	w       io.Writer
	domain  string
	bar     *progress.Bar
	start   time.Time
	skipped int
}

func newExtractProgress(w io.Writer) *extractProgress { return &extractProgress{w: w} }

func (p *extractProgress) update(e extract.Progress) {
	if e.Domain != p.domain {
		p.domain, p.skipped, p.start = e.Domain, 0, time.Now()
		p.bar = progress.New(p.w, fmt.Sprintf("%-12s", e.Domain), "img", e.Total-e.Resumed)
	}
	for _, s := range e.Skipped {
		progress.Printf(p.w, "skipped %s: %s\n", s.Name, s.Reason)
	}
	p.skipped += len(e.Skipped)
	done := e.Done - e.Resumed
	p.bar.Update(done, fmt.Sprintf("%d skipped", p.skipped))
	if e.Done < e.Total {
		return
	}
	p.bar.Clear()
	line := fmt.Sprintf("%-12s %13s", e.Domain, words.Count(e.Total, "image"))
	if e.Resumed > 0 {
		line += fmt.Sprintf(", %d done before", e.Resumed)
	}
	if p.skipped > 0 {
		line += fmt.Sprintf(", %d skipped", p.skipped)
	}
	if done > 0 {
		secs := time.Since(p.start).Seconds()
		line += fmt.Sprintf("  %6.1f s  %7.1f img/s", secs, float64(done)/secs)
	}
	fmt.Fprintln(p.w, line)
}
