package server

import (
	"bufio"
	"context"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"kvstore.dev/kvstore/internal/config"
	"kvstore.dev/kvstore/internal/testlog"
)

type running struct {
	api, debug string
	logs       *testlog.Buffer
	cancel     context.CancelFunc
	done       chan error
	stopOnce   sync.Once
}

// start runs the server on loopback :0 ports with cfg adjusted by edit.
func start(t testing.TB, edit func(*config.Config)) *running {
	t.Helper()
	cfg := config.Default()
	cfg.Listen, cfg.DebugListen, cfg.DataDir = "127.0.0.1:0", "127.0.0.1:0", t.TempDir()
	cfg.Log.Level = "debug"
	if edit != nil {
		edit(&cfg)
	}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	r := &running{logs: &testlog.Buffer{}, cancel: cancel, done: make(chan error, 1)}
	ready := make(chan struct{})
	go func() {
		r.done <- Run(ctx, cfg, NewLogger(cfg.Log, r.logs), func(api, debug net.Addr) {
			r.api, r.debug = api.String(), debug.String()
			close(ready)
		})
	}()
	select {
	case <-ready:
	case err := <-r.done:
		t.Fatalf("Run: %v\n%s", err, r.logs)
	case <-time.After(10 * time.Second):
		t.Fatal("server not ready")
	}
	t.Cleanup(func() { r.stop(t) })
	return r
}

// stop cancels Run and waits for it; later calls do nothing.
func (r *running) stop(t testing.TB) {
	t.Helper()
	r.stopOnce.Do(func() {
		r.cancel()
		select {
		case err := <-r.done:
			if err != nil {
				t.Errorf("Run returned %v", err)
			}
		case <-time.After(20 * time.Second):
			t.Fatal("Run did not return after cancel")
		}
	})
}

func get(t *testing.T, url, token string) (int, string) {
	t.Helper()
	return request(t, "GET", url, token, "")
}

// request sends one request, with token unless it is "", and returns the
// status and the body.
func request(t *testing.T, method, url, token, body string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest(method, url, strings.NewReader(body))
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func TestGeneratedTokenNeverLogged(t *testing.T) {
	var dir string
	r := start(t, func(c *config.Config) { dir = c.DataDir })
	tok, err := os.ReadFile(filepath.Join(dir, "admin.token"))
	if err != nil {
		t.Fatalf("admin token not generated: %v", err)
	}
	token := strings.TrimSpace(string(tok))
	if code, _ := get(t, "http://"+r.api+"/api/v1/status", token); code != 200 {
		t.Errorf("status with the generated token: %d", code)
	}
	if code, _ := get(t, "http://"+r.api+"/api/v1/status", "wrong-token-0123456789"); code != 401 {
		t.Errorf("status with a wrong token: %d", code)
	}
	r.stop(t)
	logs := r.logs.String()
	if strings.Contains(logs, token) {
		t.Error("the admin token appears in the log")
	}
	if !strings.Contains(logs, filepath.Join(dir, "admin.token")) || !strings.Contains(logs, "stopped cleanly") {
		t.Errorf("log lacks the token file's path or the clean stop:\n%s", logs)
	}
}

func TestDebugListener(t *testing.T) {
	r := start(t, func(c *config.Config) {
		c.Auth.Tokens = []config.Token{{Name: "a", Token: "admin-token-0123456789", Role: "admin"}}
	})
	get(t, "http://"+r.api+"/api/v1/kv/x", "admin-token-0123456789")
	code, body := get(t, "http://"+r.debug+"/metrics", "")
	if code != 200 {
		t.Fatalf("/metrics: %d", code)
	}
	for _, name := range []string{
		"kvstore_http_requests_total", "kvstore_http_request_duration_seconds", "kvstore_cluster_propose_duration_seconds",
		"kvstore_cluster_is_leader", "kvstore_store_flush_duration_seconds", "kvstore_store_fsync_duration_seconds", "kvstore_store_flush_keys", "kvstore_store_keys", "kvstore_store_db_size_bytes",
		"kvstore_store_expired_keys_total", "kvstore_watchers", "go_goroutines", "process_resident_memory_bytes",
	} {
		if !strings.Contains(body, name) {
			t.Errorf("/metrics lacks %s", name)
		}
	}
	if code, _ := get(t, "http://"+r.debug+"/debug/pprof/", ""); code != 200 {
		t.Errorf("pprof index: %d", code)
	}
	if code, _ := get(t, "http://"+r.api+"/metrics", ""); code != 404 {
		t.Errorf("/metrics on the API listener: %d, want 404", code)
	}
}

// TestPprofOff is how the operator runs pods: metrics on the pod IP, no
// profiling endpoints.
func TestPprofOff(t *testing.T) {
	r := start(t, func(c *config.Config) { c.Pprof = false })
	if code, _ := get(t, "http://"+r.debug+"/metrics", ""); code != 200 {
		t.Errorf("/metrics: %d", code)
	}
	for _, p := range []string{"/debug/pprof/", "/debug/pprof/profile", "/debug/pprof/cmdline"} {
		if code, _ := get(t, "http://"+r.debug+p, ""); code != 404 {
			t.Errorf("%s with pprof off: %d, want 404", p, code)
		}
	}
}

// TestSlowlorisIsCutOff opens a connection that never finishes its headers:
// the server must close it after read_header_timeout and keep serving.
func TestSlowlorisIsCutOff(t *testing.T) {
	r := start(t, func(c *config.Config) { c.HTTP.ReadHeaderTimeout = config.Duration(300 * time.Millisecond) })
	conn, err := net.Dial("tcp", r.api)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.Write([]byte("GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: "))
	conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	start := time.Now()
	_, err = io.ReadAll(conn) // returns when the server closes the connection
	if err != nil {
		t.Fatalf("connection not closed by the server: %v", err)
	}
	if d := time.Since(start); d > 4*time.Second {
		t.Errorf("closed after %s", d)
	}
	if code, _ := get(t, "http://"+r.api+"/healthz", ""); code != 200 {
		t.Errorf("healthz after slowloris: %d", code)
	}
}

// TestShutdownEndsWatches checks that a stop does not wait for open watch
// streams: they are ended and Run returns.
func TestShutdownEndsWatches(t *testing.T) {
	r := start(t, func(c *config.Config) {
		c.Auth.Tokens = []config.Token{{Name: "a", Token: "admin-token-0123456789", Role: "admin"}}
	})
	req, _ := http.NewRequest("GET", "http://"+r.api+"/api/v1/watch", nil)
	req.Header.Set("Authorization", "Bearer admin-token-0123456789")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	sc.Scan() // stream open
	stopped := time.Now()
	r.stop(t)
	for sc.Scan() {
	}
	if d := time.Since(stopped); d > 5*time.Second {
		t.Errorf("shutdown with an open watch took %s", d)
	}
}

func TestServesEmbeddedConsole(t *testing.T) {
	for name, tc := range map[string]struct {
		enabled bool
		status  int
	}{"enabled": {true, 200}, "disabled": {false, 404}} {
		t.Run(name, func(t *testing.T) {
			r := start(t, func(c *config.Config) { c.Console.Enabled = tc.enabled })
			code, body := get(t, "http://"+r.api+"/", "")
			if code != tc.status || (tc.enabled && !strings.Contains(body, "<html")) {
				t.Errorf("GET / = %d %.60q", code, body)
			}
		})
	}
}

// TestJoiningServerIsAlive starts a cluster node whose only peer never
// answers, so it stays joining: its API must answer /healthz 200 (the
// startup and liveness probes of its pod pass; issue 12 saw joining pods
// killed by a 60 s startup probe under load) and /readyz and the KV API 503
// unavailable, and it must stop when cancelled.
func TestJoiningServerIsAlive(t *testing.T) {
	t.Parallel()
	free := func() string {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer ln.Close()
		return ln.Addr().String()
	}
	cfg := config.Default()
	cfg.Listen, cfg.DataDir = free(), t.TempDir()
	cfg.Cluster = config.Cluster{
		Enabled: true, NodeID: "kv-1", PeerListen: free(), BootstrapNode: "kv-0",
		Join: []string{free()}, PeerToken: strings.Repeat("p", 32),
	}
	cfg.Cluster.PeerAdvertise = cfg.Cluster.PeerListen
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	logs := &testlog.Buffer{}
	done := make(chan error, 1)
	go func() { done <- Run(ctx, cfg, NewLogger(cfg.Log, logs), nil) }()
	defer func() {
		cancel()
		select {
		case <-done:
		case <-time.After(20 * time.Second):
			t.Errorf("Run did not return after cancel\n%s", logs)
		}
	}()

	tests := []struct {
		path       string
		wantStatus int
		wantBody   string
	}{
		{"/healthz", 200, `"status":"starting"`},
		{"/readyz", 503, `"code":"unavailable"`},
		{"/api/v1/kv/a", 503, `"code":"unavailable"`},
	}
	for _, tc := range tests {
		var code int
		var body string
		deadline := time.Now().Add(10 * time.Second)
		for {
			resp, err := http.Get("http://" + cfg.Listen + tc.path)
			if err == nil {
				b, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				code, body = resp.StatusCode, string(b)
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("GET %s: %v\n%s", tc.path, err, logs)
			}
			<-time.After(25 * time.Millisecond) // the listener is not up yet
		}
		if code != tc.wantStatus || !strings.Contains(body, tc.wantBody) {
			t.Errorf("GET %s while joining: %d %s, want %d with %s", tc.path, code, body, tc.wantStatus, tc.wantBody)
		}
	}
}
