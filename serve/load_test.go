package serve

import (
	"bytes"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/unimos/unimos/internal/imagefile"
)

// TestLoad is the load generator of docs/benchmarks.md: against a running
// "unimos serve" on this machine's loopback, it sends the images of a
// folder from 1, 8 and 32 clients at once, each client one request after
// the other for a fixed time, and prints the latency percentiles, the
// images per second and, given the server's pid, its peak resident memory
// during each run. It is skipped unless UNIMOS_LOAD_URL is set:
//
//	UNIMOS_LOAD_URL=http://127.0.0.1:8080 UNIMOS_LOAD_IMAGES=DIR [UNIMOS_LOAD_PID=PID] \
//	[UNIMOS_LOAD_SECONDS=20] go test ./serve -run TestLoad -v -timeout 30m
func TestLoad(t *testing.T) {
	base := os.Getenv("UNIMOS_LOAD_URL")
	if base == "" {
		t.Skip("the load generator runs only with UNIMOS_LOAD_URL set (see docs/benchmarks.md)")
	}
	u, err := url.Parse(base)
	if err != nil || !slices.Contains([]string{"127.0.0.1", "::1", "localhost"}, u.Hostname()) {
		t.Fatalf("UNIMOS_LOAD_URL %q: give a loopback address (127.0.0.1 or [::1]); the generator loads only this machine", base)
	}
	images := loadImages(t, os.Getenv("UNIMOS_LOAD_IMAGES"))
	seconds := 20.0
	if s := os.Getenv("UNIMOS_LOAD_SECONDS"); s != "" {
		if seconds, err = strconv.ParseFloat(s, 64); err != nil || seconds <= 0 || seconds > 600 {
			t.Fatalf("UNIMOS_LOAD_SECONDS %q: give seconds from 0 to 600", s)
		}
	}
	pid := os.Getenv("UNIMOS_LOAD_PID")
	// A batch of 32 large-model images can take minutes on a busy 2-core
	// machine: the timeout only catches a server that stopped answering.
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}, Timeout: 10 * time.Minute}
	target := strings.TrimSuffix(base, "/") + "/v1/classify"

	// One request first, so that the first measured one does not pay for
	// connection set-up or lazy initialisation.
	if code := send(client, target, images[0]); code != http.StatusOK {
		t.Fatalf("a first request: status %d", code)
	}
	fmt.Printf("| clients | requests | p50 ms | p99 ms | images/s | errors | peak RSS MiB |\n|---|---|---|---|---|---|---|\n")
	for _, clients := range []int{1, 8, 32} {
		if pid != "" {
			// Reset the server's peak resident set size (VmHWM).
			if err := os.WriteFile("/proc/"+pid+"/clear_refs", []byte("5"), 0); err != nil {
				t.Fatalf("resetting the peak RSS of %s: %v", pid, err)
			}
		}
		r := runLoad(client, target, images, clients, time.Duration(seconds*float64(time.Second)))
		rss := "-"
		if pid != "" {
			rss = fmt.Sprintf("%.0f", peakRSS(t, pid))
		}
		fmt.Printf("| %d | %d | %.0f | %.0f | %.1f | %d | %s |\n", clients, len(r.latencies), r.percentile(50), r.percentile(99),
			float64(len(r.latencies))/r.elapsed.Seconds(), r.errors, rss)
	}
}

// loadResult is one run of runLoad.
type loadResult struct {
	latencies []time.Duration // of the answered requests, sorted
	errors    int             // requests not answered with 200
	elapsed   time.Duration
}

// percentile returns the p-th percentile latency in milliseconds.
func (r loadResult) percentile(p float64) float64 {
	if len(r.latencies) == 0 {
		return 0
	}
	i := min(len(r.latencies)-1, int(p/100*float64(len(r.latencies))))
	return float64(r.latencies[i]) / float64(time.Millisecond)
}

// maxRequestsPerClient bounds a run whatever the server's speed.
const maxRequestsPerClient = 10000

// runLoad sends requests from the given number of clients until d has
// passed (each client finishes the request it has started).
func runLoad(client *http.Client, target string, images [][]byte, clients int, d time.Duration) loadResult {
	var mu sync.Mutex
	var r loadResult
	start := time.Now()
	deadline := start.Add(d)
	var wg sync.WaitGroup
	for c := range clients {
		wg.Go(func() {
			for i := 0; i < maxRequestsPerClient && time.Now().Before(deadline); i++ {
				t0 := time.Now()
				code := send(client, target, images[(c*7+i)%len(images)])
				lat := time.Since(t0)
				mu.Lock()
				if code == http.StatusOK {
					r.latencies = append(r.latencies, lat)
				} else {
					r.errors++
				}
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	r.elapsed = time.Since(start)
	slices.Sort(r.latencies)
	return r
}

// send posts one image and returns the status (0 when the request failed).
func send(client *http.Client, target string, image []byte) int {
	resp, err := client.Post(target, "application/octet-stream", bytes.NewReader(image))
	if err != nil {
		return 0
	}
	defer resp.Body.Close()
	var sink bytes.Buffer
	sink.ReadFrom(resp.Body)
	return resp.StatusCode
}

// loadImages reads the image files under dir.
func loadImages(t *testing.T, dir string) [][]byte {
	t.Helper()
	if dir == "" {
		t.Fatal("UNIMOS_LOAD_IMAGES: give a folder of images to send")
	}
	var images [][]byte
	err := filepath.WalkDir(dir, func(path string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() || !imagefile.Is(path) {
			return err
		}
		data, err := os.ReadFile(path)
		images = append(images, data)
		return err
	})
	if err != nil || len(images) == 0 {
		t.Fatalf("UNIMOS_LOAD_IMAGES %s: %d images, %v", dir, len(images), err)
	}
	return images
}

// peakRSS returns the VmHWM of process pid, in MiB.
func peakRSS(t *testing.T, pid string) float64 {
	status, err := os.ReadFile("/proc/" + pid + "/status")
	if err != nil {
		t.Fatal(err)
	}
	for line := range strings.Lines(string(status)) {
		if rest, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			kb, err := strconv.Atoi(strings.TrimSuffix(strings.TrimSpace(rest), " kB"))
			if err != nil {
				t.Fatal(err)
			}
			return float64(kb) / 1024
		}
	}
	t.Fatal("no VmHWM in /proc/" + pid + "/status")
	return 0
}
