package web

import (
	"io/fs"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"
	"testing/fstest"
)

func TestHandler(t *testing.T) {
	index := assets["/"]
	tests := []struct {
		name       string
		method     string
		path       string
		header     map[string]string
		wantStatus int
		wantType   string
		wantBody   string // a substring of the body
		wantHeader map[string]string
	}{
		{name: "index at root", method: "GET", path: "/", wantStatus: 200, wantType: "text/html; charset=utf-8", wantBody: `<script type="module" src="app.js"></script>`},
		{name: "index by name", method: "GET", path: "/index.html", wantStatus: 200, wantType: "text/html; charset=utf-8", wantBody: "<title>kvstore console</title>"},
		{name: "query string ignored", method: "GET", path: "/?prefix=a", wantStatus: 200, wantType: "text/html; charset=utf-8"},
		{name: "entry module", method: "GET", path: "/app.js", wantStatus: 200, wantType: "text/javascript; charset=utf-8", wantBody: "sessionStorage"},
		{name: "api module", method: "GET", path: "/api.js", wantStatus: 200, wantType: "text/javascript; charset=utf-8", wantBody: "encodeURIComponent"},
		{name: "sse module", method: "GET", path: "/sse.js", wantStatus: 200, wantType: "text/javascript; charset=utf-8", wantBody: "Last-Event-ID"},
		{name: "stylesheet", method: "GET", path: "/style.css", wantStatus: 200, wantType: "text/css; charset=utf-8", wantBody: ":root"},
		{name: "favicon", method: "GET", path: "/favicon.svg", wantStatus: 200, wantType: "image/svg+xml", wantBody: "<svg"},
		{name: "head", method: "HEAD", path: "/", wantStatus: 200, wantType: "text/html; charset=utf-8"},
		{name: "revalidation", method: "GET", path: "/", header: map[string]string{"If-None-Match": index.etag}, wantStatus: 304},
		{name: "stale etag", method: "GET", path: "/", header: map[string]string{"If-None-Match": `"old"`}, wantStatus: 200, wantType: "text/html; charset=utf-8"},
		{name: "unknown file", method: "GET", path: "/nope.js", wantStatus: 404, wantType: "application/problem+json", wantBody: `"code":"not_found"`},
		{name: "go source not served", method: "GET", path: "/web.go", wantStatus: 404, wantType: "application/problem+json"},
		{name: "dot segments", method: "GET", path: "/%2e%2e/web.go", wantStatus: 404, wantType: "application/problem+json"},
		{name: "subdirectory", method: "GET", path: "/x/app.js", wantStatus: 404, wantType: "application/problem+json"},
		{name: "not the api", method: "GET", path: "/api/v1/status", wantStatus: 404, wantType: "application/problem+json"},
		{name: "post", method: "POST", path: "/", wantStatus: 405, wantType: "application/problem+json", wantBody: `"code":"method_not_allowed"`, wantHeader: map[string]string{"Allow": "GET, HEAD"}},
		{name: "delete asset", method: "DELETE", path: "/app.js", wantStatus: 405, wantType: "application/problem+json", wantHeader: map[string]string{"Allow": "GET, HEAD"}},
	}
	h := Handler()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req := httptest.NewRequest(tt.method, tt.path, nil)
			for k, v := range tt.header {
				req.Header.Set(k, v)
			}
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			res := rec.Result()
			body := rec.Body.String()

			if res.StatusCode != tt.wantStatus {
				t.Fatalf("status %d, want %d; body %q", res.StatusCode, tt.wantStatus, body)
			}
			if got := res.Header.Get("Content-Type"); tt.wantType != "" && got != tt.wantType {
				t.Errorf("Content-Type %q, want %q", got, tt.wantType)
			}
			if !strings.Contains(body, tt.wantBody) {
				t.Errorf("body does not contain %q:\n%.300s", tt.wantBody, body)
			}
			if tt.method == "HEAD" && body != "" {
				t.Errorf("HEAD has a body of %d bytes", len(body))
			}
			want := map[string]string{
				"Content-Security-Policy": ContentSecurityPolicy,
				"X-Content-Type-Options":  "nosniff",
				"Referrer-Policy":         "no-referrer",
				"Cache-Control":           "no-cache",
			}
			if tt.wantStatus == 200 {
				want["ETag"] = assets[strings.SplitN(tt.path, "?", 2)[0]].etag
			}
			for k, v := range tt.wantHeader {
				want[k] = v
			}
			for k, v := range want {
				if got := res.Header.Get(k); got != v {
					t.Errorf("%s: %q, want %q", k, got, v)
				}
			}
		})
	}
}

func TestContentSecurityPolicy(t *testing.T) {
	want := "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; " +
		"frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
	if ContentSecurityPolicy != want {
		t.Errorf("ContentSecurityPolicy = %q, want %q", ContentSecurityPolicy, want)
	}
}

func TestLoadAssets(t *testing.T) {
	tests := []struct {
		name    string
		fsys    fstest.MapFS
		wantErr string
		want    []string
	}{
		{
			name: "ok",
			fsys: fstest.MapFS{"index.html": {Data: []byte("<p>")}, "a.js": {Data: []byte("1")}, "sub/b.js": {Data: []byte("2")}},
			want: []string{"/", "/index.html", "/a.js"},
		},
		{name: "no index", fsys: fstest.MapFS{"a.js": {Data: []byte("1")}}, wantErr: "index.html is missing"},
		{name: "unknown extension", fsys: fstest.MapFS{"index.html": {}, "notes.txt": {}}, wantErr: "notes.txt: no content type"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := loadAssets(tt.fsys)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want one containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != len(tt.want) {
				t.Errorf("got %d assets, want %d", len(got), len(tt.want))
			}
			for _, p := range tt.want {
				if got[p] == nil {
					t.Errorf("no asset at %s", p)
				}
			}
		})
	}
}

// TestStaticRules checks the console's sources for what the CSP would block
// or what the console must never do.
func TestStaticRules(t *testing.T) {
	match := func(expr string) func(string) bool { return regexp.MustCompile(expr).MatchString }
	scriptTag := regexp.MustCompile(`<script\b[^>]*>`)
	url := regexp.MustCompile(`https?://[^\s"')]*`)
	tests := []struct {
		glob   string
		bad    func(line string) bool
		reason string
	}{
		{"*.html", func(l string) bool {
			for _, tag := range scriptTag.FindAllString(l, -1) {
				if !strings.Contains(tag, " src=") {
					return true
				}
			}
			return false
		}, "inline scripts are blocked by the CSP: every script needs a src"},
		{"*.html", match(`<style`), "inline styles are blocked by the CSP"},
		{"*.html", match(`\sstyle\s*=`), "style attributes are blocked by the CSP"},
		{"*.html", match(`\son[a-z]+\s*=`), "inline event handlers are blocked by the CSP"},
		{"*", func(l string) bool {
			for _, u := range url.FindAllString(l, -1) {
				if u != "http://www.w3.org/2000/svg" { // an XML namespace, never fetched
					return true
				}
			}
			return false
		}, "the console works offline: no external URLs"},
		{"*.js", match(`\.innerHTML|\.outerHTML|insertAdjacentHTML|document\.write`), "build the DOM with textContent (no XSS)"},
		{"*.js", match(`\beval\(|new Function\(`), "eval is blocked by the CSP"},
		{"*.js", match(`localStorage|document\.cookie`), "the token lives in sessionStorage only"},
		{"*.js", match(`new EventSource`), "EventSource cannot send the token in a header"},
		{"*.js", match(`setAttribute\(\s*['"]style`), "style attributes are blocked by the CSP"},
		{"*.css", match(`@import|url\(`), "the stylesheet loads nothing else"},
	}
	for _, tt := range tests {
		t.Run(tt.glob+" "+tt.reason, func(t *testing.T) {
			names, err := fs.Glob(files, tt.glob)
			if err != nil || len(names) == 0 {
				t.Fatalf("no embedded files match %s (%v)", tt.glob, err)
			}
			for _, name := range names {
				b, err := fs.ReadFile(files, name)
				if err != nil {
					t.Fatal(err)
				}
				for i, line := range strings.Split(string(b), "\n") {
					if tt.bad(line) {
						t.Errorf("%s:%d: %s:\n\t%s", name, i+1, tt.reason, strings.TrimSpace(line))
					}
				}
			}
		})
	}
}

// TestReferencesResolve checks that every file index.html or a module
// refers to is embedded, so a typo cannot ship a broken console.
func TestReferencesResolve(t *testing.T) {
	refs := regexp.MustCompile(`(?:src|href)="([^"#?:]+)"|from '\./([^']+)'|import '\./([^']+)'`)
	names, err := fs.Glob(files, "*")
	if err != nil {
		t.Fatal(err)
	}
	checked := 0
	for _, name := range names {
		b, err := fs.ReadFile(files, name)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range refs.FindAllStringSubmatch(string(b), -1) {
			ref := m[1] + m[2] + m[3]
			checked++
			if assets["/"+ref] == nil {
				t.Errorf("%s refers to %q, which is not embedded", name, ref)
			}
		}
	}
	if checked < 5 {
		t.Errorf("only %d references found; the pattern is broken", checked)
	}
}
