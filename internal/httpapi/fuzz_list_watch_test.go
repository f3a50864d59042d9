package httpapi

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"kvstore.dev/kvstore/wire"
)

// FuzzList sends arbitrary list parameters over keys of several sizes. The
// answer is a 2xx page of the documented shape or a 4xx problem, never a
// 5xx; a page holds at most limit items and stays within the byte cap.
func FuzzList(f *testing.F) {
	for _, s := range []struct{ prefix, after, limit, keysOnly string }{
		{"", "", "", ""}, {"k/", "k/1", "2", "true"}, {"k/", "", "0", "x"}, {"%FF", "../a", "-1", "1"}, {"k", "k/9", "1000000", "false"},
	} {
		f.Add(s.prefix, s.after, s.limit, s.keysOnly)
	}
	ts := newTestServer(f)
	ts.api.opts.MaxListPageBytes = 2048
	for i, size := range []int{0, 10, 900, 1000, 1024} {
		r := httptest.NewRequest("PUT", "/api/v1/kv/k/"+string(rune('0'+i)), strings.NewReader(strings.Repeat("v", size)))
		r.Header.Set("Authorization", "Bearer "+adminToken)
		ts.api.ServeHTTP(httptest.NewRecorder(), r)
	}
	f.Fuzz(func(t *testing.T, prefix, after, limit, keysOnly string) {
		q := url.Values{"prefix": {prefix}, "after": {after}}
		if limit != "" {
			q.Set("limit", limit)
		}
		if keysOnly != "" {
			q.Set("keys_only", keysOnly)
		}
		r := httptest.NewRequest("GET", "/api/v1/kv?"+q.Encode(), nil)
		r.Header.Set("Authorization", "Bearer "+adminToken)
		w := httptest.NewRecorder()
		ts.api.ServeHTTP(w, r)
		switch {
		case w.Code >= 500:
			t.Fatalf("%q: %d %s", q.Encode(), w.Code, w.Body)
		case w.Code >= 400:
			if w.Header().Get("Content-Type") != "application/problem+json" {
				t.Fatalf("%q: %d with Content-Type %q", q.Encode(), w.Code, w.Header().Get("Content-Type"))
			}
			return
		}
		var page wire.ListResponse
		if err := json.Unmarshal(w.Body.Bytes(), &page); err != nil {
			t.Fatalf("%q: body is not a page: %v", q.Encode(), err)
		}
		var bytes int
		for _, it := range page.Items {
			bytes += len(it.Key) + len(it.Value) + len(it.ContentType)
		}
		if len(page.Items) > 1 && bytes > 2048 {
			t.Fatalf("%q: page of %d bytes over the 2048 cap", q.Encode(), bytes)
		}
	})
}

// FuzzWatch sends arbitrary watch parameters with a request that is already
// cancelled, so every stream ends: the answer is 200 or a 4xx problem, never
// a 5xx, and every watch gives its slot back.
func FuzzWatch(f *testing.F) {
	for _, s := range []struct{ prefix, since, lastID string }{
		{"", "", ""}, {"app/", "0", ""}, {"", "18446744073709551615", ""}, {"%00", "-1", "x"}, {"a", "", "3"},
	} {
		f.Add(s.prefix, s.since, s.lastID)
	}
	ts := newTestServer(f)
	f.Fuzz(func(t *testing.T, prefix, since, lastID string) {
		q := url.Values{"prefix": {prefix}}
		if since != "" {
			q.Set("since", since)
		}
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		r := httptest.NewRequestWithContext(ctx, "GET", "/api/v1/watch?"+q.Encode(), nil)
		r.Header.Set("Authorization", "Bearer "+roToken)
		if lastID != "" && !strings.ContainsAny(lastID, "\r\n\x00") {
			r.Header.Set("Last-Event-ID", lastID)
		}
		w := httptest.NewRecorder()
		ts.api.ServeHTTP(w, r)
		if w.Code >= 500 || (w.Code >= 400 && w.Header().Get("Content-Type") != "application/problem+json") || (w.Code < 400 && w.Code != http.StatusOK) {
			t.Fatalf("%q: %d %q %s", q.Encode(), w.Code, w.Header().Get("Content-Type"), w.Body)
		}
		if n := ts.api.watches.open(); n != 0 {
			t.Fatalf("%d watch slots still held after the streams ended", n)
		}
	})
}
