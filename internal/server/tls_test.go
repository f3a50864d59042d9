package server

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"kvstore.dev/kvstore/internal/certs"
	"kvstore.dev/kvstore/internal/config"
	"kvstore.dev/kvstore/test/harness"
)

const tlsAdminToken = "tls-admin-token-0123456789"

// pki is a test CA with files for the server's leaf.
type pki struct {
	ca                *certs.CA
	dir               string
	certFile, keyFile string
}

func newPKI(t *testing.T) *pki {
	t.Helper()
	p := &pki{ca: newCA(t), dir: t.TempDir()}
	p.certFile, p.keyFile = filepath.Join(p.dir, "server.crt"), filepath.Join(p.dir, "server.key")
	p.install(t, issue(t, p.ca))
	return p
}

func newCA(t *testing.T) *certs.CA {
	t.Helper()
	ca, err := certs.NewCA("test CA", time.Hour, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	return ca
}

func issue(t *testing.T, ca *certs.CA) certs.Pair {
	t.Helper()
	pair, err := ca.IssueServer([]string{"localhost", "127.0.0.1"}, time.Hour, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	return pair
}

// install replaces the leaf files the way a Secret update or a re-issue
// does: each file through a rename, the certificate first, so that for a
// moment the key does not match it.
func (p *pki) install(t *testing.T, pair certs.Pair) {
	t.Helper()
	for _, f := range []struct {
		path string
		data []byte
	}{{p.certFile, pair.CertPEM}, {p.keyFile, pair.KeyPEM}} {
		if err := os.WriteFile(f.path+".tmp", f.data, 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(f.path+".tmp", f.path); err != nil {
			t.Fatal(err)
		}
	}
}

func roots(t *testing.T, cas ...*certs.CA) *x509.CertPool {
	t.Helper()
	pool := x509.NewCertPool()
	for _, ca := range cas {
		pool.AddCert(ca.Cert)
	}
	return pool
}

func tlsClient(pool *x509.CertPool, cert *tls.Certificate, keepAlive bool) *http.Client {
	cfg := &tls.Config{RootCAs: pool}
	if cert != nil {
		cfg.Certificates = []tls.Certificate{*cert}
	}
	return &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
		TLSClientConfig: cfg, ForceAttemptHTTP2: true, DisableKeepAlives: !keepAlive,
	}}
}

func startTLS(t *testing.T, p *pki, edit func(*config.Config)) *running {
	t.Helper()
	return start(t, func(c *config.Config) {
		c.Listen = "localhost:0"
		c.API.TLS = config.APITLS{CertFile: p.certFile, KeyFile: p.keyFile}
		c.Auth.Tokens = []config.Token{{Name: "admin", Token: tlsAdminToken, Role: "admin"}}
		if edit != nil {
			edit(c)
		}
	})
}

func doTLS(c *http.Client, method, url, body string) (int, error) {
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		return 0, err
	}
	req.Header.Set("Authorization", "Bearer "+tlsAdminToken)
	resp, err := c.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	io.Copy(io.Discard, resp.Body)
	return resp.StatusCode, nil
}

// servedSerial makes a new TLS connection and returns the serial of the
// server's leaf.
func servedSerial(addr string, pool *x509.CertPool) (string, error) {
	conn, err := tls.Dial("tcp", addr, &tls.Config{RootCAs: pool, ServerName: "localhost"})
	if err != nil {
		return "", err
	}
	defer conn.Close()
	return conn.ConnectionState().PeerCertificates[0].SerialNumber.String(), nil
}

func serialOf(t *testing.T, pair certs.Pair) string {
	t.Helper()
	c, err := certs.ParseCert(pair.CertPEM)
	if err != nil {
		t.Fatal(err)
	}
	return c.SerialNumber.String()
}

func TestAPIOverTLS(t *testing.T) {
	p := newPKI(t)
	r := startTLS(t, p, nil)
	base := "https://" + r.api
	c := tlsClient(roots(t, p.ca), nil, true)
	if code, err := doTLS(c, "PUT", base+"/api/v1/kv/tls/k", "v"); err != nil || code != 201 {
		t.Fatalf("PUT over TLS: %d, %v", code, err)
	}
	resp, err := c.Get(base + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.TLS == nil || resp.ProtoMajor != 2 {
		t.Errorf("GET /readyz over %s, TLS %v: want HTTP/2 over TLS", resp.Proto, resp.TLS != nil)
	}

	if _, err := tlsClient(roots(t, newCA(t)), nil, false).Get(base + "/readyz"); err == nil {
		t.Error("a client trusting another CA completed the handshake")
	}
	if resp, err := http.Get("http://" + r.api + "/readyz"); err == nil {
		resp.Body.Close()
		if resp.StatusCode == 200 {
			t.Error("plain HTTP on the TLS listener answered 200")
		}
	}
	for _, v := range []uint16{tls.VersionTLS10, tls.VersionTLS11} {
		conn, err := tls.Dial("tcp", r.api, &tls.Config{RootCAs: roots(t, p.ca), MinVersion: v, MaxVersion: v, ServerName: "localhost"})
		if err == nil {
			conn.Close()
			t.Errorf("TLS version %x accepted, want 1.2 at least", v)
		}
	}
}

func TestAPIClientCertificates(t *testing.T) {
	p := newPKI(t)
	clientCA := newCA(t)
	bundle := filepath.Join(p.dir, "client-ca.crt")
	if err := os.WriteFile(bundle, clientCA.CertPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	r := startTLS(t, p, func(c *config.Config) { c.API.TLS.ClientCAFile = bundle })
	url := "https://" + r.api + "/readyz"
	if _, err := tlsClient(roots(t, p.ca), nil, false).Get(url); err == nil {
		t.Error("a client without a certificate was served")
	}
	cert := clientCert(t, clientCA)
	harness.Eventually(t, "a client with a certificate of the client CA is served over HTTP/2", 10*time.Second, func() error {
		resp, err := tlsClient(roots(t, p.ca), &cert, false).Get(url)
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode != 200 || resp.ProtoMajor != 2 {
			return fmt.Errorf("GET /readyz: %d over %s", resp.StatusCode, resp.Proto)
		}
		return nil
	})
	other := clientCert(t, newCA(t))
	if _, err := tlsClient(roots(t, p.ca), &other, false).Get(url); err == nil {
		t.Error("a client with a certificate of another CA was served")
	}
}

func TestAPITLSBadFilesRefusedAtStart(t *testing.T) {
	p := newPKI(t)
	garbage := filepath.Join(p.dir, "garbage")
	os.WriteFile(garbage, []byte("garbage"), 0o600)
	tests := map[string]struct {
		tls  config.APITLS
		want string
	}{
		"missing cert": {config.APITLS{CertFile: filepath.Join(p.dir, "nope"), KeyFile: p.keyFile}, "api.tls.cert_file"},
		"garbage key":  {config.APITLS{CertFile: p.certFile, KeyFile: garbage}, "api.tls.cert_file, api.tls.key_file"},
		"garbage CA":   {config.APITLS{CertFile: p.certFile, KeyFile: p.keyFile, ClientCAFile: garbage}, "api.tls.client_ca_file"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			cfg := config.Default()
			cfg.Listen, cfg.DebugListen, cfg.DataDir = "127.0.0.1:0", "", t.TempDir()
			cfg.API.TLS = tc.tls
			err := Run(context.Background(), cfg, NewLogger(cfg.Log, io.Discard), nil)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("Run: %v, want an error naming %s", err, tc.want)
			}
		})
	}
}

// TestCertificateRotationUnderLoad: while clients write continuously over
// verified TLS (trusting a bundle of the old and the new CA), the server's
// leaf is replaced by another of the same CA and then by one of a new CA.
// No request fails, the server is the same one throughout, and new
// handshakes see each new certificate within a few seconds.
func TestCertificateRotationUnderLoad(t *testing.T) {
	p := newPKI(t)
	newRoot := newCA(t)
	r := startTLS(t, p, nil)
	base := "https://" + r.api
	bundle := roots(t, p.ca, newRoot)

	ctx, stopLoad := context.WithCancel(context.Background())
	type result struct {
		ok   int
		errs []error
	}
	results := make(chan result)
	const writers = 4
	for w := range writers {
		// Half the writers keep their connections (HTTP/2), half make a
		// new handshake for every request.
		c := tlsClient(bundle, nil, w%2 == 0)
		go func() {
			var res result
			for i := 0; ctx.Err() == nil; i++ {
				code, err := doTLS(c, "PUT", base+"/api/v1/kv/rotate/"+string(rune('a'+w)), "v")
				switch {
				case err != nil:
					res.errs = append(res.errs, err)
				case code != 200 && code != 201:
					res.errs = append(res.errs, errors.New(http.StatusText(code)))
				default:
					res.ok++
				}
			}
			results <- res
		}()
	}
	waitServed := func(want string, pool *x509.CertPool) {
		t.Helper()
		harness.Eventually(t, "new handshakes see serial "+want, 10*time.Second, func() error {
			got, err := servedSerial(r.api, pool)
			if err == nil && got != want {
				err = fmt.Errorf("served serial %s", got)
			}
			return err
		})
	}

	// The first rotation stops halfway, the new certificate beside the old
	// key, until the server has seen (and refused) the mismatched pair.
	second := issue(t, p.ca)
	p.install(t, certs.Pair{CertPEM: second.CertPEM, KeyPEM: mustRead(t, p.keyFile)})
	harness.Eventually(t, "the half-replaced pair is refused", 10*time.Second, func() error {
		if !strings.Contains(r.logs.String(), "TLS certificate reload failed") {
			return errors.New("no reload failure logged yet")
		}
		return nil
	})
	p.install(t, second)
	waitServed(serialOf(t, second), bundle)
	third := issue(t, newRoot)
	p.install(t, third)
	waitServed(serialOf(t, third), bundle)
	if _, err := servedSerial(r.api, roots(t, p.ca)); err == nil {
		t.Error("a client trusting only the old CA accepted the new CA's leaf: verification is off")
	}
	// A little more load on the new certificate.
	for _, writer := range []int{0, 1} {
		c := tlsClient(bundle, nil, writer == 0)
		if code, err := doTLS(c, "PUT", base+"/api/v1/kv/rotate/after", "v"); err != nil || code != 200 && code != 201 {
			t.Errorf("after rotation: %d, %v", code, err)
		}
	}
	stopLoad()
	total := 0
	for range writers {
		res := <-results
		total += res.ok
		for _, err := range res.errs {
			if !errors.Is(err, context.Canceled) {
				t.Errorf("request failed during rotation: %v", err)
			}
		}
	}
	if total < 20 {
		t.Errorf("only %d requests succeeded during the rotation: not much load", total)
	}
	select {
	case err := <-r.done:
		t.Fatalf("the server stopped during the rotation: %v", err)
	default:
	}
	logs := r.logs.String()
	if n := strings.Count(logs, `"msg":"listening","listener":"api"`); n != 1 {
		t.Errorf("the API listener started %d times, want once (no restart)", n)
	}
	if n := strings.Count(logs, "TLS certificate reloaded"); n < 2 {
		t.Errorf("%d reloads logged, want 2 or more", n)
	}
	t.Logf("%d writes during two rotations", total)
}

func mustRead(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// clientCert issues a client-auth certificate from ca.
func clientCert(t *testing.T, ca *certs.CA) tls.Certificate {
	t.Helper()
	p, err := ca.IssueClient("client", time.Hour, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	cert, err := tls.X509KeyPair(p.CertPEM, p.KeyPEM)
	if err != nil {
		t.Fatal(err)
	}
	return cert
}
