package httpapi

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// FuzzHandler sends arbitrary methods, paths, headers and bodies to the API
// handler. Whatever the input, the server must not panic or fail internally
// (5xx), and every error must be a problem+json body.
func FuzzHandler(f *testing.F) {
	seeds := []struct{ method, target, ifMatch, ctype, body string }{
		{"PUT", "/api/v1/kv/a?ttl=1s", "", "text/plain", "v"},
		{"PUT", "/api/v1/kv/a/%2E%2E/b", `"1"`, "", "v"},
		{"GET", "/api/v1/kv?prefix=a&limit=2&after=a&keys_only=1", "", "", ""},
		{"DELETE", "/api/v1/kv?prefix=%FF", "*", "", ""},
		{"GET", "/api/v1/watch?since=18446744073709551615", "", "", ""},
		{"PATCH", "/api/v1/kv/" + strings.Repeat("x", 70), "W/\"1\"", "a/b; c=d", "xx"},
		{"PUT", "/api/v1/kv/%00", "", ";;", strings.Repeat("b", 2000)},
	}
	for _, s := range seeds {
		f.Add(s.method, s.target, s.ifMatch, s.ctype, []byte(s.body))
	}
	ts := newTestServer(f)
	f.Fuzz(func(t *testing.T, method, target, ifMatch, ctype string, body []byte) {
		r, err := http.NewRequest(method, "http://kv"+target, bytes.NewReader(body))
		if err != nil || r.URL.Path == "" || r.URL.Path[0] != '/' {
			return
		}
		r.RequestURI = target
		r.Header.Set("Authorization", "Bearer "+adminToken)
		if ifMatch != "" {
			r.Header.Set("If-Match", ifMatch)
		}
		if ctype != "" {
			r.Header.Set("Content-Type", ctype)
		}
		if strings.HasPrefix(r.URL.Path, "/api/v1/watch") || strings.HasPrefix(r.URL.Path, "/api/v1/snapshot") {
			return // streams; covered by their own tests
		}
		w := httptest.NewRecorder()
		ts.api.ServeHTTP(w, r)
		if w.Code >= 500 {
			t.Fatalf("%s %q: %d %s", method, target, w.Code, w.Body)
		}
		if w.Code >= 400 && w.Header().Get("Content-Type") != "application/problem+json" {
			t.Fatalf("%s %q: %d with Content-Type %q", method, target, w.Code, w.Header().Get("Content-Type"))
		}
	})
}
