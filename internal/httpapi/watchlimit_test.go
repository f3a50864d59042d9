package httpapi

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"
)

// openWatch starts a watch with token; the stream is closed by cancel or at
// cleanup. It returns the response once its headers arrived.
func (ts *testServer) openWatch(t *testing.T, token string) (*http.Response, context.CancelFunc) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	hr, _ := http.NewRequestWithContext(ctx, "GET", ts.URL+"/api/v1/watch?prefix=", nil)
	hr.Header.Set("Authorization", "Bearer "+token)
	resp, err := ts.Client().Do(hr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	return resp, cancel
}

func wantTooMany(t *testing.T, resp *http.Response, field string) {
	t.Helper()
	if resp.StatusCode != http.StatusTooManyRequests || resp.Header.Get("Retry-After") == "" {
		t.Fatalf("status %d, Retry-After %q; want 429 with Retry-After", resp.StatusCode, resp.Header.Get("Retry-After"))
	}
	if p := readProblem(t, resp); p.Code != "too_many_requests" || !strings.Contains(p.Detail, field) {
		t.Fatalf("problem %+v, want code too_many_requests naming %s", p, field)
	}
}

// TestWatchLimits: the watch past a token's limit, and past the server's,
// is answered 429 too_many_requests with Retry-After; once a watch closes
// its slot is free again.
func TestWatchLimits(t *testing.T) {
	ts := newTestServer(t)
	ts.api.watches.max, ts.api.watches.perToken = 4, 3
	var cancels []context.CancelFunc
	for range 3 {
		resp, cancel := ts.openWatch(t, roToken)
		if resp.StatusCode != 200 {
			t.Fatalf("watch within the limit: %d", resp.StatusCode)
		}
		cancels = append(cancels, cancel)
	}
	resp, _ := ts.openWatch(t, roToken)
	wantTooMany(t, resp, "watch.max_watches_per_token")

	if resp, _ := ts.openWatch(t, adminToken); resp.StatusCode != 200 { // another token; 4 in all
		t.Fatalf("another token's watch: %d", resp.StatusCode)
	}
	resp, _ = ts.openWatch(t, adminToken)
	wantTooMany(t, resp, "watch.max_watches")

	cancels[0]() // the server notices the closed stream and frees its slot
	deadline := time.Now().Add(10 * time.Second)
	for {
		resp, _ := ts.openWatch(t, roToken)
		if resp.StatusCode == 200 {
			break
		}
		if resp.StatusCode != http.StatusTooManyRequests || time.Now().After(deadline) {
			t.Fatalf("after closing a watch: %d (deadline passed: %v)", resp.StatusCode, time.Now().After(deadline))
		}
		resp.Body.Close()
		time.Sleep(10 * time.Millisecond) // poll interval, not a wait for an outcome
	}
}
