package httpapi

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"mime"
	"net/http"
	"strconv"
	"strings"
	"time"

	"kvstore.dev/kvstore/internal/auth"
	"kvstore.dev/kvstore/internal/store"
	"kvstore.dev/kvstore/wire"
)

// Limits on request metadata.
const (
	maxContentTypeLen = 255
	maxTTL            = 10 * 365 * 24 * time.Hour
	defaultListLimit  = 100
	maxListLimit      = 1000
)

// DefaultMaxListPageBytes is the default byte cap of a list page (4 MiB):
// four 1 MiB values, so a page of the largest default values still holds a
// few, while 1000 such values can no longer be held (and base64-encoded) at
// once.
const DefaultMaxListPageBytes = 4 << 20

// metaOf is kv as JSON (wire.KeyMeta: PUT responses, list items).
func metaOf(kv store.KeyValue, withValue bool) wire.KeyMeta {
	m := wire.KeyMeta{Key: kv.Key, Revision: kv.ModRevision, CreateRevision: kv.CreateRevision, Version: kv.Version}
	if withValue {
		m.Value = kv.Value
		if m.Value == nil {
			m.Value = []byte{}
		}
		m.ContentType = kv.ContentType
	}
	if !kv.ExpiresAt.IsZero() {
		t := kv.ExpiresAt
		m.ExpiresAt = &t
	}
	return m
}

func etag(rev uint64) string { return `"` + strconv.FormatUint(rev, 10) + `"` }

// key extracts and validates the {key...} path value and checks access.
func (s *Server) key(r *http.Request, p *auth.Principal, a auth.Access) (string, error) {
	key := r.PathValue("key")
	if err := store.ValidateKey(key, s.opts.MaxKeyBytes); err != nil {
		return "", err
	}
	if !p.CanKey(a, key) {
		return "", errWith(errForbidden, "token %q may not %s key %q", p.Name, accessName(a), key)
	}
	return key, nil
}

func accessName(a auth.Access) string {
	switch a {
	case auth.Read:
		return "read"
	case auth.Write:
		return "write"
	}
	return "administer"
}

// conditions parses If-Match and If-None-Match into a command's conditions.
// Only a single strong revision ETag or "*" is understood.
func conditions(r *http.Request, c *store.Command, allowNoneMatch bool) error {
	im, inm := r.Header.Values("If-Match"), r.Header.Values("If-None-Match")
	if len(im) > 0 && len(inm) > 0 {
		return errWith(errInvalidArgument, "If-Match and If-None-Match cannot be combined")
	}
	if len(im) > 0 {
		if len(im) > 1 {
			return errWith(errInvalidArgument, "If-Match must be a single value")
		}
		v := strings.TrimSpace(im[0])
		if v == "*" {
			c.IfExists = true
			return nil
		}
		rev, err := parseETag(v)
		if err != nil {
			return errWith(errInvalidArgument, "If-Match: %v", err)
		}
		c.IfRevision = rev
	}
	if len(inm) > 0 {
		if !allowNoneMatch || len(inm) > 1 || strings.TrimSpace(inm[0]) != "*" {
			return errWith(errInvalidArgument, "If-None-Match: only \"*\" (create only) is supported on this method")
		}
		c.IfAbsent = true
	}
	return nil
}

func parseETag(v string) (uint64, error) {
	if len(v) < 3 || v[0] != '"' || v[len(v)-1] != '"' {
		return 0, errors.New(`expected a quoted revision such as "42"`)
	}
	rev, err := strconv.ParseUint(v[1:len(v)-1], 10, 64)
	if err != nil || rev == 0 {
		return 0, errors.New(`expected a quoted revision such as "42"`)
	}
	return rev, nil
}

func (s *Server) putKey(w http.ResponseWriter, r *http.Request, p *auth.Principal) error {
	key, err := s.key(r, p, auth.Write)
	if err != nil {
		return err
	}
	cmd := store.Command{Op: store.OpPut, Key: key, ContentType: "application/octet-stream"}
	now := s.clock()
	if v := r.URL.Query().Get("ttl"); r.URL.Query().Has("ttl") {
		ttl, err := time.ParseDuration(v)
		switch {
		case err != nil:
			return errWith(errInvalidTTL, "ttl %q is not a duration such as \"30s\" or \"1h\"", v)
		case ttl <= 0:
			return errWith(errInvalidTTL, "ttl must be positive, got %q", v)
		case ttl > maxTTL:
			return errWith(errInvalidTTL, "ttl must be at most %s", maxTTL)
		}
		cmd.ExpiresAt = now.Add(ttl).UnixNano()
	}
	if ct := r.Header.Get("Content-Type"); ct != "" {
		if _, _, err := mime.ParseMediaType(ct); err != nil || len(ct) > maxContentTypeLen {
			return errWith(errInvalidArgument, "Content-Type %q is not a valid media type of at most %d bytes", truncate(ct, 64), maxContentTypeLen)
		}
		cmd.ContentType = ct
	}
	if err := conditions(r, &cmd, true); err != nil {
		return err
	}
	if cmd.Value, err = s.readValue(w, r); err != nil {
		return err
	}
	res, err := s.backend.Propose(r.Context(), cmd)
	if err != nil {
		return err
	}
	if res[0].Err != nil {
		return res[0].Err
	}
	kv := res[0].KV
	w.Header().Set("ETag", etag(kv.ModRevision))
	status := http.StatusOK
	if res[0].Created {
		status = http.StatusCreated
	}
	writeJSON(w, status, metaOf(kv, false))
	return nil
}

// readValue reads the request body, refusing it as soon as it is known to
// exceed the value limit: from Content-Length before reading anything, or
// after reading limit+1 bytes of a chunked body. The value is never read
// beyond the limit.
func (s *Server) readValue(w http.ResponseWriter, r *http.Request) ([]byte, error) {
	limit := int64(s.opts.MaxValueBytes)
	tooLarge := errWith(store.ErrValueTooLarge, "the value limit is %d bytes", limit)
	if r.ContentLength > limit {
		return nil, tooLarge
	}
	size := r.ContentLength
	if size < 0 {
		size = 512
	}
	buf := bytes.NewBuffer(make([]byte, 0, size))
	_, err := buf.ReadFrom(http.MaxBytesReader(w, r.Body, limit))
	var mbe *http.MaxBytesError
	switch {
	case errors.As(err, &mbe):
		return nil, tooLarge
	case err != nil:
		return nil, errWith(errInvalidArgument, "reading the request body: %v", err)
	}
	return buf.Bytes(), nil
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}

// hasBody reports whether a request carries a body it should not.
func hasBody(r *http.Request) bool {
	return r.ContentLength > 0 || len(r.TransferEncoding) > 0
}

func (s *Server) getKey(w http.ResponseWriter, r *http.Request, p *auth.Principal) error {
	key, err := s.key(r, p, auth.Read)
	if err != nil {
		return err
	}
	if hasBody(r) {
		return errWith(errInvalidArgument, "a %s request must not have a body", r.Method)
	}
	head := r.Method == http.MethodHead
	if err := s.readBarrier(w, r); err != nil {
		return err
	}
	kv, err := s.backend.Get(key, s.clock(), !head)
	if err != nil {
		return err
	}
	h := w.Header()
	h.Set("ETag", etag(kv.ModRevision))
	h.Set("X-KV-Version", strconv.FormatUint(kv.Version, 10))
	h.Set("X-KV-Create-Revision", strconv.FormatUint(kv.CreateRevision, 10))
	if !kv.ExpiresAt.IsZero() {
		h.Set("X-KV-Expires-At", kv.ExpiresAt.Format(time.RFC3339Nano))
	}
	h.Set("Cache-Control", "no-store")
	if inm := r.Header.Get("If-None-Match"); inm != "" && (inm == "*" || inm == etag(kv.ModRevision)) {
		w.WriteHeader(http.StatusNotModified)
		return nil
	}
	// A stored value is served with the client's Content-Type; keep a
	// browser from executing or sniffing it on the console's origin.
	h.Set("Content-Type", kv.ContentType)
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Content-Security-Policy", "default-src 'none'; sandbox")
	if head {
		return nil
	}
	h.Set("Content-Length", strconv.Itoa(len(kv.Value)))
	_, _ = w.Write(kv.Value)
	return nil
}

func (s *Server) deleteKey(w http.ResponseWriter, r *http.Request, p *auth.Principal) error {
	key, err := s.key(r, p, auth.Write)
	if err != nil {
		return err
	}
	cmd := store.Command{Op: store.OpDelete, Key: key}
	if err := conditions(r, &cmd, false); err != nil {
		return err
	}
	res, err := s.backend.Propose(r.Context(), cmd)
	if err != nil {
		return err
	}
	if res[0].Err != nil {
		return res[0].Err
	}
	w.Header().Set("X-KV-Revision", strconv.FormatUint(res[0].Revision, 10))
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// prefixParam validates the prefix query parameter and checks access to it.
func (s *Server) prefixParam(r *http.Request, p *auth.Principal, a auth.Access) (string, error) {
	prefix := r.URL.Query().Get("prefix")
	if err := store.ValidatePrefix(prefix, s.opts.MaxKeyBytes); err != nil {
		return "", err
	}
	if !p.CanPrefix(a, prefix) {
		return "", errWith(errForbidden, "token %q may not %s keys under prefix %q", p.Name, accessName(a), prefix)
	}
	return prefix, nil
}

func (s *Server) deletePrefix(w http.ResponseWriter, r *http.Request, p *auth.Principal) error {
	if r.URL.Query().Get("prefix") == "" {
		return errWith(errInvalidArgument, "a non-empty prefix query parameter is required to delete keys by prefix")
	}
	prefix, err := s.prefixParam(r, p, auth.Write)
	if err != nil {
		return err
	}
	res, err := s.backend.Propose(r.Context(), store.Command{Op: store.OpDeletePrefix, Key: prefix})
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, wire.DeletePrefixResponse{Deleted: res[0].Deleted, Revision: res[0].Revision})
	return nil
}

func (s *Server) list(w http.ResponseWriter, r *http.Request, p *auth.Principal) error {
	if hasBody(r) {
		return errWith(errInvalidArgument, "a %s request must not have a body", r.Method)
	}
	prefix, err := s.prefixParam(r, p, auth.Read)
	if err != nil {
		return err
	}
	q := r.URL.Query()
	opts := store.ListOptions{Prefix: prefix, After: q.Get("after"), Limit: defaultListLimit, MaxBytes: s.opts.MaxListPageBytes, Now: s.clock()}
	if v := q.Get("limit"); q.Has("limit") {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			return errWith(errInvalidArgument, "limit must be a positive integer, got %q", truncate(v, 32))
		}
		opts.Limit = min(n, maxListLimit)
	}
	if v := q.Get("keys_only"); q.Has("keys_only") {
		b, err := strconv.ParseBool(v)
		if err != nil {
			return errWith(errInvalidArgument, "keys_only must be true or false, got %q", truncate(v, 32))
		}
		opts.KeysOnly = b
	}
	if err := store.ValidatePrefix(opts.After, s.opts.MaxKeyBytes); err != nil {
		return errWith(errInvalidArgument, "after: %v", err)
	}
	if err := s.readBarrier(w, r); err != nil {
		return err
	}
	res, err := s.backend.List(opts)
	if err != nil {
		return err
	}
	writeList(w, res, !opts.KeysOnly)
	return nil
}

// writeList streams a page as a wire.ListResponse, one item encoded at a
// time, never the whole page in one buffer.
func writeList(w http.ResponseWriter, res store.ListResult, withValue bool) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	bw := bufio.NewWriterSize(w, 32<<10)
	enc := json.NewEncoder(bw)
	_, _ = bw.WriteString(`{"items":[`)
	for i, kv := range res.Items {
		if i > 0 {
			_ = bw.WriteByte(',')
		}
		_ = enc.Encode(metaOf(kv, withValue)) // adds a newline, which JSON allows
		res.Items[i] = store.KeyValue{}       // the value may be freed once sent
	}
	next, _ := json.Marshal(res.Next)
	fmt.Fprintf(bw, `],"next":%s,"revision":%d}`+"\n", next, res.Revision)
	_ = bw.Flush()
}
