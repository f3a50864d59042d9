package httpapi

import (
	"bufio"
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"kvstore.dev/kvstore/internal/store"
	"kvstore.dev/kvstore/wire"
)

// sseReader reads Server-Sent Events from a watch response.
type sseReader struct {
	sc *bufio.Scanner
}

type sse struct {
	id   string
	data wire.WatchEvent
}

// next returns the next event, skipping comments; ok is false at EOF.
func (r *sseReader) next(t *testing.T) (sse, bool) {
	t.Helper()
	var ev sse
	for r.sc.Scan() {
		line := r.sc.Text()
		switch {
		case line == "":
			if ev.id != "" {
				return ev, true
			}
		case strings.HasPrefix(line, "id: "):
			ev.id = strings.TrimPrefix(line, "id: ")
		case strings.HasPrefix(line, "data: "):
			if err := json.Unmarshal([]byte(strings.TrimPrefix(line, "data: ")), &ev.data); err != nil {
				t.Fatalf("bad data line %q: %v", line, err)
			}
		}
	}
	return ev, false
}

func (ts *testServer) watch(t *testing.T, ctx context.Context, query string, header map[string]string) (*http.Response, *sseReader) {
	t.Helper()
	hr, _ := http.NewRequestWithContext(ctx, "GET", ts.URL+"/api/v1/watch"+query, nil)
	hr.Header.Set("Authorization", "Bearer "+adminToken)
	for k, v := range header {
		hr.Header.Set(k, v)
	}
	resp, err := ts.Client().Do(hr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	return resp, &sseReader{sc: bufio.NewScanner(resp.Body)}
}

func TestWatchStreamsAndResumes(t *testing.T) {
	ts := newTestServer(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	resp, r := ts.watch(t, ctx, "?prefix=app/", nil)
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "text/event-stream" || resp.Header.Get("X-Accel-Buffering") != "no" {
		t.Fatalf("watch: %d %v", resp.StatusCode, resp.Header)
	}
	ts.do(t, req{method: "PUT", path: "/api/v1/kv/other", token: adminToken, body: "ignored"})
	ts.do(t, req{method: "PUT", path: "/api/v1/kv/app/a", token: adminToken, body: "one"})
	ts.do(t, req{method: "DELETE", path: "/api/v1/kv/app/a", token: adminToken})

	want := []sse{
		{"2", wire.WatchEvent{Type: "put", Key: "app/a", Revision: 2, Value: []byte("one"), ContentType: "application/octet-stream"}},
		{"3", wire.WatchEvent{Type: "delete", Key: "app/a", Revision: 3}},
	}
	for i, w := range want {
		got, ok := r.next(t)
		if !ok || got.id != w.id || got.data.Type != w.data.Type || got.data.Key != w.data.Key || string(got.data.Value) != string(w.data.Value) {
			t.Fatalf("event %d (-want +got):\n- %+v\n+ %+v", i, w, got)
		}
	}

	// Resuming with Last-Event-ID replays what came after it.
	_, r2 := ts.watch(t, ctx, "?prefix=app/&since=0", map[string]string{"Last-Event-ID": "2"})
	if got, ok := r2.next(t); !ok || got.id != "3" || got.data.Type != "delete" {
		t.Errorf("resumed event = %+v", got)
	}
	// since replays too.
	_, r3 := ts.watch(t, ctx, "?since=0", nil)
	if got, ok := r3.next(t); !ok || got.id != "1" || got.data.Key != "other" {
		t.Errorf("replayed event = %+v", got)
	}
}

func TestWatchCompactedIs410(t *testing.T) {
	ts := newTestServer(t, store.Options{WatchHistoryEvents: 2})
	for _, k := range []string{"a", "b", "c", "d"} {
		ts.do(t, req{method: "PUT", path: "/api/v1/kv/" + k, token: adminToken, body: "v"})
	}
	// Revisions 3 and 4 are held: resuming after 2 works, after 1 does not.
	resp, r := ts.watch(t, context.Background(), "?since=2", nil)
	if got, ok := r.next(t); resp.StatusCode != 200 || !ok || got.id != "3" {
		t.Fatalf("since=2: %d %+v", resp.StatusCode, got)
	}
	resp.Body.Close()
	resp, _ = ts.watch(t, context.Background(), "?since=1", nil)
	if p := readProblem(t, resp); resp.StatusCode != 410 || p.Code != "compacted" {
		t.Errorf("since=1: %d %+v, want 410 compacted", resp.StatusCode, p)
	}
}

func TestWatchHeartbeatAndShutdown(t *testing.T) {
	ts := newTestServer(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	resp, r := ts.watch(t, ctx, "", nil)
	if resp.StatusCode != 200 {
		t.Fatal(resp.StatusCode)
	}
	heartbeats := 0
	for heartbeats < 2 && r.sc.Scan() {
		if r.sc.Text() == ": heartbeat" {
			heartbeats++
		}
	}
	if heartbeats < 2 {
		t.Fatalf("saw %d heartbeats before EOF", heartbeats)
	}
	ts.api.BeginShutdown()
	for r.sc.Scan() { // the stream must end by itself
	}
	if ctx.Err() != nil {
		t.Fatal("stream did not end on shutdown")
	}
}
