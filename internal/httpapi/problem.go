package httpapi

import (
	"encoding/json"
	"errors"
	"net/http"
	"strings"

	"kvstore.dev/kvstore/internal/errcode"
	"kvstore.dev/kvstore/wire"
)

// Errors raised by the HTTP layer itself. Like the store's, they are mapped
// to a status and a stable code by problemFor.
var (
	errInvalidArgument  = errcode.ErrInvalidArgument
	errInvalidTTL       = errors.New("invalid ttl")
	errUnauthorized     = errors.New("unauthorized")
	errForbidden        = errors.New("forbidden")
	errMethodNotAllowed = errors.New("method not allowed")
	errRouteNotFound    = errors.New("no such endpoint")
	errUnavailable      = errors.New("unavailable")
	errTooManyRequests  = errors.New("too many requests")
)

// errorTable maps errors to problem details: the single place where errors
// become HTTP statuses. It is internal/errcode's table, which the peer API
// shares (so a request answers the same on every node), followed by the
// errors only the HTTP layer raises. The first entry whose err matches
// (errors.Is) wins; anything unmatched is a 500 "internal" whose detail is
// logged, not sent.
var errorTable = append(errcode.Entries(), []errcode.Entry{
	{Err: errUnavailable, Status: http.StatusServiceUnavailable, Code: wire.CodeUnavailable, Title: "Service unavailable"},
	{Err: errInvalidTTL, Status: http.StatusBadRequest, Code: wire.CodeInvalidTTL, Title: "Invalid TTL"},
	{Err: errUnauthorized, Status: http.StatusUnauthorized, Code: wire.CodeUnauthorized, Title: "Unauthorized"},
	{Err: errForbidden, Status: http.StatusForbidden, Code: wire.CodeForbidden, Title: "Forbidden"},
	{Err: errMethodNotAllowed, Status: http.StatusMethodNotAllowed, Code: wire.CodeMethodNotAllowed, Title: "Method not allowed"},
	{Err: errRouteNotFound, Status: http.StatusNotFound, Code: wire.CodeNotFound, Title: "Not found"},
	{Err: errTooManyRequests, Status: http.StatusTooManyRequests, Code: wire.CodeTooManyRequests, Title: "Too many requests"},
}...)

// Problem is the problem body of package wire.
type Problem = wire.Problem

// problemFor returns the problem for err and whether err is an internal
// error (whose text must not reach the client).
func problemFor(err error) (Problem, bool) {
	for _, e := range errorTable {
		if errors.Is(err, e.Err) {
			return Problem{Title: e.Title, Status: e.Status, Code: e.Code, Detail: clientDetail(err)}, false
		}
	}
	return Problem{
		Title:  "Internal server error",
		Status: http.StatusInternalServerError,
		Code:   wire.CodeInternal,
		Detail: "the server failed to handle the request; see its log for this request id",
	}, true
}

// clientDetail turns an error chain into a sentence for the client.
func clientDetail(err error) string {
	return strings.ReplaceAll(err.Error(), "kvstore: ", "")
}

// writeError sends err as application/problem+json. Internal errors are
// logged with the request id; the client gets a generic message.
func (s *Server) writeError(w http.ResponseWriter, r *http.Request, err error) {
	p, internal := problemFor(err)
	p.RequestID = requestID(r.Context())
	if internal {
		s.log.ErrorContext(r.Context(), "request failed", "request_id", p.RequestID, "err", err)
	} else if p.Status >= 500 && r.URL.Path != "/readyz" { // a failing readiness probe is not news
		s.log.WarnContext(r.Context(), "request failed", "request_id", p.RequestID, "code", p.Code, "err", err)
	}
	switch p.Status {
	case http.StatusUnauthorized:
		challenge := `Bearer realm="kvstore"`
		if r.Header.Get("Authorization") != "" {
			challenge += `, error="invalid_token"`
		}
		w.Header().Set("WWW-Authenticate", challenge)
	case http.StatusServiceUnavailable:
		w.Header().Set("Retry-After", "1")
	case http.StatusTooManyRequests:
		if w.Header().Get("Retry-After") == "" {
			w.Header().Set("Retry-After", "1")
		}
	}
	h := w.Header()
	for _, k := range []string{"ETag", "X-KV-Version", "X-KV-Expires-At", "X-KV-Create-Revision", "Content-Security-Policy", "Content-Length"} {
		h.Del(k)
	}
	h.Set("Content-Type", "application/problem+json")
	h.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(p.Status)
	_ = json.NewEncoder(w).Encode(p)
}

// writeJSON sends v as JSON with status.
func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}
