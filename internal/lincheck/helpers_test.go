package lincheck

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"kvstore.dev/kvstore/internal/config"
	"kvstore.dev/kvstore/test/harness"
	"kvstore.dev/kvstore/test/harness/inprocess"
)

const testToken = "lincheck-admin-token-0123456789"

// startServer runs the real server in-process on a loopback port and
// returns its base URL; it is stopped when the test ends.
func startServer(t *testing.T) string {
	t.Helper()
	cfg := config.Default()
	cfg.Listen, cfg.DebugListen = "127.0.0.1:0", ""
	cfg.Console.Enabled = false
	cfg.Log.Level = "warn"
	cfg.Auth.Tokens = []config.Token{{Name: "lincheck", Token: testToken, Role: "admin"}}
	return inprocess.Start(t, cfg).URL
}

// startProxy serves a reverse proxy to upstream, its handler wrapped by
// wrap, and returns its base URL.
func startProxy(t *testing.T, upstream string, wrap func(http.Handler) http.Handler) string {
	t.Helper()
	u, err := url.Parse(upstream)
	if err != nil {
		t.Fatal(err)
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConnsPerHost = 32
	rp := httputil.NewSingleHostReverseProxy(u)
	rp.Transport = tr
	srv := httptest.NewServer(wrap(rp))
	t.Cleanup(func() {
		srv.Close()
		tr.CloseIdleConnections()
	})
	return srv.URL
}

func passthrough(next http.Handler) http.Handler { return next }

// deadEndpoint returns the base URL of a loopback port nobody listens on.
func deadEndpoint(t *testing.T) string { return "http://" + harness.FreeAddr(t) }

// staleReads answers every key GET from the first answer it got for that
// key, forever: a replica that stopped applying the log but still serves
// local reads.
func staleReads(next http.Handler) http.Handler {
	type answer struct {
		code   int
		header http.Header
		body   []byte
	}
	var mu sync.Mutex
	cache := map[string]answer{}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet || !strings.HasPrefix(r.URL.Path, "/api/v1/kv/") {
			next.ServeHTTP(w, r)
			return
		}
		mu.Lock()
		a, ok := cache[r.URL.Path]
		mu.Unlock()
		if !ok {
			rec := httptest.NewRecorder()
			next.ServeHTTP(rec, r)
			a = answer{rec.Code, rec.Header().Clone(), rec.Body.Bytes()}
			mu.Lock()
			if first, ok := cache[r.URL.Path]; ok {
				a = first
			} else {
				cache[r.URL.Path] = a
			}
			mu.Unlock()
		}
		for k, v := range a.header {
			w.Header()[k] = v
		}
		w.WriteHeader(a.code)
		_, _ = w.Write(a.body)
	})
}

// flakyWrites fails some writes the way a cluster node may: one in five is
// dropped with 503 no_quorum (never applied), one in five is applied but
// answered 504 outcome_unknown.
func flakyWrites(next http.Handler) http.Handler {
	var n atomic.Int64
	problem := func(w http.ResponseWriter, status int, code string) {
		w.Header().Set("Content-Type", "application/problem+json")
		w.WriteHeader(status)
		fmt.Fprintf(w, `{"status":%d,"code":%q}`, status, code)
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPut && r.Method != http.MethodDelete {
			next.ServeHTTP(w, r)
			return
		}
		switch n.Add(1) % 5 {
		case 1:
			problem(w, http.StatusServiceUnavailable, "no_quorum")
		case 3:
			next.ServeHTTP(httptest.NewRecorder(), r)
			problem(w, http.StatusGatewayTimeout, "outcome_unknown")
		default:
			next.ServeHTTP(w, r)
		}
	})
}

// artifactDir is where a test keeps what lincheck saves.
func artifactDir(t *testing.T) string { return harness.ArtifactsDir(t) }
