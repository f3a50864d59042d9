package httpapi

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"kvstore.dev/kvstore/internal/store"
	"kvstore.dev/kvstore/wire"
)

func TestPutGetDelete(t *testing.T) {
	ts := newTestServer(t)
	resp := ts.do(t, req{method: "PUT", path: "/api/v1/kv/app/x", token: adminToken, body: "hello", header: map[string]string{"Content-Type": "text/plain"}})
	if resp.StatusCode != 201 || resp.Header.Get("ETag") != `"1"` {
		t.Fatalf("create: %d ETag %q", resp.StatusCode, resp.Header.Get("ETag"))
	}
	var m wire.KeyMeta
	json.NewDecoder(resp.Body).Decode(&m)
	if m.Key != "app/x" || m.Revision != 1 || m.CreateRevision != 1 || m.Version != 1 || m.ExpiresAt != nil {
		t.Errorf("create body %+v", m)
	}
	resp = ts.do(t, req{method: "PUT", path: "/api/v1/kv/app/x", token: adminToken, body: "world"})
	if resp.StatusCode != 200 {
		t.Fatalf("update: %d", resp.StatusCode)
	}
	resp = ts.do(t, req{method: "GET", path: "/api/v1/kv/app/x", token: roToken})
	if got := readBody(t, resp); resp.StatusCode != 200 || got != "world" {
		t.Fatalf("get: %d %q", resp.StatusCode, got)
	}
	h := resp.Header
	if h.Get("Content-Type") != "application/octet-stream" || h.Get("ETag") != `"2"` || h.Get("X-KV-Version") != "2" || h.Get("X-KV-Expires-At") != "" {
		t.Errorf("get headers %v", h)
	}
	resp = ts.do(t, req{method: "HEAD", path: "/api/v1/kv/app/x", token: roToken})
	if resp.StatusCode != 200 || resp.Header.Get("ETag") != `"2"` {
		t.Errorf("head: %d %v", resp.StatusCode, resp.Header)
	}
	resp = ts.do(t, req{method: "GET", path: "/api/v1/kv/app/x", token: roToken, header: map[string]string{"If-None-Match": `"2"`}})
	if resp.StatusCode != 304 {
		t.Errorf("conditional get: %d, want 304", resp.StatusCode)
	}
	resp = ts.do(t, req{method: "DELETE", path: "/api/v1/kv/app/x", token: rwToken})
	if resp.StatusCode != 204 {
		t.Fatalf("delete: %d", resp.StatusCode)
	}
	if resp = ts.do(t, req{method: "GET", path: "/api/v1/kv/app/x", token: roToken}); resp.StatusCode != 404 || readProblem(t, resp).Code != "not_found" {
		t.Errorf("get after delete: %d", resp.StatusCode)
	}
	if resp = ts.do(t, req{method: "DELETE", path: "/api/v1/kv/app/x", token: rwToken}); resp.StatusCode != 404 {
		t.Errorf("delete missing: %d, want 404", resp.StatusCode)
	}
}

func TestConditionalWrites(t *testing.T) {
	ts := newTestServer(t)
	tests := []struct {
		name   string
		r      req
		status int
	}{
		{"create-only creates", req{method: "PUT", path: "/api/v1/kv/k", header: map[string]string{"If-None-Match": "*"}, body: "1"}, 201},
		{"create-only on existing", req{method: "PUT", path: "/api/v1/kv/k", header: map[string]string{"If-None-Match": "*"}, body: "2"}, 412},
		{"cas stale", req{method: "PUT", path: "/api/v1/kv/k", header: map[string]string{"If-Match": `"7"`}, body: "2"}, 412},
		{"cas current", req{method: "PUT", path: "/api/v1/kv/k", header: map[string]string{"If-Match": `"1"`}, body: "2"}, 200},
		{"cas same revision again", req{method: "PUT", path: "/api/v1/kv/k", header: map[string]string{"If-Match": `"1"`}, body: "3"}, 412},
		{"if-match any on existing", req{method: "PUT", path: "/api/v1/kv/k", header: map[string]string{"If-Match": "*"}, body: "3"}, 200},
		{"if-match any on missing", req{method: "PUT", path: "/api/v1/kv/nope", header: map[string]string{"If-Match": "*"}, body: "3"}, 412},
		{"delete stale", req{method: "DELETE", path: "/api/v1/kv/k", header: map[string]string{"If-Match": `"2"`}}, 412},
		{"delete current", req{method: "DELETE", path: "/api/v1/kv/k", header: map[string]string{"If-Match": `"3"`}}, 204},
	}
	for _, tc := range tests {
		tc.r.token = adminToken
		if resp := ts.do(t, tc.r); resp.StatusCode != tc.status {
			t.Fatalf("%s: status %d, want %d", tc.name, resp.StatusCode, tc.status)
		}
	}
}

func TestTTL(t *testing.T) {
	ts := newTestServer(t)
	now := time.Date(2026, 5, 1, 0, 0, 0, 0, time.UTC)
	ts.api.clock = func() time.Time { return now }
	resp := ts.do(t, req{method: "PUT", path: "/api/v1/kv/t?ttl=30s", token: adminToken, body: "v"})
	var m wire.KeyMeta
	json.NewDecoder(resp.Body).Decode(&m)
	if m.ExpiresAt == nil || !m.ExpiresAt.Equal(now.Add(30*time.Second)) {
		t.Fatalf("expires_at = %v", m.ExpiresAt)
	}
	resp = ts.do(t, req{method: "GET", path: "/api/v1/kv/t", token: adminToken})
	if resp.StatusCode != 200 || resp.Header.Get("X-KV-Expires-At") != now.Add(30*time.Second).Format(time.RFC3339Nano) {
		t.Fatalf("before expiry: %d %q", resp.StatusCode, resp.Header.Get("X-KV-Expires-At"))
	}
	now = now.Add(30 * time.Second) // expired: gone at once, before any sweep
	if resp = ts.do(t, req{method: "GET", path: "/api/v1/kv/t", token: adminToken}); resp.StatusCode != 404 {
		t.Errorf("after expiry: %d, want 404", resp.StatusCode)
	}
}

// TestBadInput sends each malformed request and checks the documented status
// and problem code, then checks the server still serves a good request.
func TestBadInput(t *testing.T) {
	ts := newTestServer(t)
	ts.do(t, req{method: "PUT", path: "/api/v1/kv/app/exists", token: adminToken, body: "keep"})
	big := strings.Repeat("x", 1025)
	tests := map[string]struct {
		r      req
		status int
		code   string
	}{
		"empty key":                 {req{method: "PUT", path: "/api/v1/kv/", body: "v"}, 400, "invalid_key"},
		"oversized key":             {req{method: "PUT", path: "/api/v1/kv/" + strings.Repeat("k", 65), body: "v"}, 414, "key_too_large"},
		"encoded leading slash":     {req{method: "PUT", path: "/api/v1/kv/%2Fa", body: "v"}, 400, "invalid_key"},
		"encoded dotdot":            {req{method: "PUT", path: "/api/v1/kv/a/%2E%2E/b", body: "v"}, 400, "invalid_key"},
		"control character":         {req{method: "PUT", path: "/api/v1/kv/a%0Ab", body: "v"}, 400, "invalid_key"},
		"NUL":                       {req{method: "PUT", path: "/api/v1/kv/a%00b", body: "v"}, 400, "invalid_key"},
		"invalid UTF-8":             {req{method: "PUT", path: "/api/v1/kv/a%FFb", body: "v"}, 400, "invalid_key"},
		"oversized value":           {req{method: "PUT", path: "/api/v1/kv/a", body: big}, 413, "value_too_large"},
		"oversized chunked value":   {req{method: "PUT", path: "/api/v1/kv/a", body: big, chunked: true}, 413, "value_too_large"},
		"malformed ttl":             {req{method: "PUT", path: "/api/v1/kv/a?ttl=soon", body: "v"}, 400, "invalid_ttl"},
		"negative ttl":              {req{method: "PUT", path: "/api/v1/kv/a?ttl=-5s", body: "v"}, 400, "invalid_ttl"},
		"zero ttl":                  {req{method: "PUT", path: "/api/v1/kv/a?ttl=0s", body: "v"}, 400, "invalid_ttl"},
		"huge ttl":                  {req{method: "PUT", path: "/api/v1/kv/a?ttl=1000000h", body: "v"}, 400, "invalid_ttl"},
		"malformed If-Match":        {req{method: "PUT", path: "/api/v1/kv/a", body: "v", header: map[string]string{"If-Match": "3"}}, 400, "invalid_argument"},
		"weak If-Match":             {req{method: "PUT", path: "/api/v1/kv/a", body: "v", header: map[string]string{"If-Match": `W/"3"`}}, 400, "invalid_argument"},
		"If-None-Match revision":    {req{method: "PUT", path: "/api/v1/kv/a", body: "v", header: map[string]string{"If-None-Match": `"3"`}}, 400, "invalid_argument"},
		"both conditions":           {req{method: "PUT", path: "/api/v1/kv/a", body: "v", header: map[string]string{"If-Match": `"1"`, "If-None-Match": "*"}}, 400, "invalid_argument"},
		"bad content type":          {req{method: "PUT", path: "/api/v1/kv/a", body: "v", header: map[string]string{"Content-Type": "not a type;;"}}, 400, "invalid_argument"},
		"unknown query parameter":   {req{method: "PUT", path: "/api/v1/kv/a?tll=5s", body: "v"}, 400, "invalid_argument"},
		"token in query string":     {req{method: "GET", path: "/api/v1/kv/a?token=" + adminToken}, 400, "invalid_argument"},
		"body on GET":               {req{method: "GET", path: "/api/v1/kv/app/exists", body: "x"}, 400, "invalid_argument"},
		"list bad limit":            {req{method: "GET", path: "/api/v1/kv?limit=abc"}, 400, "invalid_argument"},
		"list zero limit":           {req{method: "GET", path: "/api/v1/kv?limit=0"}, 400, "invalid_argument"},
		"list bad keys_only":        {req{method: "GET", path: "/api/v1/kv?keys_only=maybe"}, 400, "invalid_argument"},
		"list unknown parameter":    {req{method: "GET", path: "/api/v1/kv?perfix=a"}, 400, "invalid_argument"},
		"prefix delete w/o prefix":  {req{method: "DELETE", path: "/api/v1/kv"}, 400, "invalid_argument"},
		"prefix delete empty":       {req{method: "DELETE", path: "/api/v1/kv?prefix="}, 400, "invalid_argument"},
		"watch bad since":           {req{method: "GET", path: "/api/v1/watch?since=x"}, 400, "invalid_argument"},
		"method not allowed":        {req{method: "POST", path: "/api/v1/kv/a", body: "v"}, 405, "method_not_allowed"},
		"unknown endpoint":          {req{method: "GET", path: "/api/v2/kv/a"}, 404, "not_found"},
		"no token":                  {req{method: "GET", path: "/api/v1/kv/a", token: "-"}, 401, "unauthorized"},
		"unknown token":             {req{method: "GET", path: "/api/v1/kv/a", token: "wrong-token-wrong-token"}, 401, "unauthorized"},
		"readonly writes":           {req{method: "PUT", path: "/api/v1/kv/a", token: roToken, body: "v"}, 403, "forbidden"},
		"outside prefix":            {req{method: "GET", path: "/api/v1/kv/other", token: rwToken}, 403, "forbidden"},
		"list outside prefix":       {req{method: "GET", path: "/api/v1/kv?prefix=ap", token: rwToken}, 403, "forbidden"},
		"snapshot needs admin":      {req{method: "GET", path: "/api/v1/snapshot", token: rwToken}, 403, "forbidden"},
		"readonly deletes a prefix": {req{method: "DELETE", path: "/api/v1/kv?prefix=app/", token: roToken}, 403, "forbidden"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			switch tc.r.token {
			case "":
				tc.r.token = adminToken
			case "-":
				tc.r.token = ""
			}
			resp := ts.do(t, tc.r)
			p := readProblem(t, resp)
			if resp.StatusCode != tc.status || p.Code != tc.code || p.Status != tc.status || p.Detail == "" {
				t.Errorf("got %d %+v, want %d %s", resp.StatusCode, p, tc.status, tc.code)
			}
			if tc.status == 401 && !strings.HasPrefix(resp.Header.Get("WWW-Authenticate"), "Bearer") {
				t.Errorf("WWW-Authenticate = %q", resp.Header.Get("WWW-Authenticate"))
			}
			if tc.status == 405 && resp.Header.Get("Allow") != "GET, HEAD, PUT, DELETE" {
				t.Errorf("Allow = %q", resp.Header.Get("Allow"))
			}
		})
	}
	// Nothing above changed the data, and the server still serves.
	resp := ts.do(t, req{method: "GET", path: "/api/v1/kv/app/exists", token: adminToken})
	if got := readBody(t, resp); got != "keep" {
		t.Errorf("after bad input, value = %q", got)
	}
	if st := ts.store.Status(); st.Keys != 1 || st.Revision != 1 {
		t.Errorf("bad input changed the store: %+v", st)
	}
}

// TestUncleanPathsAreRefused sends raw request lines that net/http clients
// would clean, to check the server refuses rather than redirects.
func TestUncleanPathsAreRefused(t *testing.T) {
	ts := newTestServer(t)
	for _, p := range []string{"/api/v1/kv/a/../b", "/api/v1/kv/a//b", "/api/v1/kv/./a", "/api/v1/kv//a"} {
		t.Run(p, func(t *testing.T) {
			conn, err := net.Dial("tcp", ts.Listener.Addr().String())
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			conn.Write([]byte("PUT " + p + " HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + adminToken + "\r\nContent-Length: 1\r\nConnection: close\r\n\r\nv"))
			buf := make([]byte, 4096)
			n, _ := conn.Read(buf)
			if !strings.HasPrefix(string(buf[:n]), "HTTP/1.1 400") || !strings.Contains(string(buf[:n]), "invalid_key") {
				t.Errorf("response:\n%s", buf[:n])
			}
		})
	}
	if st := ts.store.Status(); st.Keys != 0 {
		t.Errorf("an unclean path stored a key: %+v", st)
	}
}

func TestListAndDeletePrefix(t *testing.T) {
	ts := newTestServer(t)
	for _, k := range []string{"app/a", "app/b", "app/c", "other"} {
		ts.do(t, req{method: "PUT", path: "/api/v1/kv/" + k, token: adminToken, body: "v-" + k})
	}
	resp := ts.do(t, req{method: "GET", path: "/api/v1/kv?prefix=app/&limit=2", token: rwToken})
	var page wire.ListResponse
	json.NewDecoder(resp.Body).Decode(&page)
	if len(page.Items) != 2 || page.Items[0].Key != "app/a" || string(page.Items[0].Value) != "v-app/a" || page.Next != "app/b" || page.Revision != 4 {
		t.Fatalf("page 1 = %+v", page)
	}
	resp = ts.do(t, req{method: "GET", path: "/api/v1/kv?prefix=app/&limit=2&keys_only=true&after=" + page.Next, token: rwToken})
	page = wire.ListResponse{}
	json.NewDecoder(resp.Body).Decode(&page)
	if len(page.Items) != 1 || page.Items[0].Key != "app/c" || page.Items[0].Value != nil || page.Next != "" {
		t.Fatalf("page 2 = %+v", page)
	}
	resp = ts.do(t, req{method: "DELETE", path: "/api/v1/kv?prefix=app/", token: rwToken})
	var del struct{ Deleted int }
	json.NewDecoder(resp.Body).Decode(&del)
	if resp.StatusCode != 200 || del.Deleted != 3 {
		t.Fatalf("delete prefix: %d %+v", resp.StatusCode, del)
	}
	if st := ts.store.Status(); st.Keys != 1 {
		t.Errorf("keys after prefix delete = %d", st.Keys)
	}
}

func TestListLimitIsCapped(t *testing.T) {
	ts := newTestServer(t)
	var cmds []store.Command
	for i := range maxListLimit + 5 {
		cmds = append(cmds, store.Command{Op: store.OpPut, Key: fmt.Sprintf("%04d", i)})
	}
	if _, err := ts.node.Propose(context.Background(), cmds...); err != nil {
		t.Fatal(err)
	}
	resp := ts.do(t, req{method: "GET", path: "/api/v1/kv?keys_only=true&limit=5000", token: adminToken})
	var page wire.ListResponse
	json.NewDecoder(resp.Body).Decode(&page)
	if len(page.Items) != maxListLimit || page.Next == "" {
		t.Errorf("got %d items, next %q; want %d and a cursor", len(page.Items), page.Next, maxListLimit)
	}
}

func TestHealthAndStatus(t *testing.T) {
	ts := newTestServer(t)
	for _, p := range []string{"/healthz", "/readyz"} {
		if resp := ts.do(t, req{method: "GET", path: p}); resp.StatusCode != 200 {
			t.Errorf("%s: %d", p, resp.StatusCode)
		}
	}
	resp := ts.do(t, req{method: "GET", path: "/api/v1/status", token: adminToken})
	var st wire.AdminStatus
	json.NewDecoder(resp.Body).Decode(&st)
	if resp.StatusCode != 200 || st.Version != "test" || st.DBSizeBytes == 0 {
		t.Errorf("status %d %+v", resp.StatusCode, st)
	}
	ts.api.BeginShutdown()
	if resp := ts.do(t, req{method: "GET", path: "/readyz"}); resp.StatusCode != 503 || readProblem(t, resp).Code != "unavailable" {
		t.Errorf("readyz while shutting down: %d", resp.StatusCode)
	}
}

func TestRequestID(t *testing.T) {
	ts := newTestServer(t)
	resp := ts.do(t, req{method: "GET", path: "/api/v1/kv/missing", token: adminToken, header: map[string]string{"X-Request-Id": "abc-123"}})
	if resp.Header.Get("X-Request-Id") != "abc-123" || readProblem(t, resp).RequestID != "abc-123" {
		t.Errorf("request id not propagated: %v", resp.Header)
	}
	resp = ts.do(t, req{method: "GET", path: "/healthz", header: map[string]string{"X-Request-Id": "bad id\twith junk"}})
	if id := resp.Header.Get("X-Request-Id"); id == "" || strings.Contains(id, " ") {
		t.Errorf("unsafe request id echoed: %q", id)
	}
}

func TestConsoleMount(t *testing.T) {
	ts := newTestServer(t)
	ts.api.opts.Console = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("console:" + r.URL.Path)) })
	tests := map[string]struct {
		method, path string
		status       int
		body         string
	}{
		"index":         {"GET", "/", 200, "console:/"},
		"asset":         {"GET", "/app.js", 200, "console:/app.js"},
		"api stays api": {"GET", "/api/v2/nope", 404, ""},
		"post is not":   {"POST", "/", 404, ""},
		"health is api": {"GET", "/healthz", 200, "{\"status\":\"ok\"}\n"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			resp := ts.do(t, req{method: tc.method, path: tc.path})
			body := readBody(t, resp)
			if resp.StatusCode != tc.status || (tc.body != "" && body != tc.body) {
				t.Errorf("%s %s = %d %q", tc.method, tc.path, resp.StatusCode, body)
			}
		})
	}
}
