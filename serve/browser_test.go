package serve

import (
	"context"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// browserNames are the executables of a Chromium-based browser, the first
// one found is used (Debian's package "chromium" installs the first).
var browserNames = []string{"chromium", "chromium-browser", "google-chrome", "google-chrome-stable"}

// findBrowser returns the path of a headless-capable browser, or skips the
// test with a message saying how to install one.
func findBrowser(t *testing.T) string {
	t.Helper()
	for _, name := range browserNames {
		if path, err := exec.LookPath(name); err == nil {
			return path
		}
	}
	t.Skipf("no browser to test the web page in (looked for %s): apt-get install -y chromium", strings.Join(browserNames, ", "))
	return ""
}

// TestWebPageInBrowser opens the page in headless Chromium, checks that it
// lists the model's classes, uploads an image through the file input and
// reads the predicted class and confidence from the page.
func TestWebPageInBrowser(t *testing.T) {
	browser := findBrowser(t)
	s, err := New(Model{Encoder: &colourEncoder{}, Classifier: softmaxClassifier{}, Classes: colourClasses, Backbone: "colour double"}, Config{})
	if err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	stop, cancelServe := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- s.Serve(stop, l) }()
	defer func() {
		cancelServe()
		if err := <-served; err != nil {
			t.Errorf("Serve: %v", err)
		}
	}()

	image := filepath.Join(t.TempDir(), "blue square.png")
	if err := os.WriteFile(image, solidPNG(t, blue), 0o644); err != nil {
		t.Fatal(err)
	}
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(browser),
		chromedp.NoSandbox, // tests may run as root, where Chromium's sandbox refuses to start
		chromedp.Flag("disable-dev-shm-usage", true),
	)
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	defer cancelAlloc()
	ctx, cancelBrowser := chromedp.NewContext(allocCtx)
	defer cancelBrowser()
	ctx, cancelTimeout := context.WithTimeout(ctx, 60*time.Second)
	defer cancelTimeout()

	err = chromedp.Do(ctx,
		chromedp.Navigate("http://"+l.Addr().String()+"/"),
		chromedp.WaitVisible("#classes li"),
		chromedp.SetUploadFiles("#files", []string{image}),
		chromedp.WaitVisible(`.result[data-state="done"] .result-class`),
	)
	if err != nil {
		t.Fatalf("driving the browser: %v", err)
	}
	text := func(sel string) string {
		t.Helper()
		s, err := chromedp.Run(ctx, chromedp.Text(sel))
		if err != nil {
			t.Fatalf("reading %s: %v", sel, err)
		}
		return s
	}
	model, classes := text("#model"), text("#classes")
	class, confidence, name := text(".result .result-class"), text(".result .result-confidence"), text(".result .name")
	width, err := chromedp.Run(ctx, chromedp.Evaluate[string](`document.querySelector(".result .bar > div").style.width`))
	if err != nil {
		t.Fatal(err)
	}
	if model != "colour double, 3 classes" || strings.Fields(classes)[0] != "red" || len(strings.Fields(classes)) != 3 {
		t.Errorf("model %q, classes %q", model, classes)
	}
	if class != "blue" || name != "blue square.png" || !strings.HasPrefix(confidence, "confidence ") || !strings.HasSuffix(width, "%") || width == "0%" {
		t.Errorf("the page shows class %q, %q, bar width %q for %q", class, confidence, width, name)
	}

	// An undecodable file shows its error on the page.
	notes := filepath.Join(t.TempDir(), "notes.png")
	if err := os.WriteFile(notes, []byte("not an image"), 0o644); err != nil {
		t.Fatal(err)
	}
	err = chromedp.Do(ctx,
		chromedp.SetUploadFiles("#files", []string{notes}),
		chromedp.WaitVisible(`.result[data-state="error"] .result-class`),
	)
	if err != nil {
		t.Fatalf("driving the browser: %v", err)
	}
	problem := text(`.result[data-state="error"] .result-class`)
	if problem != "not a JPEG, PNG, GIF, BMP, TIFF or WebP image" {
		t.Errorf("the page shows %q for an undecodable file", problem)
	}
}
