package main

import (
	"errors"
	"fmt"
	"net"
	"os"
	"strings"

	"github.com/unimos/unimos/internal/regularfile"
	"github.com/unimos/unimos/internal/words"
	"github.com/unimos/unimos/serve"
)

func runServe(ctx *context, args []string) error {
	fs := newFlags(ctx, "serve", "--model RUN_DIR --weights WEIGHTS [--addr 127.0.0.1:8080] [--max-batch 32] [--max-wait 5ms] [--max-bytes 20000000] [--token-file FILE] [--force]", `
Answers classification requests over HTTP with a model that "unimos adapt"
trained, the CLIP weights loaded once:

  POST /v1/classify   an image as the body, or several as multipart/form-data:
                      class, confidence and the k best classes (?k=5), the
                      numbers "unimos predict --images" gives for the file
  POST /v1/embed      the L2-normalised CLIP image features
  GET  /v1/model      classes, CLIP backbone, the run's training summary
  GET  /healthz       the process is up
  GET  /readyz        the model is loaded and the queue has room
  GET  /metrics       Prometheus metrics
  GET  /              a web page to classify images

Concurrent requests are decoded in parallel and encoded together in
batches of up to --max-batch images, a batch waiting at most --max-wait for
more. At most --max-queue images wait at once; beyond that requests get 503
with Retry-After. Bodies over --max-bytes get 413; images that cannot be
decoded, or have more pixels than extract takes, get 422.

Like predict, serve refuses CLIP weights other than those the model was
trained on unless --force. With --token-file, every route but /healthz
needs the header "Authorization: Bearer TOKEN" (the file's content). It
listens on the loopback interface unless --addr says otherwise.
SIGINT or SIGTERM stops it after the requests in flight are answered.`)
	model := fs.String("model", "", "`RUN_DIR` of a run, or its model.safetensors")
	weights := fs.String("weights", "", weightsUsage)
	addr := fs.String("addr", "127.0.0.1:8080", "`HOST:PORT` to listen on (port 0: any free port)")
	maxBatch := fs.Int("max-batch", serve.DefaultMaxBatch, "the most images encoded at once")
	maxWait := fs.Duration("max-wait", serve.DefaultMaxWait, "how long a batch that is not full waits for more images")
	maxBytes := fs.Int64("max-bytes", serve.DefaultMaxBytes, "the largest request body, in bytes")
	maxQueue := fs.Int("max-queue", 0, "the most images waiting at once; more get 503 (default 4 × --max-batch)")
	tokenFile := fs.String("token-file", "", "require \"Authorization: Bearer TOKEN\", TOKEN the content of `FILE`")
	force := fs.Bool("force", false, "serve even if the CLIP weights are not those the model was trained on")
	if err := parseFlags(fs, args, 0); err != nil {
		return err
	}
	if err := requireFlags(fs, "model", "weights"); err != nil {
		return err
	}
	switch {
	case *maxBatch < 1:
		return usagef("--max-batch %d: give at least 1", *maxBatch)
	case *maxWait < 0:
		return usagef("--max-wait %s: give a duration of 0 or more, such as 5ms", *maxWait)
	case *maxBytes < 1:
		return usagef("--max-bytes %d: give at least 1", *maxBytes)
	case *maxQueue < 0:
		return usagef("--max-queue %d: give at least 1 (or 0 for 4 × --max-batch)", *maxQueue)
	}
	cfg := serve.Config{MaxBatch: *maxBatch, MaxWait: *maxWait, MaxBytes: *maxBytes, MaxQueue: *maxQueue}
	if *tokenFile != "" {
		token, err := readToken(*tokenFile)
		if err != nil {
			return err
		}
		cfg.Token = token
	}

	m, notes, err := serve.Load(*model, *weights, *force)
	if err != nil {
		return err
	}
	for _, note := range notes {
		fmt.Fprintln(ctx.stderr, note)
	}
	server, err := serve.New(m, cfg)
	if err != nil {
		return err
	}
	// Listen before announcing, so that the address printed is the one in
	// use (with port 0, the port chosen).
	l, err := net.Listen("tcp", *addr)
	if err != nil {
		server.Close()
		return fmt.Errorf("%w: give another --addr", err)
	}
	// The first SIGINT or SIGTERM stops accepting and lets the requests in
	// flight finish; a second one quits at once.
	stop, release := interruptible(ctx.stderr, "the answers to the requests in flight")
	defer release()
	fmt.Fprintf(ctx.stderr, "serving %s (%s, %s) on http://%s/ (Ctrl-C to stop)\n",
		*model, m.Backbone, words.Count(len(m.Classes), "class"), l.Addr())
	if err := server.Serve(stop, l); err != nil {
		return err
	}
	fmt.Fprintln(ctx.stderr, "stopped")
	return nil
}

// maxTokenBytes bounds a --token-file, which is read whole: a token is a
// line of text.
const maxTokenBytes = 64 << 10

// readToken reads the bearer token of --token-file: the file's content
// without surrounding white space.
func readToken(path string) (string, error) {
	raw, err := regularfile.ReadFile(path, "a text file", maxTokenBytes)
	if errors.Is(err, os.ErrNotExist) {
		return "", fmt.Errorf("--token-file %s: no such file", path)
	} else if err != nil {
		return "", fmt.Errorf("--token-file: %w", err)
	}
	token := strings.TrimSpace(string(raw))
	if token == "" {
		return "", fmt.Errorf("--token-file %s is empty: write the token clients must send into it", path)
	}
	if strings.ContainsAny(token, " \t\r\n") {
		return "", fmt.Errorf("--token-file %s: the token contains white space; write one token on one line", path)
	}
	return token, nil
}
