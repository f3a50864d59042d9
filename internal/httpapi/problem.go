package httpapi

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strings"

	"kvstore.dev/kvstore/internal/store"
)

// Errors raised by the HTTP layer itself. Like the store's, they are mapped
// to a status and a stable code by errorTable.
var (
	errInvalidArgument  = errors.New("invalid argument")
	errInvalidTTL       = errors.New("invalid ttl")
	errUnauthorized     = errors.New("unauthorized")
	errForbidden        = errors.New("forbidden")
	errMethodNotAllowed = errors.New("method not allowed")
	errRouteNotFound    = errors.New("no such endpoint")
	errUnavailable      = errors.New("unavailable")
	errTooManyRequests  = errors.New("too many requests")
)

// errorTable maps errors to problem details: the single place where errors
// become HTTP statuses. The first entry whose err matches (errors.Is) wins;
// anything unmatched is a 500 "internal" whose detail is logged, not sent.
var errorTable = []struct {
	err    error
	status int
	code   string
	title  string
}{
	{store.ErrNotFound, http.StatusNotFound, "not_found", "Key not found"},
	{store.ErrPreconditionFailed, http.StatusPreconditionFailed, "precondition_failed", "Precondition failed"},
	{store.ErrInvalidKey, http.StatusBadRequest, "invalid_key", "Invalid key"},
	{store.ErrKeyTooLarge, http.StatusRequestURITooLong, "key_too_large", "Key too large"},
	{store.ErrValueTooLarge, http.StatusRequestEntityTooLarge, "value_too_large", "Value too large"},
	{store.ErrCompacted, http.StatusGone, "compacted", "Revision compacted"},
	{store.ErrNoSpace, http.StatusInsufficientStorage, "insufficient_storage", "Insufficient storage"},
	{store.ErrClosed, http.StatusServiceUnavailable, "unavailable", "Service unavailable"},
	{store.ErrNoQuorum, http.StatusServiceUnavailable, "no_quorum", "No quorum"},
	{errNotClustered, http.StatusConflict, "not_clustered", "Not a cluster"},
	{store.ErrOutcomeUnknown, http.StatusGatewayTimeout, "outcome_unknown", "Outcome unknown"},
	{errUnavailable, http.StatusServiceUnavailable, "unavailable", "Service unavailable"},
	{context.Canceled, http.StatusServiceUnavailable, "unavailable", "Request cancelled"},
	{context.DeadlineExceeded, http.StatusServiceUnavailable, "unavailable", "Request timed out"},
	{errInvalidTTL, http.StatusBadRequest, "invalid_ttl", "Invalid TTL"},
	{errInvalidArgument, http.StatusBadRequest, "invalid_argument", "Invalid argument"},
	{errUnauthorized, http.StatusUnauthorized, "unauthorized", "Unauthorized"},
	{errForbidden, http.StatusForbidden, "forbidden", "Forbidden"},
	{errMethodNotAllowed, http.StatusMethodNotAllowed, "method_not_allowed", "Method not allowed"},
	{errRouteNotFound, http.StatusNotFound, "not_found", "Not found"},
	{errTooManyRequests, http.StatusTooManyRequests, "too_many_requests", "Too many requests"},
}

// Problem is an RFC 9457 problem details body with kvstore's stable code.
type Problem struct {
	Type      string `json:"type,omitempty"`
	Title     string `json:"title"`
	Status    int    `json:"status"`
	Detail    string `json:"detail,omitempty"`
	Code      string `json:"code"`
	RequestID string `json:"request_id,omitempty"`
}

// problemFor returns the problem for err and whether err is an internal
// error (whose text must not reach the client).
func problemFor(err error) (Problem, bool) {
	for _, e := range errorTable {
		if errors.Is(err, e.err) {
			return Problem{Title: e.title, Status: e.status, Code: e.code, Detail: clientDetail(err)}, false
		}
	}
	return Problem{
		Title:  "Internal server error",
		Status: http.StatusInternalServerError,
		Code:   "internal",
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
