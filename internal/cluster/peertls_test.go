package cluster

import (
	"bufio"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
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
	"kvstore.dev/kvstore/test/harness"
)

const testClusterName = "test"

// testPKI makes peer certificates in a directory of the test's: a CA, and
// for each node id a certificate, a key and a CA bundle file of its own, so
// that a test can rotate one node's files while the others keep theirs. It
// is safe for concurrent use.
type testPKI struct {
	t   *testing.T
	dir string
	ca  *certs.CA

	mu     sync.Mutex
	leaves map[string]*x509.Certificate // by node id: the leaf last written
}

func newTestPKI(t *testing.T) *testPKI {
	t.Helper()
	return &testPKI{t: t, dir: t.TempDir(), ca: newTestCA(t), leaves: map[string]*x509.Certificate{}}
}

func newTestCA(t *testing.T) *certs.CA {
	t.Helper()
	ca, err := certs.NewCA("test peer CA", time.Hour, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	return ca
}

// files are node id's peer TLS files (written by write).
func (p *testPKI) files(id string) PeerTLS {
	return PeerTLS{
		CertFile: filepath.Join(p.dir, id+".crt"), KeyFile: filepath.Join(p.dir, id+".key"), CAFile: filepath.Join(p.dir, id+"-ca.crt"),
	}
}

// apply points cfg at its node's files, writing a leaf from p's CA and a
// bundle of p's CA the first time.
func (p *testPKI) apply(cfg *Config) {
	p.mu.Lock()
	_, ok := p.leaves[cfg.NodeID]
	p.mu.Unlock()
	if !ok {
		p.writeLeaf(cfg.NodeID, p.ca, testClusterName)
		p.writeBundle(cfg.NodeID, p.ca)
	}
	cfg.PeerTLS = p.files(cfg.NodeID)
}

// writeLeaf issues id a new leaf from ca for cluster and installs it, key
// first, each file by a rename, as a tool replacing them would.
func (p *testPKI) writeLeaf(id string, ca *certs.CA, cluster string) *x509.Certificate {
	p.t.Helper()
	pair, err := ca.IssuePeer(cluster, id, []string{"127.0.0.1"}, time.Hour, time.Now())
	if err != nil {
		p.t.Fatal(err)
	}
	f := p.files(id)
	writeAtomic(p.t, f.KeyFile, pair.KeyPEM)
	writeAtomic(p.t, f.CertFile, pair.CertPEM)
	leaf, err := certs.ParseCert(pair.CertPEM)
	if err != nil {
		p.t.Fatal(err)
	}
	p.mu.Lock()
	p.leaves[id] = leaf
	p.mu.Unlock()
	return leaf
}

// writeBundle installs a CA bundle of cas as id's.
func (p *testPKI) writeBundle(id string, cas ...*certs.CA) {
	p.t.Helper()
	var b []byte
	for _, ca := range cas {
		b = append(b, ca.CertPEM...)
	}
	writeAtomic(p.t, p.files(id).CAFile, b)
}

func (p *testPKI) leaf(id string) *x509.Certificate {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.leaves[id]
}

func writeAtomic(t *testing.T, path string, data []byte) {
	t.Helper()
	if err := os.WriteFile(path+".tmp", data, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(path+".tmp", path); err != nil {
		t.Fatal(err)
	}
}

// clientTLS is a TLS client configuration presenting a leaf from ca for
// cluster (none when ca is nil) and trusting any server: the server's
// verdict is what the tests look at.
func clientTLS(t *testing.T, ca *certs.CA, cluster string) *tls.Config {
	t.Helper()
	cfg := &tls.Config{MinVersion: tls.VersionTLS13, InsecureSkipVerify: true}
	if ca != nil {
		pair, err := ca.IssuePeer(cluster, "probe", nil, time.Hour, time.Now())
		if err != nil {
			t.Fatal(err)
		}
		cert, err := tls.X509KeyPair(pair.CertPEM, pair.KeyPEM)
		if err != nil {
			t.Fatal(err)
		}
		cfg.Certificates = []tls.Certificate{cert}
	}
	return cfg
}

// probe connects to a peer port with cfg, runs the token handshake inside
// TLS and one peer request, and returns the certificate the server showed.
func probe(addr string, cfg *tls.Config, token string) (*x509.Certificate, error) {
	raw, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		return nil, err
	}
	defer raw.Close()
	_ = raw.SetDeadline(time.Now().Add(10 * time.Second))
	tc := tls.Client(raw, cfg)
	if err := tc.Handshake(); err != nil {
		return nil, err
	}
	server := tc.ConnectionState().PeerCertificates[0]
	// In TLS 1.3 the server judges the client's certificate after the
	// client's handshake is done: a refusal shows on the next read.
	if err := answerChallenge(tc, kindHTTP, []byte(token)); err != nil {
		return server, err
	}
	if _, err := fmt.Fprintf(tc, "GET /peer/v1/status HTTP/1.1\r\nHost: x\r\n\r\n"); err != nil {
		return server, err
	}
	br := bufio.NewReader(tc)
	line, err := br.ReadString('\n')
	if err != nil {
		return server, err
	}
	if !strings.HasPrefix(line, "HTTP/1.1 200") {
		return server, fmt.Errorf("answer %q", line)
	}
	return server, nil
}

// startTLSMux serves a test mux with peer TLS from pki's files for node
// "n0".
func startTLSMux(t *testing.T, pki *testPKI) (*peerMux, *testlog.Buffer) {
	t.Helper()
	cfg := Config{NodeID: "n0"}
	pki.apply(&cfg)
	logs := &testlog.Buffer{}
	pt, err := newPeerTLS(cfg.PeerTLS, "", slog.New(slog.NewTextHandler(logs, nil)))
	if err != nil {
		t.Fatal(err)
	}
	m, muxLogs := startTestMuxAuth(t, &peerAuth{token: []byte(muxTestToken), tls: pt}, defaultMuxOptions(), nil)
	return m, muxLogs
}

// TestPeerTLSRefusesStrangers: with peer TLS on, only a client certificate
// that verifies against the CA bundle and names this node's cluster gets
// through; the token alone is not enough, and a server without the cluster's
// certificate is refused by dialing nodes in turn.
func TestPeerTLSRefusesStrangers(t *testing.T) {
	pki := newTestPKI(t)
	m, logs := startTLSMux(t, pki)
	addr := m.ln.Addr().String()
	for name, tc := range map[string]struct {
		cfg    *tls.Config
		wantOK bool
	}{
		"same CA and cluster":      {cfg: clientTLS(t, pki.ca, testClusterName), wantOK: true},
		"another CA":               {cfg: clientTLS(t, newTestCA(t), testClusterName)},
		"another cluster, same CA": {cfg: clientTLS(t, pki.ca, "other")},
		"no client certificate":    {cfg: clientTLS(t, nil, "")},
		"TLS 1.2 with the right chain": {cfg: func() *tls.Config {
			c := clientTLS(t, pki.ca, testClusterName)
			c.MaxVersion = tls.VersionTLS12
			return c
		}()},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := probe(addr, tc.cfg, muxTestToken)
			if tc.wantOK && err != nil {
				t.Fatalf("refused: %v", err)
			}
			if !tc.wantOK && err == nil {
				t.Fatalf("accepted")
			}
		})
	}
	if !strings.Contains(logs.String(), "TLS handshake failed") {
		t.Errorf("no refusal logged:\n%s", logs)
	}

	// Plaintext with the right token: refused too.
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if err := answerChallenge(conn, kindHTTP, []byte(muxTestToken)); err == nil {
		if err := closedByServer(conn); err != nil {
			t.Errorf("plaintext handshake on a TLS peer port: %v", err)
		}
	}

	// The dialing side refuses a server of another cluster, or of another CA.
	for name, serverCA := range map[string]*certs.CA{"another cluster": pki.ca, "another CA": newTestCA(t)} {
		cluster := "other"
		if name == "another CA" {
			cluster = testClusterName
		}
		other := newTestPKI(t)
		other.ca = serverCA
		cfg := Config{NodeID: "s"}
		other.writeLeaf("s", serverCA, cluster)
		other.writeBundle("s", serverCA, pki.ca)
		cfg.PeerTLS = other.files("s")
		pt, err := newPeerTLS(cfg.PeerTLS, "", slog.New(slog.DiscardHandler))
		if err != nil {
			t.Fatal(err)
		}
		pt.cluster = testClusterName // accepts our clients; its certificate names its own
		sm, _ := startTestMuxAuth(t, &peerAuth{token: []byte(muxTestToken), tls: pt}, defaultMuxOptions(), nil)
		client := &peerAuth{token: []byte(muxTestToken), tls: m.auth.tls}
		if c, err := dial(sm.ln.Addr().String(), kindHTTP, client, 5*time.Second); err == nil {
			c.Close()
			t.Errorf("dialing a server with a certificate of %s: accepted", name)
		} else if !errors.Is(err, errPeerTLS) {
			t.Errorf("dialing a server with a certificate of %s: %v, want a TLS refusal", name, err)
		}
	}
}

// TestPeerTLSReloadKeepsGoodMaterial: a certificate file that does not
// parse, or a leaf of another cluster, is not taken (the previous one
// stays, an error is logged without key material); a good one is.
func TestPeerTLSReloadKeepsGoodMaterial(t *testing.T) {
	pki := newTestPKI(t)
	cfg := Config{NodeID: "n0"}
	pki.apply(&cfg)
	logs := &testlog.Buffer{}
	pt, err := newPeerTLS(cfg.PeerTLS, "", slog.New(slog.NewTextHandler(logs, nil)))
	if err != nil {
		t.Fatal(err)
	}
	first := pki.leaf("n0")
	// serial re-reads the files now (the reloader otherwise looks at most
	// once a second) and returns the serving leaf's serial.
	serial := func() string {
		_ = pt.cert.Reload() // a refusal is logged, and counted below
		cert, _ := pt.material()
		return cert.Leaf.SerialNumber.String()
	}
	if got := serial(); got != first.SerialNumber.String() {
		t.Fatalf("serial %s, want %s", got, first.SerialNumber)
	}
	keyPEM, _ := os.ReadFile(cfg.PeerTLS.KeyFile)
	writeAtomic(t, cfg.PeerTLS.CertFile, []byte("-----BEGIN CERTIFICATE-----\nnot base64\n-----END CERTIFICATE-----\n"))
	if got := serial(); got != first.SerialNumber.String() {
		t.Errorf("after a broken certificate: serial %s, want the previous %s", got, first.SerialNumber)
	}
	pki.writeLeaf("n0", pki.ca, "other")
	if got := serial(); got != first.SerialNumber.String() {
		t.Errorf("after a leaf of another cluster: serial %s, want the previous %s", got, first.SerialNumber)
	}
	if n := strings.Count(logs.String(), "reload failed"); n != 2 {
		t.Errorf("%d reload errors logged, want 2:\n%s", n, logs)
	}
	if strings.Contains(logs.String(), string(keyPEM[30:60])) || strings.Contains(logs.String(), "PRIVATE KEY") {
		t.Errorf("key material in the log:\n%s", logs)
	}
	next := pki.writeLeaf("n0", pki.ca, testClusterName)
	if got := serial(); got != next.SerialNumber.String() {
		t.Errorf("after a good leaf: serial %s, want the new %s", got, next.SerialNumber)
	}
}

// TestNewPeerTLSChecksClusterName: a configured cluster name must be the
// one in this node's own certificate.
func TestNewPeerTLSChecksClusterName(t *testing.T) {
	pki := newTestPKI(t)
	cfg := Config{NodeID: "n0"}
	pki.apply(&cfg)
	if _, err := newPeerTLS(cfg.PeerTLS, testClusterName, slog.New(slog.DiscardHandler)); err != nil {
		t.Errorf("own cluster name: %v", err)
	}
	if _, err := newPeerTLS(cfg.PeerTLS, "other", slog.New(slog.DiscardHandler)); err == nil || !strings.Contains(err.Error(), "cluster.peer_tls_cert") {
		t.Errorf("another cluster name: %v, want an error naming cluster.peer_tls_cert", err)
	}
}

// TestCleartextPeerWarning: a cluster node without peer TLS warns once at
// start that peer traffic is unencrypted and how to turn on mTLS; one with
// peer TLS, and a single node (no peer port), say nothing of it.
func TestCleartextPeerWarning(t *testing.T) {
	for name, tc := range map[string]struct {
		start func(t *testing.T, tweak func(*Config))
		want  int
	}{
		"token": {want: 1, start: func(t *testing.T, tweak func(*Config)) {
			startNode(t, "n0", t.TempDir(), harness.FreeAddr(t), true, nil, tweak)
		}},
		"mtls": {start: func(t *testing.T, tweak func(*Config)) {
			startNode(t, "n0", t.TempDir(), harness.FreeAddr(t), true, nil, newTestPKI(t).apply, tweak)
		}},
		"single": {start: func(t *testing.T, tweak func(*Config)) { startSingle(t, t.TempDir(), tweak) }},
	} {
		t.Run(name, func(t *testing.T) {
			logs := &testlog.Buffer{}
			tc.start(t, func(c *Config) { c.Logger = slog.New(slog.NewTextHandler(logs, nil)) })
			got := strings.Count(logs.String(), "NOT encrypted")
			if got != tc.want {
				t.Errorf("%d cleartext warnings, want %d:\n%s", got, tc.want, logs)
			}
			if tc.want > 0 && (!strings.Contains(logs.String(), "level=WARN") || !strings.Contains(logs.String(), "--peer-tls-cert")) {
				t.Errorf("the warning is not a WARN naming the flags:\n%s", logs)
			}
		})
	}
}

// TestConfigValidatePeerTLS: the node's own check of the peer TLS fields
// (the server's config has checked them already).
func TestConfigValidatePeerTLS(t *testing.T) {
	for name, tc := range map[string]struct {
		tweak func(*Config)
		want  string // "": valid
	}{
		"off":              {tweak: func(*Config) {}},
		"all three":        {tweak: func(c *Config) { c.PeerTLS = PeerTLS{CertFile: "c", KeyFile: "k", CAFile: "ca"} }},
		"no CA":            {tweak: func(c *Config) { c.PeerTLS = PeerTLS{CertFile: "c", KeyFile: "k"} }, want: "cluster.peer_tls: cert, key and CA files must be set together"},
		"only the key":     {tweak: func(c *Config) { c.PeerTLS = PeerTLS{KeyFile: "k"} }, want: "cluster.peer_tls:"},
		"a bad name":       {tweak: func(c *Config) { c.ClusterName = "Not_A_Name" }, want: `cluster.name: "Not_A_Name"`},
		"a good name":      {tweak: func(c *Config) { c.ClusterName = "prod-1" }},
		"single, no check": {tweak: func(c *Config) { c.Single, c.PeerTLS = true, PeerTLS{KeyFile: "k"} }},
	} {
		t.Run(name, func(t *testing.T) {
			cfg := fastConfig("n0", t.TempDir(), "127.0.0.1:7000", true, nil)
			tc.tweak(&cfg)
			err := cfg.Validate()
			if tc.want == "" && err != nil {
				t.Fatalf("refused: %v", err)
			}
			if tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)) {
				t.Fatalf("err = %v, want it to mention %q", err, tc.want)
			}
		})
	}
}
