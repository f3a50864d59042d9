package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"sync/atomic"
	"time"

	"kvstore.dev/kvstore/bench/internal/report"
	"kvstore.dev/kvstore/wire"
)

// composeEnv is what every compose target's client needs.
type composeEnv struct {
	token string
	roots *x509.CertPool // nil when no target uses TLS
}

// loadComposeEnv reads the admin token and the CA certificate.
func loadComposeEnv(cfg *composeConfig) (composeEnv, error) {
	var env composeEnv
	tok, err := os.ReadFile(cfg.tokenFile)
	if err != nil {
		return env, fmt.Errorf("read token: %w", err)
	}
	env.token = strings.TrimSpace(string(tok))
	if env.token == "" {
		return env, fmt.Errorf("token file %s is empty", cfg.tokenFile)
	}
	if cfg.caFile != "" {
		pem, err := os.ReadFile(cfg.caFile)
		if err != nil {
			return env, fmt.Errorf("read CA: %w", err)
		}
		env.roots = x509.NewCertPool()
		if !env.roots.AppendCertsFromPEM(pem) {
			return env, fmt.Errorf("CA file %s holds no PEM certificate", cfg.caFile)
		}
	}
	return env, nil
}

// composeTarget describes how kvbench talks to one compose target.
type composeTarget struct {
	name string
	// tls and http2 select the transport: TLS or cleartext, HTTP/2 only
	// or HTTP/1.1 only.
	tls, http2 bool
}

// composeTargets lists the compose targets by name.
var composeTargets = map[string]composeTarget{
	report.Direct:       {name: report.Direct},
	report.NginxHTTPS:   {name: report.NginxHTTPS, tls: true, http2: true},
	report.NginxHTTPSH1: {name: report.NginxHTTPSH1, tls: true},
}

// baseURL returns the origin the target is driven at.
func (t composeTarget) baseURL(cfg *composeConfig) string {
	if t.tls {
		return cfg.httpsURL
	}
	return cfg.directURL
}

// composeClient is an open client for one target, with the number of TCP
// connections it has dialled.
type composeClient struct {
	*httpClient
	dials *atomic.Int64
}

// openComposeClient returns a client for target t with clients
// concurrent users, sharing one transport: over HTTP/2 the clients share
// one TLS connection as a browser's tabs would; over HTTP/1.1 each
// client keeps its own keep-alive connection.
func openComposeClient(cfg *composeConfig, env composeEnv, t composeTarget, clients int) *composeClient {
	dials := new(atomic.Int64)
	dialer := &net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}
	var protos http.Protocols
	if t.http2 {
		protos.SetHTTP2(true)
	} else {
		protos.SetHTTP1(true)
	}
	tr := &http.Transport{
		Proxy: nil, // loopback only; never use an environment proxy
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			dials.Add(1)
			return dialer.DialContext(ctx, network, addr)
		},
		MaxIdleConns:        2 * clients,
		MaxIdleConnsPerHost: 2 * clients,
		IdleConnTimeout:     90 * time.Second,
		TLSHandshakeTimeout: 5 * time.Second,
		DisableCompression:  true,
		Protocols:           &protos,
	}
	if t.tls {
		tr.TLSClientConfig = &tls.Config{RootCAs: env.roots, MinVersion: tls.VersionTLS12}
	}
	return &composeClient{httpClient: newHTTPClientURL(t.baseURL(cfg), env.token, tr), dials: dials}
}

// probeResult is what probing a target found out.
type probeResult struct {
	protocol   string // e.g. "HTTP/2.0, TLS 1.3"
	appVersion string
}

// probe sends GET /api/v1/status through c with the admin token and checks
// that it succeeds over the protocol t asks for.
func (c *composeClient) probe(ctx context.Context, t composeTarget) (probeResult, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	url := strings.TrimSuffix(c.base, "kv/") + "status"
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return probeResult{}, fmt.Errorf("build probe: %w", err)
	}
	req.Header.Set("Authorization", c.auth)
	resp, err := c.hc.Do(req)
	if err != nil {
		return probeResult{}, fmt.Errorf("probe %s: %w", url, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return probeResult{}, statusError("GET", []byte(wire.PathStatus), resp)
	}
	var st wire.Status
	if err := json.NewDecoder(io.LimitReader(resp.Body, 1<<16)).Decode(&st); err != nil {
		return probeResult{}, fmt.Errorf("probe %s: decode status: %w", url, err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	res := probeResult{protocol: protocolName(resp.Proto, resp.TLS), appVersion: st.Version}
	if err := checkProtocol(t, resp.ProtoMajor, resp.TLS); err != nil {
		return res, fmt.Errorf("probe %s: %w", url, err)
	}
	return res, nil
}

// protocolName describes the protocol a response came over.
func protocolName(proto string, cs *tls.ConnectionState) string {
	if cs == nil {
		return proto + ", cleartext"
	}
	return proto + ", " + tls.VersionName(cs.Version)
}

// checkProtocol fails unless a response came over the protocol t asks for.
func checkProtocol(t composeTarget, major int, cs *tls.ConnectionState) error {
	want := 1
	if t.http2 {
		want = 2
	}
	switch {
	case major != want:
		return fmt.Errorf("answered over HTTP/%d, want HTTP/%d", major, want)
	case t.tls && cs == nil:
		return errors.New("answered without TLS")
	case !t.tls && cs != nil:
		return errors.New("answered over TLS, want cleartext")
	}
	return nil
}
