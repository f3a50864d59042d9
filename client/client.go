// Package client is kvstore's Go client for the HTTP API whose contract is
// package wire: one Client per server (or Service) URL, with the bearer
// token set once.
//
// Today it carries what the operator uses, the cluster endpoints
// (ClusterStatus, AddMember, RemoveMember); it is the package that grows
// into the public Go client (Put, Get, List, Watch, ...), each method one
// call of do, which builds the request, sets the token and decodes errors.
// A non-2xx answer is an *Error carrying the server's wire.Problem; branch
// on it with errors.Is and the Err sentinels, which match by problem code.
package client

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"

	"kvstore.dev/kvstore/wire"
)

// Client calls one kvstore endpoint. It is safe for concurrent use; its
// settings are fixed by New.
type Client struct {
	base  string // the endpoint without a trailing slash
	token string
	http  *http.Client
}

// Option configures a Client in New.
type Option func(*Client)

// WithToken sets the bearer token sent with every request (in the
// Authorization header, never in the URL).
func WithToken(token string) Option { return func(c *Client) { c.token = token } }

// WithHTTPClient sets the *http.Client requests go through
// (http.DefaultClient when unset or nil): its timeouts and transport apply.
func WithHTTPClient(hc *http.Client) Option {
	return func(c *Client) {
		if hc != nil {
			c.http = hc
		}
	}
}

// New returns a Client of the server at endpoint, a URL such as
// "http://kv.default.svc.cluster.local:8080" (a path prefix is kept).
func New(endpoint string, opts ...Option) *Client {
	c := &Client{base: strings.TrimRight(endpoint, "/"), http: http.DefaultClient}
	for _, o := range opts {
		o(c)
	}
	return c
}

// ClusterStatus is GET /api/v1/cluster (an admin token): the Raft
// configuration as the answering server sees it.
func (c *Client) ClusterStatus(ctx context.Context) (wire.ClusterStatus, error) {
	var st wire.ClusterStatus
	err := c.do(ctx, http.MethodGet, wire.PathCluster, nil, &st)
	return st, err
}

// AddMember is POST /api/v1/cluster/members: it adds a server, or promotes
// a non-voter when req.Voter is true.
func (c *Client) AddMember(ctx context.Context, req wire.AddMemberRequest) error {
	return c.do(ctx, http.MethodPost, wire.PathMembers, req, nil)
}

// RemoveMember is DELETE /api/v1/cluster/members/{id}.
func (c *Client) RemoveMember(ctx context.Context, id string) error {
	return c.do(ctx, http.MethodDelete, wire.MemberPath(id), nil, nil)
}

// do sends one request: in (when not nil) as the JSON body, the token as a
// bearer token; a 2xx body is decoded into out (when not nil), any other
// answer into an *Error.
func (c *Client) do(ctx context.Context, method, path string, in, out any) error {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return fmt.Errorf("kvstore: encode %s %s: %w", method, path, err)
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, body)
	if err != nil {
		return fmt.Errorf("kvstore: %s %s: %w", method, path, err)
	}
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("Accept", "application/json")
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return fmt.Errorf("kvstore: %s %s: %w", method, path, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return &Error{Method: method, Path: path, Problem: *wire.ReadProblem(resp)}
	}
	if out == nil {
		_, _ = io.Copy(io.Discard, resp.Body) // lets the connection be reused
		return nil
	}
	if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
		return fmt.Errorf("kvstore: decode %s %s: %w", method, path, err)
	}
	return nil
}
