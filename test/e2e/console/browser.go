package console

import (
	"cmp"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"

	"kvstore.dev/kvstore/test/harness"
)

const (
	// stepTimeout bounds each browser action and each wait of the flow.
	stepTimeout = 15 * time.Second
	// windowWidth and windowHeight are the viewport of the screenshots:
	// wide enough for the two-column layout.
	windowWidth, windowHeight = 1366, 900
)

// runner is one run of the flow: a browser with one tab on the console.
type runner struct {
	t         testing.TB
	ctx       context.Context // the tab; its cancellation ends the browser
	closeTab  context.CancelFunc
	closeExec context.CancelFunc
	base      string
	token     string
	prefix    string
	artifacts string
	name      string
	api       *apiClient
	cutWatch  func()
	compact   func()
	mon       *monitor
	output    *lockedBuffer // chromium's stdout and stderr
	dialogs   chan string   // messages of the dialogs accepted
	wg        sync.WaitGroup
}

func newRunner(ctx context.Context, t testing.TB, baseURL, token string, opts Options) (*runner, error) {
	t.Helper()
	base := strings.TrimSuffix(baseURL, "/")
	u, err := url.Parse(base)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("console: base URL %q is not an http(s) URL", baseURL)
	}
	exe := opts.ChromiumPath
	if exe == "" {
		exe = RequireChromium(t)
	}
	prefix := opts.KeyPrefix
	if prefix == "" {
		prefix = "demo/run-" + strings.ToLower(rand.Text()[:10]) + "/"
	}
	if !strings.HasSuffix(prefix, "/") {
		return nil, fmt.Errorf("console: key prefix %q must end in \"/\"", prefix)
	}
	artifacts, err := artifactsDir(t, opts.ArtifactsDir)
	if err != nil {
		return nil, err
	}
	hc := opts.HTTPClient
	if hc == nil {
		hc = &http.Client{Timeout: stepTimeout}
	}

	r := &runner{
		t:         t,
		base:      base,
		token:     token,
		prefix:    prefix,
		artifacts: artifacts,
		name:      cmp.Or(opts.Name, "console"),
		api:       newAPIClient(base, token, hc),
		cutWatch:  opts.CutWatch,
		compact:   opts.CompactWatch,
		mon:       newMonitor(u, token),
		output:    &lockedBuffer{},
		dialogs:   make(chan string, 8),
	}
	execCtx, closeExec := chromedp.NewExecAllocator(ctx, r.allocatorOptions(exe, opts)...)
	tabCtx, closeTab := chromedp.NewContext(execCtx)
	r.ctx, r.closeTab, r.closeExec = tabCtx, closeTab, closeExec

	start := time.Now()
	if err := chromedp.Do(tabCtx); err != nil { // starts the browser and opens the tab
		r.close()
		return nil, fmt.Errorf("console: starting %s: %w\nchromium output (tail):\n%s", exe, err, r.output.tail(4<<10))
	}
	t.Logf("console: chromium started in %v (%s)", time.Since(start).Round(time.Millisecond), exe)
	if err := chromedp.Listen(tabCtx, r.mon.handle); err != nil {
		r.close()
		return nil, fmt.Errorf("console: listening to the tab: %w", err)
	}
	r.acceptDialogs()
	return r, nil
}

// allocatorOptions are chromedp's defaults (headless and quiet) plus the
// flags of a root, offline, proxy-less run of the system chromium.
func (r *runner) allocatorOptions(exe string, opts Options) []chromedp.ExecAllocatorOption {
	o := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(exe),
		chromedp.NoSandbox, // tests run as root in containers
		chromedp.WindowSize(windowWidth, windowHeight),
		chromedp.Flag("no-proxy-server", true),
		chromedp.Flag("lang", "en-US"),
		chromedp.CombinedOutput(r.output),
	)
	if opts.HostResolverRules != "" {
		o = append(o, chromedp.Flag("host-resolver-rules", opts.HostResolverRules))
	}
	if len(opts.TrustedSPKIHashes) > 0 {
		o = append(o, chromedp.Flag("ignore-certificate-errors-spki-list", strings.Join(opts.TrustedSPKIHashes, ",")))
	}
	return o
}

// acceptDialogs accepts every JavaScript dialog (the delete confirmation)
// from a goroutine, since a dialog blocks the click that opened it.
func (r *runner) acceptDialogs() {
	dialogs := chromedp.Events(r.ctx, page.JavascriptDialogOpening)
	r.wg.Go(func() {
		for ev, err := range dialogs {
			if err != nil {
				return
			}
			select {
			case r.dialogs <- ev.Message:
			default:
			}
			_, err := chromedp.Call(r.ctx, page.HandleJavaScriptDialog, page.HandleJavaScriptDialogParams{Accept: true})
			if err != nil && r.ctx.Err() == nil {
				r.mon.problem("accepting the dialog %q: %v", ev.Message, err)
			}
		}
	})
}

// close ends the tab and the browser and waits for them.
func (r *runner) close() {
	r.closeTab()
	r.closeExec()
	r.wg.Wait()
}

// screenshot saves a full-page PNG into the artifacts directory and logs
// its path.
func (r *runner) screenshot(name string) error {
	ctx, cancel := context.WithTimeout(r.ctx, stepTimeout)
	defer cancel()
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		return fmt.Errorf("taking the screenshot %s: %w", name, err)
	}
	path := filepath.Join(r.artifacts, r.name+"-"+name+".png")
	if err := os.WriteFile(path, png, 0o644); err != nil {
		return fmt.Errorf("saving the screenshot: %w", err)
	}
	r.t.Logf("console: screenshot saved to %s", path)
	return nil
}

func artifactsDir(t testing.TB, dir string) (string, error) {
	if dir == "" {
		dir = harness.ArtifactsDir(t)
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return "", fmt.Errorf("console: artifacts directory: %w", err)
	}
	if err := os.MkdirAll(abs, 0o755); err != nil {
		return "", fmt.Errorf("console: artifacts directory: %w", err)
	}
	return abs, nil
}

// lockedBuffer collects the browser's output from its copying goroutine.
type lockedBuffer struct {
	mu  sync.Mutex
	buf []byte
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.buf = append(b.buf, p...)
	return len(p), nil
}

func (b *lockedBuffer) tail(n int) string {
	b.mu.Lock()
	defer b.mu.Unlock()
	s := b.buf
	if len(s) > n {
		s = s[len(s)-n:]
	}
	return string(s)
}

var errNoDialog = errors.New("no confirmation dialog was shown")
