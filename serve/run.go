package serve

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/http"
	"path/filepath"
	"time"

	"github.com/unimos/unimos/clip"
	"github.com/unimos/unimos/extract"
	"github.com/unimos/unimos/unimos"
)

// Load reads the model that "unimos adapt" saved (modelPath: the run
// directory or its model.safetensors) and the CLIP weights, and checks that
// they are the weights the model was trained on, as "unimos predict" does
// (unimos.SavedModel.CheckCLIP; force lets other weights through). The
// notes are for the user: a check that could not be made, weights let
// through by force, a run without result.json.
func Load(modelPath, weights string, force bool) (m Model, notes []string, err error) {
	path := unimos.ModelPath(modelPath)
	saved, err := unimos.LoadModel(path)
	if err != nil {
		return Model{}, nil, err
	}
	encoder, err := clip.Load(weights)
	if err != nil {
		return Model{}, nil, err
	}
	note, err := saved.CheckCLIP(encoder, weights, force)
	if err != nil {
		return Model{}, nil, err
	}
	if note != "" {
		notes = append(notes, note)
	}
	m = Model{Encoder: encoder, Classifier: saved, Classes: saved.Classes, Backbone: extract.Backbone(encoder.Config)}
	result := filepath.Join(filepath.Dir(path), unimos.ResultFile)
	m.Training, err = unimos.ReadResult(result)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		notes = append(notes, fmt.Sprintf("note: no %s beside %s: GET /v1/model has no training summary", unimos.ResultFile, path))
	case err != nil:
		return Model{}, nil, err
	}
	return m, notes, nil
}

// readHeaderTimeout bounds the time a client may take to send a request's
// headers, so that idle connections cannot hold the server's sockets.
const readHeaderTimeout = 10 * time.Second

// Serve answers on l until ctx is cancelled, then shuts down gracefully:
// it stops accepting connections, lets the requests in flight finish, and
// stops the decode pool and the batcher. It returns nil after a shutdown,
// or the error that stopped the listener.
func (s *Server) Serve(ctx context.Context, l net.Listener) error {
	srv := &http.Server{Handler: s.Handler(), ReadHeaderTimeout: readHeaderTimeout}
	failed := make(chan error, 1)
	go func() { failed <- srv.Serve(l) }()
	var err error
	select {
	case err = <-failed: // the listener failed: no new request comes
		srv.Shutdown(context.Background()) // waits for the ones in flight
	case <-ctx.Done():
		// Shutdown waits for the handlers, which wait for the batcher;
		// every request in flight is answered.
		err = srv.Shutdown(context.Background())
		if serveErr := <-failed; !errors.Is(serveErr, http.ErrServerClosed) {
			err = errors.Join(err, serveErr)
		}
	}
	s.Close()
	return err
}
