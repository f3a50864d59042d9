package httpapi

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"kvstore.dev/kvstore/internal/auth"
	"kvstore.dev/kvstore/internal/backend"
	"kvstore.dev/kvstore/internal/cluster"
	"kvstore.dev/kvstore/internal/store"
	"kvstore.dev/kvstore/test/harness"
)

const (
	adminToken = "admin-token-0123456789"
	rwToken    = "rw-token-0123456789abc"
	roToken    = "ro-token-0123456789abc"
)

type testServer struct {
	*httptest.Server
	store *store.Store
	node  *cluster.Node // the write path, a one-server cluster: it stamps the clock
	api   *Server
}

// newTestServer serves the API over a real store in t.TempDir.
func newTestServer(t testing.TB, opts ...store.Options) *testServer {
	t.Helper()
	var so store.Options
	if len(opts) > 0 {
		so = opts[0]
	}
	b, n := mustBackend(t, so)
	a := auth.NewAuthenticator([]auth.Principal{
		auth.NewPrincipal("admin", auth.RoleAdmin, nil, auth.Digest(adminToken)),
		auth.NewPrincipal("app", auth.RoleReadWrite, []string{"app/"}, auth.Digest(rwToken)),
		auth.NewPrincipal("reader", auth.RoleReadOnly, nil, auth.Digest(roToken)),
	})
	api := New(b, a, Options{
		MaxKeyBytes: 64, MaxValueBytes: 1024, Heartbeat: 50 * time.Millisecond, Version: "test",
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	srv := httptest.NewServer(api)
	t.Cleanup(func() {
		api.BeginShutdown()
		srv.Close()
	})
	return &testServer{Server: srv, store: b.Store, node: n, api: api}
}

// mustBackend opens a store in t.TempDir and starts the server's write
// path on it, a one-server Raft cluster, once it leads; both are closed
// when t ends (after the cleanups registered later, such as the server's).
func mustBackend(t testing.TB, so store.Options) (backend.Node, *cluster.Node) {
	t.Helper()
	dir := t.TempDir()
	st, err := store.Open(filepath.Join(dir, store.DBFile), so)
	if err != nil {
		t.Fatal(err)
	}
	discard := slog.New(slog.NewTextHandler(io.Discard, nil))
	c, err := cluster.Start(context.Background(), cluster.Config{Single: true, Dir: filepath.Join(dir, store.RaftDir), Logger: discard, RaftLog: io.Discard}, st)
	if err != nil {
		st.Close()
		t.Fatal(err)
	}
	n := backend.Node{Store: st, WritePath: c}
	t.Cleanup(func() { n.Close() })
	harness.Eventually(t, "the single node leads", 10*time.Second, func() error { return c.Ready() })
	return n, c
}

type req struct {
	method, path string
	token        string
	header       map[string]string
	body         string
	chunked      bool // send the body without Content-Length
}

func (ts *testServer) do(t *testing.T, r req) *http.Response {
	t.Helper()
	var body io.Reader
	if r.body != "" {
		body = strings.NewReader(r.body)
		if r.chunked {
			body = io.MultiReader(body) // hides the length
		}
	}
	hr, err := http.NewRequest(r.method, ts.URL+r.path, body)
	if err != nil {
		t.Fatal(err)
	}
	if r.token != "" {
		hr.Header.Set("Authorization", "Bearer "+r.token)
	}
	for k, v := range r.header {
		hr.Header.Set(k, v)
	}
	resp, err := ts.Client().Do(hr)
	if err != nil {
		t.Fatalf("%s %s: %v", r.method, r.path, err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	return resp
}

func readProblem(t *testing.T, resp *http.Response) Problem {
	t.Helper()
	if ct := resp.Header.Get("Content-Type"); ct != "application/problem+json" {
		t.Fatalf("Content-Type = %q, want application/problem+json", ct)
	}
	var p Problem
	if err := json.NewDecoder(resp.Body).Decode(&p); err != nil {
		t.Fatalf("decode problem: %v", err)
	}
	return p
}

func readBody(t *testing.T, resp *http.Response) string {
	t.Helper()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
