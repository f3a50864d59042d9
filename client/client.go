package client

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"time"

	"kvstore.dev/kvstore/wire"
)

// Client calls one or more kvstore endpoints. It is safe for concurrent
// use; its settings are fixed by New.
type Client struct {
	endpoints []string // without trailing slashes; at least one
	token     string
	http      *http.Client
	retry     Retry
	tlsConfig *tls.Config
	http1     bool

	preferred atomic.Uint32 // index of the endpoint that answered last

	onResponse func(*http.Response) // a test's hook (export_test.go)
}

// Option configures a Client in New.
type Option func(*Client)

// WithToken sets the bearer token sent with every request (in the
// Authorization header, never in the URL).
func WithToken(token string) Option { return func(c *Client) { c.token = token } }

// WithHTTPClient sets the *http.Client requests go through: its timeouts
// and transport apply, and WithTLSConfig and WithHTTP1 are then ignored.
// Unset or nil, the Client builds its own transport (see Protocols in the
// package documentation).
func WithHTTPClient(hc *http.Client) Option {
	return func(c *Client) {
		if hc != nil {
			c.http = hc
		}
	}
}

// WithTLSConfig sets the TLS configuration of https:// endpoints (for
// example RootCAs with the cluster's CA). The Client uses a copy.
func WithTLSConfig(cfg *tls.Config) Option {
	return func(c *Client) { c.tlsConfig = cfg.Clone() }
}

// WithHTTP1 makes the Client speak HTTP/1.1 only, over TLS and plain HTTP.
func WithHTTP1() Option { return func(c *Client) { c.http1 = true } }

// WithRetry sets the bounds of retries (DefaultRetry when unset).
func WithRetry(r Retry) Option { return func(c *Client) { c.retry = r.withDefaults() } }

// New returns a Client of the server at endpoint, a URL such as
// "http://kv.default.svc.cluster.local:8080" (a path prefix is kept), or
// of several servers: a comma-separated list of such URLs, tried in turn
// when one fails (see Retries and failover in the package documentation).
func New(endpoint string, opts ...Option) *Client {
	c := &Client{retry: DefaultRetry()}
	for _, e := range strings.Split(endpoint, ",") {
		if e = strings.TrimRight(strings.TrimSpace(e), "/"); e != "" {
			c.endpoints = append(c.endpoints, e)
		}
	}
	if len(c.endpoints) == 0 {
		c.endpoints = []string{""} // every call fails naming the empty URL
	}
	for _, o := range opts {
		o(c)
	}
	if c.http == nil {
		c.http = &http.Client{Transport: newTransport(c.tlsConfig, c.http1)}
	}
	return c
}

// Endpoints returns the endpoints the Client calls, in order.
func (c *Client) Endpoints() []string { return append([]string(nil), c.endpoints...) }

// CloseIdleConnections closes the connections the Client keeps open and
// idle. The Client stays usable.
func (c *Client) CloseIdleConnections() { c.http.CloseIdleConnections() }

// newTransport returns the default transport: HTTP/2 by ALPN with HTTP/1.1
// as the fallback over TLS, h2c by prior knowledge on plain HTTP; or
// HTTP/1.1 only. Dead HTTP/2 connections are found by pings.
func newTransport(tlsCfg *tls.Config, http1 bool) http.RoundTripper {
	mk := func(set func(*http.Protocols)) *http.Transport {
		p := new(http.Protocols)
		set(p)
		return &http.Transport{
			Proxy:                 http.ProxyFromEnvironment,
			DialContext:           (&net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
			TLSClientConfig:       tlsCfg.Clone(), // the transport adjusts its NextProtos
			TLSHandshakeTimeout:   10 * time.Second,
			MaxIdleConnsPerHost:   64,
			IdleConnTimeout:       90 * time.Second,
			ExpectContinueTimeout: time.Second,
			Protocols:             p,
			HTTP2:                 &http.HTTP2Config{SendPingTimeout: 30 * time.Second, PingTimeout: 15 * time.Second},
		}
	}
	if http1 {
		tr := mk(func(p *http.Protocols) { p.SetHTTP1(true) })
		return &schemeTransport{plain: tr, secure: tr}
	}
	return &schemeTransport{
		plain:  mk(func(p *http.Protocols) { p.SetUnencryptedHTTP2(true) }),
		secure: mk(func(p *http.Protocols) { p.SetHTTP1(true); p.SetHTTP2(true) }),
	}
}

// schemeTransport sends http:// requests through plain and https:// ones
// through secure: a Transport with HTTP1 enabled would speak HTTP/1.1 to a
// plain endpoint, one without it could not fall back over TLS.
type schemeTransport struct{ plain, secure *http.Transport }

func (t *schemeTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	if r.URL.Scheme == "https" {
		return t.secure.RoundTrip(r)
	}
	return t.plain.RoundTrip(r)
}

func (t *schemeTransport) CloseIdleConnections() {
	t.plain.CloseIdleConnections()
	t.secure.CloseIdleConnections()
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

// Recover is POST /api/v1/cluster/recover: the server that answers (send
// it to that server's own address, not through a load balancer) makes
// itself a one-server cluster after a lost quorum, by restarting
// (wire.RecoverRequest says when it refuses, with ErrRecoveryRefused).
func (c *Client) Recover(ctx context.Context, req wire.RecoverRequest) (wire.RecoverResponse, error) {
	var out wire.RecoverResponse
	err := c.do(ctx, http.MethodPost, wire.PathRecover, req, &out)
	return out, err
}

// Status is GET /api/v1/status: the server's version, revision and uptime,
// and for an admin token the store-wide numbers (zero for other tokens).
func (c *Client) Status(ctx context.Context) (wire.AdminStatus, error) {
	var st wire.AdminStatus
	err := c.do(ctx, http.MethodGet, wire.PathStatus, nil, &st)
	return st, err
}

// do sends one JSON call: in (when not nil) as the JSON body; a 2xx body
// is decoded into out (when not nil). Methods other than GET are writes.
func (c *Client) do(ctx context.Context, method, path string, in, out any) error {
	rq := request{method: method, path: path, write: method != http.MethodGet, header: http.Header{}}
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return fmt.Errorf("kvstore: encode %s %s: %w", method, path, err)
		}
		rq.body = b
		rq.header.Set("Content-Type", "application/json")
	}
	rq.header.Set("Accept", "application/json")
	resp, err := c.send(ctx, rq)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if out == nil {
		_, _ = io.Copy(io.Discard, resp.Body) // lets the connection be reused
		return nil
	}
	if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
		return fmt.Errorf("kvstore: decode %s %s: %w", method, path, err)
	}
	return nil
}

// bodyReader is b as a request body (nil for none).
func bodyReader(b []byte) io.Reader {
	if b == nil {
		return nil
	}
	return bytes.NewReader(b)
}
