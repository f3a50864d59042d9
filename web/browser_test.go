package web_test

import (
	"bufio"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"kvstore.dev/kvstore/internal/consoletest"
	"kvstore.dev/kvstore/web"
)

const (
	// browserFlowTimeout bounds one whole browser flow, browser start included.
	browserFlowTimeout = 60 * time.Second
	// serverStartTimeout bounds the start of the kvstore binary.
	serverStartTimeout = 15 * time.Second
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
	chromium := consoletest.RequireChromium(t)
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
			opts := consoletest.Options{
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
				opts.TrustedSPKIHashes = []string{consoletest.SPKIHash(ts.Certificate())}
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
			if err := consoletest.Run(ctx, t, base, tt.token, opts); err != nil {
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

// startServer builds cmd/server, runs it on a free loopback port with a
// fresh data directory and its tokens, and waits for /readyz. The server
// gets SIGTERM (then SIGKILL) when the test ends.
func startServer(t *testing.T) (*url.URL, serverTokens) {
	t.Helper()
	dir := t.TempDir()
	bin := filepath.Join(dir, "kvstore")
	build := exec.Command("go", "build", "-o", bin, "kvstore.dev/kvstore/cmd/server")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build cmd/server: %v\n%s", err, out)
	}
	tokens := serverTokens{admin: "console-test-" + rand.Text(), readwrite: "console-rw-" + rand.Text()}
	config := filepath.Join(dir, "config.yaml")
	yaml := fmt.Sprintf("auth: {tokens: [{name: rw, token: %q, role: readwrite}]}\n", tokens.readwrite)
	if err := os.WriteFile(config, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "--config", config, "--listen", "127.0.0.1:0", "--debug-listen", "off",
		"--data-dir", filepath.Join(dir, "data"), "--log-format", "text")
	cmd.Env = append(os.Environ(), "KVSTORE_ADMIN_TOKEN="+tokens.admin)
	logs := &serverLog{addr: make(chan string, 1)}
	cmd.Stdout = logs
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatalf("server stderr: %v", err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting the server: %v", err)
	}
	copied := make(chan struct{})
	go func() {
		defer close(copied)
		logs.scan(stderr)
	}()
	t.Cleanup(func() {
		stopServer(t, cmd)
		<-copied
		if t.Failed() {
			t.Logf("server log (tail):\n%s", logs.tail())
		}
	})

	var addr string
	select {
	case addr = <-logs.addr:
	case <-time.After(serverStartTimeout):
		t.Fatalf("the server did not log its address within %v; log:\n%s", serverStartTimeout, logs.tail())
	}
	base := &url.URL{Scheme: "http", Host: addr}
	if err := waitReady(base.String()+"/readyz", serverStartTimeout); err != nil {
		t.Fatalf("%v; log:\n%s", err, logs.tail())
	}
	return base, tokens
}

func stopServer(t *testing.T, cmd *exec.Cmd) {
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	_ = cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("the server exited badly after SIGTERM: %v", err)
		}
	case <-time.After(10 * time.Second):
		_ = cmd.Process.Kill()
		<-done
		t.Errorf("the server did not stop within 10s of SIGTERM; killed it")
	}
}

// waitReady polls url until it answers 200 or the timeout passes.
func waitReady(u string, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	client := &http.Client{Timeout: time.Second}
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		res, err := client.Get(u)
		if err == nil {
			_, _ = io.Copy(io.Discard, res.Body)
			_ = res.Body.Close()
			if res.StatusCode == http.StatusOK {
				return nil
			}
			err = errors.New(res.Status)
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("GET %s not ready after %v: %w", u, timeout, err)
		}
		<-tick.C
	}
}

// serverLog keeps the server's log and reports the API address it logs
// ("msg=listening listener=api addr=127.0.0.1:PORT").
type serverLog struct {
	addr chan string
	mu   sync.Mutex
	buf  []string
}

var listeningRE = regexp.MustCompile(`msg=listening listener=api addr=(\S+)`)

func (l *serverLog) scan(r io.Reader) {
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		line := sc.Text()
		l.add(line)
		if m := listeningRE.FindStringSubmatch(line); m != nil {
			select {
			case l.addr <- m[1]:
			default:
			}
		}
	}
}

func (l *serverLog) Write(p []byte) (int, error) {
	l.add(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

func (l *serverLog) add(line string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.buf = append(l.buf, line)
	if len(l.buf) > 200 {
		l.buf = l.buf[len(l.buf)-200:]
	}
}

func (l *serverLog) tail() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return strings.Join(l.buf, "\n")
}
