package server

import (
	"bufio"
	"crypto/tls"
	"io"
	"net"
	"net/http"
	"testing"
	"time"

	"kvstore.dev/kvstore/internal/config"
)

// protoClient is a client speaking only the protocols set by set.
func protoClient(tlsCfg *tls.Config, set func(*http.Protocols)) *http.Client {
	p := new(http.Protocols)
	set(p)
	return &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: tlsCfg.Clone(), Protocols: p}}
}

// TestAPIProtocols: the API listener answers HTTP/1.1 and HTTP/2 — h2c by
// prior knowledge on plain HTTP, h2 by ALPN over TLS — and the server sees
// the protocol the client chose.
func TestAPIProtocols(t *testing.T) {
	plain := start(t, nil)
	p := newPKI(t)
	secure := startTLS(t, p, nil)
	tlsCfg := &tls.Config{RootCAs: roots(t, p.ca)}
	cases := map[string]struct {
		url       string
		set       func(*http.Protocols)
		wantMajor int
	}{
		"h2c prior knowledge": {"http://" + plain.api, func(p *http.Protocols) { p.SetUnencryptedHTTP2(true) }, 2},
		"plain HTTP/1.1":      {"http://" + plain.api, func(p *http.Protocols) { p.SetHTTP1(true) }, 1},
		"h2 by ALPN":          {"https://" + secure.api, func(p *http.Protocols) { p.SetHTTP1(true); p.SetHTTP2(true) }, 2},
		"TLS HTTP/1.1":        {"https://" + secure.api, func(p *http.Protocols) { p.SetHTTP1(true) }, 1},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			c := protoClient(tlsCfg, tc.set)
			defer c.CloseIdleConnections()
			for range 3 { // the connection is reused
				resp, err := c.Get(tc.url + "/healthz")
				if err != nil {
					t.Fatal(err)
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != 200 || resp.ProtoMajor != tc.wantMajor {
					t.Fatalf("got %d over %s, want 200 over HTTP/%d", resp.StatusCode, resp.Proto, tc.wantMajor)
				}
			}
		})
	}
}

func TestAPIHTTP2Limits(t *testing.T) {
	h2 := apiHTTP2()
	if h2.MaxConcurrentStreams != h2MaxConcurrentStreams || h2.MaxReadFrameSize != h2MaxReadFrameSize || h2.SendPingTimeout == 0 {
		t.Fatalf("HTTP/2 config %+v lacks the documented limits", h2)
	}
	if p := apiProtocols(); !p.HTTP1() || !p.HTTP2() || !p.UnencryptedHTTP2() {
		t.Fatalf("protocols %v, want HTTP1, HTTP2 and UnencryptedHTTP2", p)
	}
}

// TestConnectionLimitHTTP2: HTTP/2 connections count against
// http.max_connections like HTTP/1.1 ones: with two h2c connections open,
// a third connection is not served until one of them closes.
func TestConnectionLimitHTTP2(t *testing.T) {
	r := start(t, func(c *config.Config) {
		c.HTTP.MaxConnections, c.Watch.MaxWatches, c.Watch.MaxWatchesPerToken = 2, 1, 1
	})
	var clients []*http.Client
	for range 2 {
		c := protoClient(nil, func(p *http.Protocols) { p.SetUnencryptedHTTP2(true) })
		defer c.CloseIdleConnections()
		resp, err := c.Get("http://" + r.api + "/healthz")
		if err != nil || resp.ProtoMajor != 2 {
			t.Fatalf("an h2c connection within the limit: %v, %v", resp, err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close() // the connection stays open, idle
		clients = append(clients, c)
	}
	extra, err := net.Dial("tcp", r.api)
	if err != nil {
		t.Fatal(err)
	}
	defer extra.Close()
	// Not served while the limit is reached (a slow server could only make
	// this pass wrongly, never fail wrongly).
	if resp, err := healthz(extra, time.Now().Add(300*time.Millisecond)); err == nil {
		t.Fatalf("the connection past the limit was served: %d", resp.StatusCode)
	}
	clients[0].CloseIdleConnections()
	extra.SetDeadline(time.Now().Add(10 * time.Second))
	resp, err := http.ReadResponse(bufio.NewReader(extra), nil)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("after an HTTP/2 connection closed: %v, %v", resp, err)
	}
}

// TestWatchOutlivesTimeoutsOverHTTP2: a watch stream over h2c lives past
// http.write_timeout and http.read_timeout, as over HTTP/1.1: the handler's
// per-write deadlines apply to its HTTP/2 stream.
func TestWatchOutlivesTimeoutsOverHTTP2(t *testing.T) {
	const token = "admin-token-0123456789"
	r := start(t, func(c *config.Config) {
		c.Auth.Tokens = []config.Token{{Name: "a", Token: token, Role: "admin"}}
		c.HTTP.WriteTimeout, c.HTTP.ReadTimeout = config.Duration(300*time.Millisecond), config.Duration(300*time.Millisecond)
		c.Watch.Heartbeat = config.Duration(20 * time.Millisecond)
	})
	c := protoClient(nil, func(p *http.Protocols) { p.SetUnencryptedHTTP2(true) })
	c.Timeout = 0 // a stream
	defer c.CloseIdleConnections()
	req, _ := http.NewRequest("GET", "http://"+r.api+"/api/v1/watch", nil)
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.ProtoMajor != 2 || resp.StatusCode != 200 {
		t.Fatalf("watch: %d over %s", resp.StatusCode, resp.Proto)
	}
	// 50 heartbeats of 20ms each: the stream has outlived both 300ms
	// timeouts (counted in heartbeats received, not in time waited).
	sc := bufio.NewScanner(resp.Body)
	for beats := 0; beats < 50; {
		if !sc.Scan() {
			t.Fatalf("the stream ended after %d heartbeats: %v", beats, sc.Err())
		}
		if sc.Text() == ": heartbeat" {
			beats++
		}
	}
}
