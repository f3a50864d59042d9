package console_test

import (
	"context"
	"crypto/rand"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"kvstore.dev/kvstore/test/e2e/console"
	"kvstore.dev/kvstore/test/harness"
	"kvstore.dev/kvstore/web"
)

func TestMain(m *testing.M) { harness.Main(m) }

const (
	// browserFlowTimeout bounds one whole browser flow, browser start included.
	browserFlowTimeout = 60 * time.Second
)

// TestConsoleInBrowser runs the real server binary, serves the console in
// front of it like nginx does (same origin: /api/ and /healthz proxied,
// everything else from web.Handler), and drives the console in chromium
// over plain HTTP and over HTTPS with a pinned certificate (the way the
// compose e2e test reaches nginx).
func TestConsoleInBrowser(t *testing.T) {
	if testing.Short() {
		t.Skip("skipping the browser test in -short mode")
	}
	chromium := console.RequireChromium(t)
	upstream, tokens := startServer(t)

	tests := []struct {
		name  string
		tls   bool
		token string
	}{
		{name: "http", token: tokens.admin},
		{name: "https-pinned", tls: true, token: tokens.admin},
		// A non-admin token is not told the key count (GET /api/v1/status);
		// the console must still work. (No prefixes: the console lists every
		// key on sign-in, which a prefix-limited token may not.)
		{name: "http-readwrite", token: tokens.readwrite},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			proxy := newConsoleProxy(upstream)
			ts := httptest.NewUnstartedServer(proxy)
			opts := console.Options{
				ChromiumPath: chromium,
				Name:         tt.name,
				CutWatch:     proxy.cutWatches,
				CompactWatch: proxy.compactWatches,
			}
			var base string
			if tt.tls {
				ts.StartTLS()
				// Browse https://example.com (a name the test certificate
				// holds) mapped to the test server, trusting exactly its key.
				addr := ts.Listener.Addr().String()
				base = "https://example.com"
				opts.HostResolverRules = "MAP example.com " + addr
				opts.TrustedSPKIHashes = []string{console.SPKIHash(ts.Certificate())}
				tr := ts.Client().Transport.(*http.Transport).Clone()
				tr.DialContext = func(ctx context.Context, network, _ string) (net.Conn, error) {
					return (&net.Dialer{}).DialContext(ctx, network, addr)
				}
				opts.HTTPClient = &http.Client{Transport: tr, Timeout: 10 * time.Second}
			} else {
				ts.Start()
				base = ts.URL
			}
			t.Cleanup(ts.Close)

			ctx, cancel := context.WithTimeout(t.Context(), browserFlowTimeout)
			defer cancel()
			start := time.Now()
			if err := console.Run(ctx, t, base, tt.token, opts); err != nil {
				t.Fatal(err)
			}
			t.Logf("the console flow took %v", time.Since(start).Round(time.Millisecond))
			if ids := proxy.resumedFrom(); len(ids) == 0 {
				t.Errorf("the console never reconnected its watch with a Last-Event-ID header")
			} else {
				t.Logf("the console resumed its watch with Last-Event-ID %v", ids)
			}
		})
	}
}

// consoleProxy serves the console from web.Handler and proxies /api/ and
// /healthz to the server, flushing at once so that watch streams flow, like
// nginx does. It can cut the open watch streams and remembers the
// Last-Event-ID headers of the watches, to test the console's resumption.
type consoleProxy struct {
	api     *httputil.ReverseProxy
	console http.Handler

	mu          sync.Mutex
	cancels     map[*http.Request]context.CancelFunc
	resumes     []string
	compactNext bool // answer the next resumption with 410 compacted
}

func newConsoleProxy(upstream *url.URL) *consoleProxy {
	api := httputil.NewSingleHostReverseProxy(upstream)
	api.FlushInterval = -1
	return &consoleProxy{api: api, console: web.Handler(), cancels: map[*http.Request]context.CancelFunc{}}
}

func (p *consoleProxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	switch {
	case r.URL.Path == "/api/v1/watch":
		ctx, cancel := context.WithCancel(r.Context())
		defer cancel()
		r = r.WithContext(ctx)
		p.mu.Lock()
		p.cancels[r] = cancel
		id := r.Header.Get("Last-Event-ID")
		compact := p.compactNext && id != ""
		if compact {
			p.compactNext = false
		} else if id != "" {
			p.resumes = append(p.resumes, id)
		}
		p.mu.Unlock()
		if compact {
			w.Header().Set("Content-Type", "application/problem+json")
			w.WriteHeader(http.StatusGone)
			fmt.Fprintf(w, `{"title":"Revision compacted","status":410,"detail":"revision %s is no longer held","code":"compacted"}`, id)
			return
		}
		defer func() {
			p.mu.Lock()
			delete(p.cancels, r)
			p.mu.Unlock()
		}()
		p.api.ServeHTTP(w, r)
	case strings.HasPrefix(r.URL.Path, "/api/") || r.URL.Path == "/healthz":
		p.api.ServeHTTP(w, r)
	default:
		p.console.ServeHTTP(w, r)
	}
}

// cutWatches ends every watch stream in flight.
func (p *consoleProxy) cutWatches() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, cancel := range p.cancels {
		cancel()
	}
}

// compactWatches cuts the watch streams and answers the next resumption
// with 410 compacted, as a server does whose history no longer holds it.
func (p *consoleProxy) compactWatches() {
	p.mu.Lock()
	p.compactNext = true
	p.mu.Unlock()
	p.cutWatches()
}

// resumedFrom is the Last-Event-ID of each watch request that had one.
func (p *consoleProxy) resumedFrom() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]string(nil), p.resumes...)
}

// serverTokens are the tokens startServer configures.
type serverTokens struct{ admin, readwrite string }

// startServer runs the server binary with a fresh data directory and its
// tokens, and waits for /readyz. When the test ends the server gets
// SIGTERM and must exit 0 within 10s.
func startServer(t *testing.T) (*url.URL, serverTokens) {
	t.Helper()
	dir := t.TempDir()
	tokens := serverTokens{admin: "console-test-" + rand.Text(), readwrite: "console-rw-" + rand.Text()}
	config := filepath.Join(dir, "config.yaml")
	yaml := fmt.Sprintf("auth: {tokens: [{name: rw, token: %q, role: readwrite}]}\n", tokens.readwrite)
	if err := os.WriteFile(config, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	p := harness.StartProcess(t, harness.ProcessOptions{Name: "server", Token: tokens.admin,
		Args: []string{"--config", config, "--debug-listen", "off"}})
	t.Cleanup(func() { p.Terminate(t) })
	return &url.URL{Scheme: "http", Host: p.Addr}, tokens
}
