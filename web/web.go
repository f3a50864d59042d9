// Package web is kvstore's web console: a static page (HTML, CSS and
// JavaScript modules, no build step, no external resources) that talks to
// the HTTP API of docs/api.md from the browser. The files, in web/static,
// are embedded into the binary and served by Handler; nginx serves the same
// directory in the compose setup and must send the same headers.
//
// The page keeps the API token in sessionStorage only, sends it as a bearer
// token, and reads the watch stream with fetch (not EventSource) so that the
// token never appears in a URL.
package web

import (
	"bytes"
	"crypto/sha256"
	"embed"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io/fs"
	"net/http"
	"path"
	"strings"
	"time"
)

// ContentSecurityPolicy is the policy sent with every response of Handler.
// The console has no inline script or style, loads nothing from other
// origins, and may not be framed.
const ContentSecurityPolicy = "default-src 'self'; script-src 'self'; style-src 'self'; " +
	"img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"

//go:embed static
var embedded embed.FS

// files is the static directory: what Handler serves, and what nginx
// mounts (web/static) in the compose setup.
var files = mustSub(embedded, "static")

func mustSub(fsys fs.FS, dir string) fs.FS {
	sub, err := fs.Sub(fsys, dir)
	if err != nil {
		panic(fmt.Sprintf("web: %v", err))
	}
	return sub
}

// contentTypes maps the extensions of the embedded files to their media
// types, so that responses do not depend on the host's MIME tables.
var contentTypes = map[string]string{
	".html": "text/html; charset=utf-8",
	".css":  "text/css; charset=utf-8",
	".js":   "text/javascript; charset=utf-8",
	".svg":  "image/svg+xml",
}

// asset is one embedded file, ready to serve.
type asset struct {
	name        string
	contentType string
	etag        string
	body        []byte
}

// assets holds the embedded files by URL path ("/" is index.html).
var assets = mustLoadAssets(files)

func mustLoadAssets(fsys fs.FS) map[string]*asset {
	m, err := loadAssets(fsys)
	if err != nil {
		panic(fmt.Sprintf("web: %v", err))
	}
	return m
}

// loadAssets reads every file at the top of fsys. Each must have a known
// extension; its ETag is a hash of its content.
func loadAssets(fsys fs.FS) (map[string]*asset, error) {
	entries, err := fs.ReadDir(fsys, ".")
	if err != nil {
		return nil, fmt.Errorf("reading the embedded console: %w", err)
	}
	m := make(map[string]*asset, len(entries)+1)
	for _, e := range entries {
		if e.IsDir() {
			continue
		}
		body, err := fs.ReadFile(fsys, e.Name())
		if err != nil {
			return nil, fmt.Errorf("reading %s: %w", e.Name(), err)
		}
		ct, ok := contentTypes[path.Ext(e.Name())]
		if !ok {
			return nil, fmt.Errorf("%s: no content type for its extension", e.Name())
		}
		sum := sha256.Sum256(body)
		a := &asset{
			name:        e.Name(),
			contentType: ct,
			etag:        `"` + base64.RawURLEncoding.EncodeToString(sum[:12]) + `"`,
			body:        body,
		}
		m["/"+e.Name()] = a
	}
	index, ok := m["/index.html"]
	if !ok {
		return nil, fmt.Errorf("index.html is missing")
	}
	m["/"] = index
	return m, nil
}

// Handler serves the console: index.html at "/", the other files by name.
// Every response, errors included, carries the security headers and
// Cache-Control: no-cache (browsers revalidate with the ETag, so a new
// release is picked up at once). Other paths are a 404 and other methods
// than GET and HEAD a 405, both as application/problem+json like the API.
func Handler() http.Handler {
	return http.HandlerFunc(serve)
}

func serve(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("Content-Security-Policy", ContentSecurityPolicy)
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("Cache-Control", "no-cache")
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		h.Set("Allow", "GET, HEAD")
		writeProblem(w, http.StatusMethodNotAllowed, "Method not allowed", "method_not_allowed",
			fmt.Sprintf("%s is not allowed here; allowed: GET, HEAD", r.Method))
		return
	}
	a, ok := assets[r.URL.Path]
	if !ok {
		writeProblem(w, http.StatusNotFound, "Not found", "not_found",
			fmt.Sprintf("no console file at %s", truncate(r.URL.Path, 128)))
		return
	}
	h.Set("Content-Type", a.contentType)
	h.Set("ETag", a.etag)
	http.ServeContent(w, r, a.name, time.Time{}, bytes.NewReader(a.body))
}

// problem is the application/problem+json body of the API's errors.
type problem struct {
	Title  string `json:"title"`
	Status int    `json:"status"`
	Detail string `json:"detail"`
	Code   string `json:"code"`
}

func writeProblem(w http.ResponseWriter, status int, title, code, detail string) {
	w.Header().Set("Content-Type", "application/problem+json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(problem{Title: title, Status: status, Detail: detail, Code: code})
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return strings.ToValidUTF8(s[:n], "") + "…"
}
