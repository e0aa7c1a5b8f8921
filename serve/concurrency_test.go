package serve

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"image/color"
	"net"
	"net/http"
	"runtime"
	"sync"
	"testing"
	"time"
)

// TestManyClientsThenShutdown runs the server as "unimos serve" does
// (Serve on a loopback listener), sends requests from 32 clients at once,
// single images and multipart forms, and checks every answer; then it
// cancels the context as SIGTERM does, and checks that Serve returns nil
// and that no goroutine of the server is left behind.
func TestManyClientsThenShutdown(t *testing.T) {
	before := runtime.NumGoroutine()
	enc := &colourEncoder{}
	s, err := New(Model{Encoder: enc, Classifier: softmaxClassifier{}, Classes: colourClasses}, Config{MaxBatch: 16, MaxWait: 2 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- s.Serve(ctx, l) }()

	colours := []color.Color{red, green, blue}
	images := make([][]byte, 3)
	for i, c := range colours {
		images[i] = solidPNG(t, c)
	}
	// forms[i]: a multipart form of the three colours, colour i first.
	var forms [3]form
	for want := range 3 {
		var parts []part
		for i := range 3 {
			k := (want + i) % 3
			parts = append(parts, part{colourClasses[k] + ".png", images[k]})
		}
		forms[want].contentType, forms[want].body = multipartForm(t, parts...)
	}
	transport := &http.Transport{MaxIdleConnsPerHost: 32}
	client := &http.Client{Transport: transport, Timeout: 30 * time.Second}
	url := "http://" + l.Addr().String() + "/v1/classify"
	const clients, rounds = 32, 10
	errs := make(chan error, clients*rounds)
	var wg sync.WaitGroup
	for c := range clients {
		wg.Go(func() {
			for r := range rounds {
				want := (c + r) % 3
				if err := classifyOnce(client, url, c%4 == 0, images, forms, want); err != nil {
					errs <- fmt.Errorf("client %d, round %d: %w", c, r, err)
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if b := enc.batches.Load(); b >= clients*rounds {
		t.Errorf("%d batches for %d requests: nothing was coalesced", b, clients*rounds)
	}

	cancel()
	select {
	case err := <-served:
		if err != nil {
			t.Errorf("Serve: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Serve did not return within 10 s of the cancellation")
	}
	transport.CloseIdleConnections()
	deadline := time.Now().Add(5 * time.Second)
	for runtime.NumGoroutine() > before {
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<16)
			t.Fatalf("%d goroutines after shutdown, %d before:\n%s", runtime.NumGoroutine(), before, buf[:runtime.Stack(buf, true)])
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// form is a multipart request body.
type form struct {
	contentType string
	body        []byte
}

// classifyOnce sends the image of colour want (multi: the multipart form of
// all three colours, want first) and checks the answer.
func classifyOnce(client *http.Client, url string, multi bool, images [][]byte, forms [3]form, want int) error {
	contentType, body := "image/png", images[want]
	if multi {
		contentType, body = forms[want].contentType, forms[want].body
	}
	resp, err := client.Post(url, contentType, bytes.NewReader(body))
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("status %d", resp.StatusCode)
	}
	if !multi {
		var got classification
		if err := json.NewDecoder(resp.Body).Decode(&got); err != nil {
			return err
		}
		if got.Class != colourClasses[want] {
			return fmt.Errorf("class %s, want %s", got.Class, colourClasses[want])
		}
		return nil
	}
	var got []classification
	if err := json.NewDecoder(resp.Body).Decode(&got); err != nil {
		return err
	}
	for i, g := range got {
		k := colourClasses[(want+i)%3]
		if g.Class != k || g.Name != k+".png" {
			return fmt.Errorf("part %d: %s (%s), want %s", i, g.Class, g.Name, k)
		}
	}
	if len(got) != 3 {
		return fmt.Errorf("%d answers for 3 parts", len(got))
	}
	return nil
}
