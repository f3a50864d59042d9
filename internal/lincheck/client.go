package lincheck

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// maxBody bounds what is read of a response; values are short.
const maxBody = 1 << 20

// do sends in to endpoint and records it. An error means an answer outside
// the API's contract; the operation is then recorded with an unknown
// outcome, which keeps the history sound.
func (c *client) do(ctx context.Context, endpoint string, in Input) (Operation, error) {
	op := Operation{Client: c.id, Input: in, Endpoint: endpoint}
	ctx, cancel := context.WithTimeout(ctx, c.cfg.RequestTimeout)
	defer cancel()
	op.Call = c.now()
	req, err := c.request(ctx, endpoint, in)
	var resp *http.Response
	if err == nil {
		resp, err = c.http.Do(req)
	}
	var body []byte
	if err == nil {
		body, err = io.ReadAll(io.LimitReader(resp.Body, maxBody))
		resp.Body.Close()
	}
	op.Return = c.now()
	if err != nil {
		// No answer: the request may or may not have been served, unless
		// it never left (no connection could be made).
		res := Unknown
		if opErr := (*net.OpError)(nil); errors.As(err, &opErr) && opErr.Op == "dial" {
			res = Failed
		}
		op.Output, err = Output{Result: res, Error: err.Error()}, nil
	} else {
		op.Output, err = interpret(in, resp, body, c.start)
		if err != nil {
			op.Output = Output{Result: Unknown, Error: err.Error()}
			err = fmt.Errorf("lincheck: %s %s via %s: %w", in.Kind, in.Key, endpoint, err)
		}
	}
	if op.Output.Result == Unknown && in.Kind != Get {
		// The write may still take effect at any later moment.
		op.Returned, op.Return = op.Return, Never
	}
	return op, err
}

func (c *client) request(ctx context.Context, endpoint string, in Input) (*http.Request, error) {
	u := endpoint + "/api/v1/kv/" + escapeKey(in.Key)
	method, body := http.MethodGet, ""
	switch in.Kind {
	case Get:
		if c.cfg.Consistency != "" {
			u += "?consistency=" + url.QueryEscape(c.cfg.Consistency)
		}
	case Put, Create, CAS:
		method, body = http.MethodPut, in.Value
		if in.TTL > 0 {
			u += "?ttl=" + in.TTL.String()
		}
	case Delete:
		method = http.MethodDelete
	}
	var r io.Reader
	if body != "" {
		r = strings.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, u, r)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Authorization", "Bearer "+c.cfg.Token)
	if r != nil {
		req.Header.Set("Content-Type", "text/plain")
	}
	switch {
	case in.Kind == Create:
		req.Header.Set("If-None-Match", "*")
	case in.IfRevision != 0:
		req.Header.Set("If-Match", `"`+strconv.FormatUint(in.IfRevision, 10)+`"`)
	}
	return req, nil
}

// escapeKey percent-encodes each segment of a key path.
func escapeKey(key string) string {
	segs := strings.Split(key, "/")
	for i, s := range segs {
		segs[i] = url.PathEscape(s)
	}
	return strings.Join(segs, "/")
}

// interpret maps an answer to the model's output, following docs/api.md.
// Expiries are converted to nanoseconds since start.
func interpret(in Input, resp *http.Response, body []byte, start time.Time) (Output, error) {
	status := resp.StatusCode
	if status >= 500 || status == http.StatusRequestTimeout || status == http.StatusTooManyRequests {
		return Output{Result: Unknown, Error: fmt.Sprintf("%d %s", status, problemCode(body))}, nil
	}
	switch {
	case in.Kind == Get && status == http.StatusOK:
		rev, err := parseETag(resp.Header.Get("ETag"))
		if err != nil {
			return Output{}, err
		}
		exp, err := sinceStart(resp.Header.Get("X-KV-Expires-At"), start)
		if err != nil {
			return Output{}, fmt.Errorf("X-KV-Expires-At: %w", err)
		}
		return Output{Result: OK, Value: string(body), Revision: rev, ExpiresAt: exp}, nil
	case (in.Kind == Get || in.Kind == Delete) && status == http.StatusNotFound && problemCode(body) == "not_found":
		return Output{Result: NotFound}, nil
	case in.Kind != Get && status == http.StatusPreconditionFailed:
		return Output{Result: PreconditionFailed}, nil
	case in.Kind == Delete && status == http.StatusNoContent:
		rev, err := strconv.ParseUint(resp.Header.Get("X-KV-Revision"), 10, 64)
		if err != nil || rev == 0 {
			return Output{}, fmt.Errorf("204 without a valid X-KV-Revision (%q)", resp.Header.Get("X-KV-Revision"))
		}
		return Output{Result: OK, Revision: rev}, nil
	case in.Kind != Get && in.Kind != Delete && (status == http.StatusOK || status == http.StatusCreated):
		var meta struct {
			Revision  uint64 `json:"revision"`
			ExpiresAt string `json:"expires_at"`
		}
		if err := json.Unmarshal(body, &meta); err != nil || meta.Revision == 0 {
			return Output{}, fmt.Errorf("%d without a revision in its body %.200q", status, body)
		}
		exp, err := sinceStart(meta.ExpiresAt, start)
		if err != nil {
			return Output{}, fmt.Errorf("expires_at: %w", err)
		}
		return Output{Result: OK, Revision: meta.Revision, Created: status == http.StatusCreated, ExpiresAt: exp}, nil
	}
	return Output{}, fmt.Errorf("unexpected answer %d: %.300s", status, body)
}

// sinceStart converts an RFC 3339 expiry ("" for none) to nanoseconds since
// start, by the wall clock (the servers run on the recorder's machine).
func sinceStart(v string, start time.Time) (int64, error) {
	if v == "" {
		return 0, nil
	}
	t, err := time.Parse(time.RFC3339Nano, v)
	if err != nil {
		return 0, err
	}
	return max(int64(t.Sub(start)), 1), nil // 0 means none
}

// parseETag reads a strong revision ETag such as "42".
func parseETag(v string) (uint64, error) {
	rev, err := strconv.ParseUint(strings.TrimSuffix(strings.TrimPrefix(v, `"`), `"`), 10, 64)
	if err != nil || rev == 0 || len(v) < 3 || v[0] != '"' || v[len(v)-1] != '"' {
		return 0, fmt.Errorf("200 without a revision ETag (%q)", v)
	}
	return rev, nil
}

// problemCode is the code of an application/problem+json body, or "".
func problemCode(body []byte) string {
	var p struct {
		Code string `json:"code"`
	}
	_ = json.Unmarshal(body, &p)
	return p.Code
}

// preflight asks endpoint for its status, to refuse a wrong base URL or
// token before recording. An endpoint that does not answer, or answers
// 5xx, passes: it may be down on purpose.
func preflight(ctx context.Context, hc *http.Client, endpoint, token string, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, endpoint+"/api/v1/status", nil)
	if err != nil {
		return fmt.Errorf("lincheck: endpoint %q: %w", endpoint, err)
	}
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := hc.Do(req)
	if err != nil {
		return nil
	}
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	resp.Body.Close()
	if resp.StatusCode == http.StatusOK || resp.StatusCode >= 500 {
		return nil
	}
	return fmt.Errorf("lincheck: GET %s/api/v1/status: %d %.200s", endpoint, resp.StatusCode, body)
}
