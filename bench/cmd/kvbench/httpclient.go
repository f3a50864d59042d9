package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"time"

	"kvstore.dev/kvstore/wire"
)

// kvClient is what a benchmark phase needs from a target.
type kvClient interface {
	// Put stores value under key.
	Put(ctx context.Context, key, value []byte) error
	// Get appends the value of key to dst[:0] and returns it.
	Get(ctx context.Context, key, dst []byte) ([]byte, error)
	// Close releases the client's connections.
	Close() error
}

// httpClient speaks the kvstore HTTP API over HTTP/1.1 keep-alive with
// one shared transport.
type httpClient struct {
	base string // e.g. http://127.0.0.1:8080/api/v1/kv/
	auth string
	tr   *http.Transport
	hc   *http.Client
}

// newHTTPClient returns a client for the kvstore API at addr whose
// transport keeps at least clients idle connections.
func newHTTPClient(addr, token string, clients int) *httpClient {
	tr := &http.Transport{
		Proxy: nil, // loopback only; never use an environment proxy
		DialContext: (&net.Dialer{
			Timeout:   5 * time.Second,
			KeepAlive: 30 * time.Second,
		}).DialContext,
		MaxIdleConns:        2 * clients,
		MaxIdleConnsPerHost: 2 * clients,
		IdleConnTimeout:     90 * time.Second,
		DisableCompression:  true,
		ForceAttemptHTTP2:   false,
	}
	return newHTTPClientURL("http://"+addr, token, tr)
}

// newHTTPClientURL returns a client for the kvstore API under baseURL
// (scheme and authority, e.g. https://localhost:18444) that sends its
// requests through tr.
func newHTTPClientURL(baseURL, token string, tr *http.Transport) *httpClient {
	return &httpClient{
		base: strings.TrimRight(baseURL, "/") + wire.PathKV + "/",
		auth: "Bearer " + token,
		tr:   tr,
		hc:   &http.Client{Transport: tr},
	}
}

// Put implements kvClient.
func (c *httpClient) Put(ctx context.Context, key, value []byte) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPut, c.base+string(key), bytes.NewReader(value))
	if err != nil {
		return fmt.Errorf("build PUT: %w", err)
	}
	req.Header.Set("Authorization", c.auth)
	req.Header.Set("Content-Type", "application/octet-stream")
	resp, err := c.hc.Do(req)
	if err != nil {
		return fmt.Errorf("PUT %s: %w", key, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK && resp.StatusCode != http.StatusCreated {
		return statusError("PUT", key, resp)
	}
	if _, err := io.Copy(io.Discard, resp.Body); err != nil {
		return fmt.Errorf("PUT %s: read response: %w", key, err)
	}
	return nil
}

// Get implements kvClient.
func (c *httpClient) Get(ctx context.Context, key, dst []byte) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.base+string(key), nil)
	if err != nil {
		return nil, fmt.Errorf("build GET: %w", err)
	}
	req.Header.Set("Authorization", c.auth)
	resp, err := c.hc.Do(req)
	if err != nil {
		return nil, fmt.Errorf("GET %s: %w", key, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, statusError("GET", key, resp)
	}
	buf := bytes.NewBuffer(dst[:0])
	if _, err := buf.ReadFrom(resp.Body); err != nil {
		return nil, fmt.Errorf("GET %s: read body: %w", key, err)
	}
	return buf.Bytes(), nil
}

// Close implements kvClient.
func (c *httpClient) Close() error {
	c.tr.CloseIdleConnections()
	return nil
}

// statusError describes an unexpected HTTP status, with the start of the
// response body; it drains the body so the connection can be reused.
func statusError(method string, key []byte, resp *http.Response) error {
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
	_, _ = io.Copy(io.Discard, resp.Body)
	e := &httpStatusError{method: method, key: string(key), status: resp.StatusCode, statusText: resp.Status}
	var problem wire.Problem
	if json.Unmarshal(body, &problem) == nil {
		e.code = problem.Code
	}
	if len(body) > 200 {
		body = body[:200]
	}
	e.body = bytes.TrimSpace(body)
	return e
}

// httpStatusError is an answer with an unexpected HTTP status.
type httpStatusError struct {
	method, key string
	status      int
	statusText  string // e.g. "503 Service Unavailable"
	code        string // the problem's "code" field, if the body had one
	body        []byte // start of the body
}

func (e *httpStatusError) Error() string {
	return fmt.Sprintf("%s %s: unexpected status %s: %q", e.method, e.key, e.statusText, e.body)
}
