package tlsreload

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"kvstore.dev/kvstore/internal/certs"
	"kvstore.dev/kvstore/internal/testlog"
)

// fakeClock is the reloader's clock in tests: time moves only when told.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *fakeClock) Add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

func mustCA(t *testing.T) *certs.CA {
	t.Helper()
	ca, err := certs.NewCA("test CA", time.Hour, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	return ca
}

func mustLeaf(t *testing.T, ca *certs.CA) certs.Pair {
	t.Helper()
	p, err := ca.IssueServer([]string{"localhost", "127.0.0.1"}, time.Hour, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func writeFile(t *testing.T, path string, b []byte) {
	t.Helper()
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

func writePair(t *testing.T, dir string, p certs.Pair) (certFile, keyFile string) {
	t.Helper()
	certFile, keyFile = filepath.Join(dir, "tls.crt"), filepath.Join(dir, "tls.key")
	writeFile(t, certFile, p.CertPEM)
	writeFile(t, keyFile, p.KeyPEM)
	return certFile, keyFile
}

func serial(t *testing.T, certPEM []byte) string {
	t.Helper()
	c, err := certs.ParseCert(certPEM)
	if err != nil {
		t.Fatal(err)
	}
	return c.SerialNumber.String()
}

// handshake runs a real TLS handshake over an in-memory pipe between a
// server with cfg and a client trusting roots (and presenting clientCert,
// when not nil), and returns the serial of the certificate the client saw.
func handshake(t *testing.T, cfg *tls.Config, roots *x509.CertPool, clientCert *tls.Certificate) (string, error) {
	t.Helper()
	ccfg := &tls.Config{RootCAs: roots, ServerName: "localhost"}
	if clientCert != nil {
		ccfg.Certificates = []tls.Certificate{*clientCert}
	}
	return handshakeWith(t, cfg, ccfg)
}

// handshakeWith is handshake with the client's whole configuration.
func handshakeWith(t *testing.T, cfg, ccfg *tls.Config) (string, error) {
	t.Helper()
	sc, cc := net.Pipe()
	srv := tls.Server(sc, cfg)
	errc := make(chan error, 1)
	go func() { errc <- srv.Handshake(); sc.Close() }()
	cli := tls.Client(cc, ccfg)
	err := cli.Handshake()
	if err == nil {
		// TLS 1.3 reports a refused client certificate on the first read.
		cli.SetReadDeadline(time.Now().Add(5 * time.Second))
		_, err = cli.Read(make([]byte, 1))
		if errors.Is(err, net.ErrClosed) || err != nil && strings.Contains(err.Error(), "EOF") {
			err = nil
		}
	}
	cc.Close()
	serr := <-errc
	if err == nil {
		err = serr
	}
	if err != nil {
		return "", err
	}
	return cli.ConnectionState().PeerCertificates[0].SerialNumber.String(), nil
}

func pool(t *testing.T, pems ...[]byte) *x509.CertPool {
	t.Helper()
	p := x509.NewCertPool()
	for _, b := range pems {
		if !p.AppendCertsFromPEM(b) {
			t.Fatal("bad PEM")
		}
	}
	return p
}

func TestReloaderServesReplacedFiles(t *testing.T) {
	ca := mustCA(t)
	first, second := mustLeaf(t, ca), mustLeaf(t, ca)
	dir := t.TempDir()
	certFile, keyFile := writePair(t, dir, first)
	logs := &testlog.Buffer{}
	r, err := New(certFile, keyFile, slog.New(slog.NewTextHandler(logs, nil)))
	if err != nil {
		t.Fatal(err)
	}
	clock := &fakeClock{t: time.Now()}
	r.now = clock.Now
	cfg := ServerConfig(r, nil)
	roots := pool(t, ca.CertPEM)

	got, err := handshake(t, cfg, roots, nil)
	if err != nil || got != serial(t, first.CertPEM) {
		t.Fatalf("first handshake: serial %s, %v; want the first leaf", got, err)
	}
	writePair(t, dir, second)
	if got, _ := handshake(t, cfg, roots, nil); got != serial(t, first.CertPEM) {
		t.Errorf("within Interval of the last check: serial %s, want the first leaf still", got)
	}
	clock.Add(Interval)
	if got, err := handshake(t, cfg, roots, nil); err != nil || got != serial(t, second.CertPEM) {
		t.Fatalf("after Interval: serial %s, %v; want the second leaf", got, err)
	}
	if !strings.Contains(logs.String(), "TLS certificate reloaded") {
		t.Errorf("no reload logged:\n%s", logs)
	}
	if strings.Contains(logs.String(), "PRIVATE KEY") {
		t.Errorf("the log holds key material:\n%s", logs)
	}
}

func TestReloaderKeepsOldPairOnBadFiles(t *testing.T) {
	ca := mustCA(t)
	good, other := mustLeaf(t, ca), mustLeaf(t, ca)
	tests := map[string]struct {
		cert, key []byte // nil: delete the file
	}{
		"garbage key":           {cert: other.CertPEM, key: []byte("not a key")},
		"key of another cert":   {cert: other.CertPEM, key: good.KeyPEM},
		"truncated certificate": {cert: other.CertPEM[:len(other.CertPEM)/2], key: other.KeyPEM},
		"certificate removed":   {cert: nil, key: other.KeyPEM},
		"empty files":           {cert: []byte{}, key: []byte{}},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			certFile, keyFile := writePair(t, dir, good)
			logs := &testlog.Buffer{}
			r, err := New(certFile, keyFile, slog.New(slog.NewTextHandler(logs, nil)))
			if err != nil {
				t.Fatal(err)
			}
			clock := &fakeClock{t: time.Now()}
			r.now = clock.Now
			if tc.cert == nil {
				os.Remove(certFile)
			} else {
				writeFile(t, certFile, tc.cert)
			}
			writeFile(t, keyFile, tc.key)
			for range 3 {
				clock.Add(Interval)
				got, err := handshake(t, ServerConfig(r, nil), pool(t, ca.CertPEM), nil)
				if err != nil || got != serial(t, good.CertPEM) {
					t.Fatalf("after a bad reload: serial %s, %v; want the old leaf", got, err)
				}
			}
			if n := strings.Count(logs.String(), "reload failed"); n != 1 {
				t.Errorf("%d reload errors logged for the same bad files, want 1:\n%s", n, logs)
			}
			if err := r.Reload(); err == nil {
				t.Error("Reload of bad files: no error")
			}
			writePair(t, dir, other)
			clock.Add(Interval)
			if got, _ := handshake(t, ServerConfig(r, nil), pool(t, ca.CertPEM), nil); got != serial(t, other.CertPEM) {
				t.Errorf("after the files were fixed: serial %s, want the new leaf", got)
			}
		})
	}
}

func TestNewRefusesBadFiles(t *testing.T) {
	ca := mustCA(t)
	p := mustLeaf(t, ca)
	dir := t.TempDir()
	certFile, keyFile := writePair(t, dir, p)
	missing := filepath.Join(dir, "missing.pem")
	garbage := filepath.Join(dir, "garbage.pem")
	writeFile(t, garbage, []byte("garbage"))
	tests := map[string]struct {
		cert, key, want string
	}{
		"missing cert":  {missing, keyFile, "missing.pem"},
		"missing key":   {certFile, missing, "missing.pem"},
		"garbage key":   {certFile, garbage, "garbage.pem"},
		"key as a cert": {keyFile, keyFile, "tls.key"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			_, err := New(tc.cert, tc.key, nil)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("New: %v, want an error naming %s", err, tc.want)
			}
		})
	}
	if _, err := NewCAPool(garbage, nil); err == nil {
		t.Error("NewCAPool(garbage): no error")
	}
}

// TestClientCAsReload: a server requiring client certificates accepts a
// client of a new CA once the bundle file lists it, and keeps the old
// bundle when the file is broken.
func TestClientCAsReload(t *testing.T) {
	serverCA, oldCA, newCA := mustCA(t), mustCA(t), mustCA(t)
	dir := t.TempDir()
	certFile, keyFile := writePair(t, dir, mustLeaf(t, serverCA))
	r, err := New(certFile, keyFile, nil)
	if err != nil {
		t.Fatal(err)
	}
	bundle := filepath.Join(dir, "client-ca.crt")
	writeFile(t, bundle, oldCA.CertPEM)
	cas, err := NewCAPool(bundle, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	clock := &fakeClock{t: time.Now()}
	cas.now = clock.Now
	cfg := ServerConfig(r, cas)
	roots := pool(t, serverCA.CertPEM)
	client := func(ca *certs.CA) *tls.Certificate {
		// A server-auth leaf is refused as a client certificate; sign a
		// client one with the CA's key.
		p := mustClientLeaf(t, ca)
		c, err := tls.X509KeyPair(p.CertPEM, p.KeyPEM)
		if err != nil {
			t.Fatal(err)
		}
		return &c
	}
	oldClient, newClient := client(oldCA), client(newCA)

	if _, err := handshake(t, cfg, roots, oldClient); err != nil {
		t.Fatalf("client of the listed CA: %v", err)
	}
	if _, err := handshake(t, cfg, roots, newClient); err == nil {
		t.Fatal("client of an unlisted CA was accepted")
	}
	if _, err := handshake(t, cfg, roots, nil); err == nil {
		t.Fatal("client without a certificate was accepted")
	}
	writeFile(t, bundle, append(append([]byte{}, oldCA.CertPEM...), newCA.CertPEM...))
	clock.Add(Interval)
	if _, err := handshake(t, cfg, roots, newClient); err != nil {
		t.Fatalf("client of the CA added to the bundle: %v", err)
	}
	writeFile(t, bundle, []byte("broken"))
	clock.Add(Interval)
	if _, err := handshake(t, cfg, roots, newClient); err != nil {
		t.Fatalf("after a broken bundle the previous one is kept: %v", err)
	}
}

// mustClientLeaf issues a client-auth certificate from ca.
func mustClientLeaf(t *testing.T, ca *certs.CA) certs.Pair {
	t.Helper()
	p, err := ca.IssueClient("client", time.Hour, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// TestClientConfigFollowsBundle: a client built once trusts a server of a
// new CA as soon as its bundle file lists that CA, still checks the name,
// and presents its reloaded pair to a server that asks.
func TestClientConfigFollowsBundle(t *testing.T) {
	oldCA, newCA, clientCA := mustCA(t), mustCA(t), mustCA(t)
	dir := t.TempDir()
	certFile, keyFile := writePair(t, dir, mustLeaf(t, newCA))
	srv, err := New(certFile, keyFile, nil)
	if err != nil {
		t.Fatal(err)
	}
	bundle := filepath.Join(dir, "roots.crt")
	writeFile(t, bundle, oldCA.CertPEM)
	roots, err := NewCAPool(bundle, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	clock := &fakeClock{t: time.Now()}
	roots.now = clock.Now
	clientDir := t.TempDir()
	cp := mustClientLeaf(t, clientCA)
	writeFile(t, filepath.Join(clientDir, "c.crt"), cp.CertPEM)
	writeFile(t, filepath.Join(clientDir, "c.key"), cp.KeyPEM)
	clientPair, err := New(filepath.Join(clientDir, "c.crt"), filepath.Join(clientDir, "c.key"), nil)
	if err != nil {
		t.Fatal(err)
	}
	clientCAs := filepath.Join(dir, "clients.crt")
	writeFile(t, clientCAs, clientCA.CertPEM)
	cas, err := NewCAPool(clientCAs, nil)
	if err != nil {
		t.Fatal(err)
	}
	serverCfg := ServerConfig(srv, cas)

	client := ClientConfig(roots, clientPair, "localhost")
	if _, err := handshakeWith(t, serverCfg, client); err == nil {
		t.Fatal("a server of a CA not in the bundle was trusted")
	}
	writeFile(t, bundle, append(append([]byte{}, oldCA.CertPEM...), newCA.CertPEM...))
	clock.Add(Interval)
	if _, err := handshakeWith(t, serverCfg, client); err != nil {
		t.Fatalf("after the bundle gained the server's CA: %v", err)
	}
	if _, err := handshakeWith(t, serverCfg, ClientConfig(roots, clientPair, "other.example")); err == nil {
		t.Error("a certificate for localhost was accepted for other.example")
	}
	if _, err := handshakeWith(t, serverCfg, ClientConfig(roots, nil, "localhost")); err == nil {
		t.Error("the server accepted a client without a certificate")
	}
}

// TestNewVerifiedAppliesTheRule: a pair the caller's rule refuses fails
// NewVerified with the certificate file named, and a refused replacement
// keeps the accepted pair in service while an accepted one is served.
func TestNewVerifiedAppliesTheRule(t *testing.T) {
	ca := mustCA(t)
	dir := t.TempDir()
	first, refused, second := mustLeaf(t, ca), mustLeaf(t, ca), mustLeaf(t, ca)
	bad := serial(t, refused.CertPEM)
	rule := func(leaf *x509.Certificate) error {
		if leaf.SerialNumber.String() == bad {
			return errors.New("refused by the rule")
		}
		return nil
	}
	certFile, keyFile := writePair(t, dir, refused)
	if _, err := NewVerified(certFile, keyFile, slog.New(slog.DiscardHandler), rule); err == nil ||
		!strings.Contains(err.Error(), "refused by the rule") || !strings.Contains(err.Error(), "tls.crt") {
		t.Fatalf("NewVerified on a refused pair: %v, want the rule's error naming tls.crt", err)
	}
	writePair(t, dir, first)
	r, err := NewVerified(certFile, keyFile, slog.New(slog.DiscardHandler), rule)
	if err != nil {
		t.Fatal(err)
	}
	for _, step := range []struct {
		write   certs.Pair
		wantErr bool
		serving certs.Pair
	}{
		{refused, true, first},
		{second, false, second},
	} {
		writePair(t, dir, step.write)
		if err := r.Reload(); (err != nil) != step.wantErr {
			t.Errorf("Reload: %v, want an error: %v", err, step.wantErr)
		}
		if got, want := r.Certificate().Leaf.SerialNumber.String(), serial(t, step.serving.CertPEM); got != want {
			t.Errorf("serving serial %s, want %s", got, want)
		}
	}
}

// TestCAPoolReload: Reload takes a new bundle at once and keeps the
// previous one when the file breaks.
func TestCAPoolReload(t *testing.T) {
	oldCA, newCA := mustCA(t), mustCA(t)
	file := filepath.Join(t.TempDir(), "ca.crt")
	writeFile(t, file, oldCA.CertPEM)
	p, err := NewCAPool(file, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	trusts := func(ca *certs.CA) bool {
		_, err := ca.Cert.Verify(x509.VerifyOptions{Roots: p.Pool()})
		return err == nil
	}
	writeFile(t, file, newCA.CertPEM)
	if err := p.Reload(); err != nil || !trusts(newCA) || trusts(oldCA) {
		t.Errorf("after a new bundle: err %v, trusts new %v, old %v; want nil, true, false", err, trusts(newCA), trusts(oldCA))
	}
	writeFile(t, file, []byte("garbage"))
	if err := p.Reload(); err == nil || !trusts(newCA) {
		t.Errorf("after a broken bundle: err %v, trusts the previous %v; want an error and true", err, trusts(newCA))
	}
}
