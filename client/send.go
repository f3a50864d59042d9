package client

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptrace"
	"strings"
	"sync/atomic"
	"time"

	"kvstore.dev/kvstore/wire"
)

// request is one call of the API, sent by send as often as it may be.
type request struct {
	method string
	path   string // with the query
	body   []byte // nil: none; sent again on a retry
	header http.Header
	// write marks a call that changes something: once sent without an
	// answer its outcome is unknown, and it is never sent again.
	write bool
}

// send sends rq to the endpoints, retrying what is safe within c.retry
// and ctx, and returns a 2xx response, whose body the caller closes. Any
// other answer is an *Error; a write that was sent and got no answer is
// an error matching ErrOutcomeUnknown.
func (c *Client) send(ctx context.Context, rq request) (*http.Response, error) {
	start := time.Now()
	n := len(c.endpoints)
	first := int(c.preferred.Load()) % n
	var lastErr error
	for attempt := 0; ; attempt++ {
		idx := (first + attempt) % n
		resp, sent, err := c.attempt(ctx, c.endpoints[idx], rq)
		if be, ok := err.(buildError); ok {
			return nil, fmt.Errorf("kvstore: %s %s: %w", rq.method, rq.path, be.err)
		}
		reached := false // whether this attempt reached a server
		switch {
		case err == nil && resp.StatusCode >= 200 && resp.StatusCode <= 299:
			c.preferred.Store(uint32(idx))
			return resp, nil
		case err == nil:
			p := wire.ReadProblem(resp)
			resp.Body.Close()
			e := &Error{Method: rq.method, Path: rq.path, Endpoint: c.endpoints[idx], Problem: *p}
			if !retryable(p.Code, rq.write) {
				c.preferred.Store(uint32(idx))
				return nil, e
			}
			lastErr, reached = e, true
		case sent && rq.write:
			return nil, &outcomeError{method: rq.method, path: rq.path, endpoint: c.endpoints[idx] + h2cHint(err), err: err}
		default:
			lastErr = fmt.Errorf("kvstore: %s %s%s: %w", rq.method, rq.path, h2cHint(err), err)
			reached = sent
			var tlsErr *tls.CertificateVerificationError
			if ctx.Err() != nil || errors.As(err, &tlsErr) { // an untrusted server stays untrusted
				return nil, lastErr
			}
		}
		if attempt+1 >= c.retry.MaxAttempts {
			return nil, lastErr
		}
		var wait time.Duration
		if reached || attempt+1 >= n { // every endpoint tried once: back off
			wait = c.retry.backoff(attempt + 1)
		}
		if time.Since(start)+wait > c.retry.MaxElapsed || !sleep(ctx, wait) {
			return nil, lastErr
		}
	}
}

// retryable reports whether an answer with code may be sent again: the
// server refused it before doing anything (no_quorum, too_many_requests),
// or it is a read (unavailable: a proxy's 502, 503 or 504 also reads as
// unavailable, and behind one a write may have been applied).
func retryable(code string, write bool) bool {
	switch code {
	case wire.CodeNoQuorum, wire.CodeTooManyRequests:
		return true
	case wire.CodeUnavailable:
		return !write
	}
	return false
}

// attempt sends rq once to endpoint. sent reports whether the request may
// have been written, so that a write's failure is an unknown outcome: true
// once a connection was obtained for it (the trace's WroteHeaders can come
// after the server has answered and the call has failed, too late to
// tell), false when none was (the dial failed, ctx ended before).
func (c *Client) attempt(ctx context.Context, endpoint string, rq request) (resp *http.Response, sent bool, err error) {
	var wrote atomic.Bool
	trace := &httptrace.ClientTrace{GotConn: func(httptrace.GotConnInfo) { wrote.Store(true) }}
	req, err := http.NewRequestWithContext(httptrace.WithClientTrace(ctx, trace), rq.method, endpoint+rq.path, bodyReader(rq.body))
	if err != nil {
		return nil, false, buildError{err}
	}
	for k, v := range rq.header {
		req.Header[k] = v
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	resp, err = c.http.Do(req)
	if err == nil && c.onResponse != nil {
		c.onResponse(resp)
	}
	return resp, wrote.Load(), err
}

// buildError is a request that could not be built (a malformed endpoint):
// no retry makes it better.
type buildError struct{ err error }

func (e buildError) Error() string { return e.err.Error() }

// h2cHint names a likely cause of an HTTP/2 failure (the http2 package's
// errors start "http2: "): the endpoint, or a proxy in front of it, may
// not speak HTTP/2 by prior knowledge.
func h2cHint(err error) string {
	if strings.Contains(err.Error(), "http2: ") {
		return " (if the endpoint speaks HTTP/1.1 only, use WithHTTP1 or kvctl --http1)"
	}
	return ""
}
