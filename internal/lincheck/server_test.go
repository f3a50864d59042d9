package lincheck

import (
	"context"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/anishathalye/porcupine"
)

// record runs a recording and fails the test on an error.
func record(t *testing.T, cfg Config) History {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	start := time.Now()
	h, err := Run(ctx, cfg)
	if err != nil {
		t.Fatalf("Run: %v (after %d operations)", err, len(h))
	}
	t.Logf("recorded %s in %s", h.Stats(), time.Since(start).Round(time.Millisecond))
	return h
}

// TestRealServerIsLinearizable records 8 clients on 5 keys against the real
// server, directly and through a transparent proxy standing in for a second
// node, and requires a linearizable history.
func TestRealServerIsLinearizable(t *testing.T) {
	base := startServer(t)
	h := record(t, Config{
		Endpoints:    []string{base, startProxy(t, base, passthrough)},
		Token:        testToken,
		Clients:      8,
		Keys:         5,
		OpsPerClient: 300,
		Seed:         1,
	})
	if len(h) != 8*300 {
		t.Errorf("recorded %d operations, want %d", len(h), 8*300)
	}
	s := h.Stats()
	if s.ByResult[Unknown] != 0 {
		t.Errorf("%d operations with an unknown outcome against a healthy server", s.ByResult[Unknown])
	}
	for _, k := range []Kind{Get, Put, Create, CAS, Delete} {
		if s.ByKind[k] == 0 {
			t.Errorf("no %s operations", k)
		}
	}
	for _, r := range []Result{OK, NotFound, PreconditionFailed} {
		if s.ByResult[r] == 0 {
			t.Errorf("no operation answered %s: the keys do not contend", r)
		}
	}
	endpoints := map[string]bool{}
	for _, op := range h {
		endpoints[op.Endpoint] = true
	}
	if len(endpoints) != 2 {
		t.Errorf("operations went to %d endpoints, want 2", len(endpoints))
	}
	Verify(t, h, 60*time.Second)
}

// TestUnknownOutcomesStayLinearizable puts a proxy in front of the server
// that drops some writes with 503 and applies others but answers 504, and
// adds an endpoint that refuses connections (a node that is down): the
// recorder must record the 5xx writes with an unknown outcome and the
// refused requests as failed, and the check must still pass, whichever
// way each unknown write went.
func TestUnknownOutcomesStayLinearizable(t *testing.T) {
	base := startServer(t)
	h := record(t, Config{
		Endpoints:    []string{base, startProxy(t, base, flakyWrites), deadEndpoint(t)},
		Token:        testToken,
		Clients:      4,
		Keys:         5,
		OpsPerClient: 150,
		Seed:         2,
	})
	s := h.Stats()
	if s.ByResult[Unknown] == 0 || s.ByResult[Failed] == 0 {
		t.Fatalf("want operations of unknown outcome and failed ones: %s", s)
	}
	for _, op := range h {
		switch op.Output.Result {
		case Unknown:
			if op.Input.Kind == Get || op.Return != Never || op.Returned == 0 ||
				!strings.HasPrefix(op.Output.Error, "503 no_quorum") && !strings.HasPrefix(op.Output.Error, "504 outcome_unknown") {
				t.Errorf("unknown outcome recorded as %+v", op)
			}
		case Failed:
			if op.Return == Never || !strings.Contains(op.Output.Error, "refused") {
				t.Errorf("refused request recorded as %+v", op)
			}
		}
	}
	Verify(t, h, 60*time.Second)
}

// TestStaleReplicaIsCaught proves the harness can fail: one endpoint serves
// reads from a cache that never changes, as a replica that stopped applying
// the log would. The check must find a violation and save the artifacts.
func TestStaleReplicaIsCaught(t *testing.T) {
	base := startServer(t)
	h := record(t, Config{
		Endpoints:    []string{base, startProxy(t, base, staleReads)},
		Token:        testToken,
		Clients:      4,
		Keys:         5,
		OpsPerClient: 100,
		Seed:         3,
	})
	res, path, err := CheckAndSave(h, 60*time.Second, artifactDir(t), t.Name())
	if err != nil {
		t.Fatal(err)
	}
	if res != porcupine.Illegal {
		t.Fatalf("Check = %s, want Illegal: the stale endpoint went unnoticed", res)
	}
	t.Logf("violation found as expected; artifacts in %s", path)
	for _, name := range []string{"history.json", "visualization.html"} {
		fi, err := os.Stat(filepath.Join(path, name))
		if err != nil || fi.Size() == 0 {
			t.Errorf("artifact %s: %v", name, err)
		}
	}
	loaded, err := LoadHistory(filepath.Join(path, "history.json"))
	if err != nil || len(loaded) != len(h) {
		t.Errorf("LoadHistory: %d operations, %v; want %d", len(loaded), err, len(h))
	}
}

// TestRunRefusesMisconfiguration checks that a wrong token or base URL is
// refused before anything is recorded, and an unknown consistency at once.
func TestRunRefusesMisconfiguration(t *testing.T) {
	base := startServer(t)
	for _, tc := range []struct {
		name string
		cfg  Config
		want string
	}{
		{"wrong token", Config{Endpoints: []string{base}, Token: "not-the-token-0123456789"}, "401"},
		{"base URL with the API path", Config{Endpoints: []string{base + "/api/v1"}, Token: testToken}, "404"},
		{"not a URL", Config{Endpoints: []string{"127.0.0.1:1"}, Token: testToken}, "not an http(s) base URL"},
		{"no endpoints", Config{Token: testToken}, "no endpoints"},
		{"unknown consistency", Config{Endpoints: []string{base}, Token: testToken, Consistency: "eventual"}, "unknown consistency"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h, err := Run(context.Background(), tc.cfg)
			if err == nil || !strings.Contains(err.Error(), tc.want) || len(h) != 0 {
				t.Errorf("Run = %d ops, %v; want an error containing %q", len(h), err, tc.want)
			}
		})
	}
}

// TestConsistencyParameter checks that ?consistency= goes on reads only.
// The proxy in front of the server counts it and takes it off, so the test
// does not depend on whether the server knows the parameter yet.
func TestConsistencyParameter(t *testing.T) {
	base := startServer(t)
	var reads, misplaced atomic.Int64
	strip := func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			q := r.URL.Query()
			if strings.HasPrefix(r.URL.Path, "/api/v1/kv/") && q.Has("consistency") {
				if r.Method == http.MethodGet && q.Get("consistency") == "leader" {
					reads.Add(1)
				} else {
					misplaced.Add(1)
				}
				q.Del("consistency")
				r.URL.RawQuery = q.Encode()
			}
			next.ServeHTTP(w, r)
		})
	}
	h := record(t, Config{Endpoints: []string{startProxy(t, base, strip)}, Token: testToken, Clients: 2, OpsPerClient: 50, Seed: 4, Consistency: "leader"})
	if got, want := reads.Load(), int64(h.Stats().ByKind[Get]); got != want || want == 0 {
		t.Errorf("%d reads carried consistency=leader, want all %d", got, want)
	}
	if n := misplaced.Load(); n != 0 {
		t.Errorf("%d requests other than reads carried consistency", n)
	}
	Verify(t, h, 60*time.Second)
}

// TestRealServerWithTTLs: half of the writes carry a TTL short enough
// that keys expire during the run; the history must be linearizable and
// keys must have been seen expiring.
func TestRealServerWithTTLs(t *testing.T) {
	base := startServer(t)
	h := record(t, Config{
		Endpoints: []string{base}, Token: testToken, Clients: 4, Keys: 3,
		OpsPerClient: 200, Seed: 3, TTL: 30 * time.Millisecond,
	})
	ttls, expiries := 0, 0
	for _, op := range h {
		if op.Input.TTL != 0 {
			ttls++
			if op.Output.Result == OK && op.Output.ExpiresAt == 0 {
				t.Errorf("a write with a ttl answered without expires_at: %+v", op)
			}
		}
		if op.Input.Kind == Get && op.Output.Result == OK && op.Output.ExpiresAt != 0 {
			expiries++
		}
	}
	if ttls == 0 || expiries == 0 {
		t.Errorf("%d writes with a ttl, %d reads of a key with one: the run does not exercise TTLs", ttls, expiries)
	}
	Verify(t, h, 60*time.Second)
}
