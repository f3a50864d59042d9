// Package tlsreload serves TLS certificates and CA bundles that are replaced
// on disk while the process runs: a cert-manager or kubelet Secret update, a
// `kvstore certs` re-issue, an operator copying new files in.
//
// A Reloader holds a certificate and key pair loaded from two files and
// hands it to crypto/tls through GetCertificate. At most once per Interval
// (one second) a handshake re-reads both files; when their contents changed
// and they parse as a matching pair, the new pair is served from the next
// handshake on. Connections already established keep the certificate they
// were made with, so nothing in flight is dropped. A file that is missing,
// half-written or does not match its partner keeps the old pair in service
// and is logged once (per distinct content) as an error.
//
// NewVerified adds a caller's rule to the pair's parse (say, that the leaf
// names this node's cluster): a leaf the rule refuses fails NewVerified and,
// later, is kept out of service like a file that does not parse.
//
// A CAPool does the same for a PEM bundle of CA certificates (client CAs of
// a server that verifies clients, or the roots a client trusts): Pool
// returns the bundle as of the last check.
//
// ServerConfig assembles both into a *tls.Config for a listener: TLS 1.2 at
// least, Go's default cipher suites, and (with a client CA pool) a required
// and verified client certificate checked against the current bundle.
// ClientConfig is the other side: a client verifying servers against the
// current bundle and presenting a reloaded pair of its own.
//
// Everything here is safe for concurrent use and needs no goroutine or Close:
// the checks ride on the handshakes (or Pool calls) themselves.
package tlsreload

import (
	"bytes"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"time"
)

// Interval is the least time between two checks of the same files.
const Interval = time.Second

// Reloader serves the certificate and key in two files, re-read when they
// change. Create it with New.
type Reloader struct {
	certFile, keyFile string
	verify            func(leaf *x509.Certificate) error // nil: any pair that parses
	log               *slog.Logger
	now               func() time.Time // a test seam

	mu        sync.Mutex
	cert      *tls.Certificate // never nil after New
	sum       [sha256.Size]byte
	bad       string // the last refusal (content digest and error), logged once
	lastCheck time.Time
}

// New loads the pair in certFile and keyFile (PEM) and returns a Reloader
// serving it. It fails when the files cannot be read or do not form a pair;
// the error names the file. log receives reloads and refused files (paths
// and certificate details only, never key material); nil means
// slog.Default().
func New(certFile, keyFile string, log *slog.Logger) (*Reloader, error) {
	return NewVerified(certFile, keyFile, log, nil)
}

// NewVerified is New with a rule every pair must pass before it is served,
// at start and at each reload; verify's error is returned (New) or logged
// (reload) with the certificate file's name. nil verify accepts any pair.
func NewVerified(certFile, keyFile string, log *slog.Logger, verify func(leaf *x509.Certificate) error) (*Reloader, error) {
	if log == nil {
		log = slog.Default()
	}
	r := &Reloader{certFile: certFile, keyFile: keyFile, verify: verify, log: log, now: time.Now}
	certPEM, keyPEM, sum, err := r.read()
	if err != nil {
		return nil, err
	}
	cert, err := r.parse(certPEM, keyPEM)
	if err != nil {
		return nil, err
	}
	r.cert, r.sum, r.lastCheck = cert, sum, r.now()
	return r, nil
}

// GetCertificate returns the current pair, after re-reading the files if
// the last check is more than Interval ago. Its signature is
// tls.Config.GetCertificate's; it never fails once New succeeded.
func (r *Reloader) GetCertificate(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	return r.current(), nil
}

// Certificate returns the pair being served, checking the files first when
// the last check is more than Interval ago.
func (r *Reloader) Certificate() *tls.Certificate { return r.current() }

// Reload re-reads the files now, whatever Interval says. It returns the
// error that kept the old pair in service, if any.
func (r *Reloader) Reload() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.checkLocked()
}

func (r *Reloader) current() *tls.Certificate {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.now().Sub(r.lastCheck) >= Interval {
		_ = r.checkLocked() // logged inside
	}
	return r.cert
}

// checkLocked re-reads the files and swaps the pair when they changed and
// parse. r.mu is held.
func (r *Reloader) checkLocked() error {
	r.lastCheck = r.now()
	certPEM, keyPEM, sum, err := r.read()
	if err == nil && sum == r.sum {
		return nil
	}
	var cert *tls.Certificate
	if err == nil {
		cert, err = r.parse(certPEM, keyPEM)
	}
	if err != nil {
		if bad := fmt.Sprintf("%x %v", sum, err); bad != r.bad {
			r.bad = bad
			r.log.Error("TLS certificate reload failed; serving the previous one", "cert_file", r.certFile, "key_file", r.keyFile, "err", err)
		}
		return err
	}
	r.cert, r.sum, r.bad = cert, sum, ""
	r.log.Info("TLS certificate reloaded", "cert_file", r.certFile, "subject", cert.Leaf.Subject.String(),
		"serial", cert.Leaf.SerialNumber.Text(16), "not_after", cert.Leaf.NotAfter.UTC().Format(time.RFC3339))
	return nil
}

// read returns both files and the digest of their contents together.
func (r *Reloader) read() (certPEM, keyPEM []byte, sum [sha256.Size]byte, err error) {
	if certPEM, err = os.ReadFile(r.certFile); err != nil {
		return nil, nil, sum, fmt.Errorf("certificate: %w", err)
	}
	if keyPEM, err = os.ReadFile(r.keyFile); err != nil {
		return nil, nil, sum, fmt.Errorf("key: %w", err)
	}
	h := sha256.New()
	h.Write(certPEM)
	h.Write([]byte{0})
	h.Write(keyPEM)
	copy(sum[:], h.Sum(nil))
	return certPEM, keyPEM, sum, nil
}

// parse makes a pair of the two files' contents and applies r.verify.
func (r *Reloader) parse(certPEM, keyPEM []byte) (*tls.Certificate, error) {
	cert, err := parsePair(certPEM, keyPEM, r.certFile, r.keyFile)
	if err != nil || r.verify == nil {
		return cert, err
	}
	if err := r.verify(cert.Leaf); err != nil {
		return nil, fmt.Errorf("%s: %w", r.certFile, err)
	}
	return cert, nil
}

func parsePair(certPEM, keyPEM []byte, certFile, keyFile string) (*tls.Certificate, error) {
	cert, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return nil, fmt.Errorf("%s and %s: %w", certFile, keyFile, err)
	}
	if cert.Leaf == nil { // filled in since Go 1.23; kept for clarity
		if cert.Leaf, err = x509.ParseCertificate(cert.Certificate[0]); err != nil {
			return nil, fmt.Errorf("%s: %w", certFile, err)
		}
	}
	return &cert, nil
}

// CAPool is a bundle of PEM CA certificates in one file, re-read when it
// changes. Create it with NewCAPool.
type CAPool struct {
	file string
	log  *slog.Logger
	now  func() time.Time

	mu        sync.Mutex
	pool      *x509.CertPool
	raw       []byte
	bad       string // the last refusal, logged once
	lastCheck time.Time
}

// NewCAPool loads the bundle in file, which must hold at least one
// certificate. log as for New.
func NewCAPool(file string, log *slog.Logger) (*CAPool, error) {
	if log == nil {
		log = slog.Default()
	}
	p := &CAPool{file: file, log: log, now: time.Now}
	raw, pool, err := p.load()
	if err != nil {
		return nil, err
	}
	p.raw, p.pool, p.lastCheck = raw, pool, p.now()
	return p, nil
}

// Pool returns the bundle, re-reading the file first if the last check is
// more than Interval ago. The pool returned is never modified afterwards;
// a bad file keeps the previous pool and is logged.
func (p *CAPool) Pool() *x509.CertPool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.now().Sub(p.lastCheck) >= Interval {
		_ = p.checkLocked() // logged inside
	}
	return p.pool
}

// Reload re-reads the file now, whatever Interval says. It returns the
// error that kept the previous bundle in use, if any.
func (p *CAPool) Reload() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.checkLocked()
}

// checkLocked re-reads the file and swaps the pool when it changed and
// parses. p.mu is held.
func (p *CAPool) checkLocked() error {
	p.lastCheck = p.now()
	raw, pool, err := p.load()
	switch {
	case err != nil:
		if bad := fmt.Sprintf("%x %v", sha256.Sum256(raw), err); bad != p.bad {
			p.bad = bad
			p.log.Error("CA bundle reload failed; using the previous one", "ca_file", p.file, "err", err)
		}
		return err
	case !bytes.Equal(raw, p.raw):
		p.raw, p.pool, p.bad = raw, pool, ""
		p.log.Info("CA bundle reloaded", "ca_file", p.file)
	}
	return nil
}

func (p *CAPool) load() ([]byte, *x509.CertPool, error) {
	raw, err := os.ReadFile(p.file)
	if err != nil {
		return nil, nil, fmt.Errorf("CA bundle: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(raw) {
		return raw, nil, fmt.Errorf("%s: %w", p.file, errNoCerts)
	}
	return raw, pool, nil
}

var errNoCerts = errors.New("no PEM certificate in the CA bundle")

// ServerConfig returns a listener's TLS configuration serving r's pair:
// TLS 1.2 at least, Go's default cipher suites and curves, no application
// protocols (http.Server.ServeTLS adds h2 and http/1.1 to it). When clientCAs is not nil every client must present a
// certificate issued by one of its CAs, checked against the bundle as of
// the handshake.
func ServerConfig(r *Reloader, clientCAs *CAPool) *tls.Config {
	cfg := &tls.Config{
		MinVersion:     tls.VersionTLS12,
		GetCertificate: r.GetCertificate,
	}
	if clientCAs == nil {
		return cfg
	}
	cfg.ClientAuth = tls.RequireAndVerifyClientCert
	cfg.ClientCAs = clientCAs.Pool()
	cfg.GetConfigForClient = func(*tls.ClientHelloInfo) (*tls.Config, error) {
		c := cfg.Clone() // cfg as its user completed it (NextProtos)
		c.GetConfigForClient = nil
		c.ClientCAs = clientCAs.Pool()
		return c, nil
	}
	return cfg
}

// ClientConfig returns a client's TLS configuration that verifies servers
// against roots as of each handshake (so that a bundle extended with a new
// CA is trusted without rebuilding the client) for the name serverName,
// or, when serverName is "", the name dialled. When cert is not nil its
// pair is presented to servers that ask for a client certificate. TLS 1.2
// at least. A connection dialled to an IP address has no SNI name: give
// serverName then (a certificate's IP SANs match it too).
//
// crypto/tls cannot take a changing root pool, so the configuration turns
// off the built-in verification (InsecureSkipVerify) and does the same
// verification itself in VerifyConnection: chain to roots, server-auth
// usage, validity, and the name. Do not clear VerifyConnection.
func ClientConfig(roots *CAPool, cert *Reloader, serverName string) *tls.Config {
	cfg := &tls.Config{
		MinVersion:         tls.VersionTLS12,
		ServerName:         serverName,
		InsecureSkipVerify: true, // verified in VerifyConnection, against the current bundle
		VerifyConnection: func(cs tls.ConnectionState) error {
			return verifyServer(cs, roots.Pool(), serverName)
		},
	}
	if cert != nil {
		cfg.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
			return cert.Certificate(), nil
		}
	}
	return cfg
}

// verifyServer does what crypto/tls does for a client that does not skip
// verification.
func verifyServer(cs tls.ConnectionState, roots *x509.CertPool, serverName string) error {
	if len(cs.PeerCertificates) == 0 {
		return errors.New("tlsreload: the server presented no certificate")
	}
	name := serverName
	if name == "" {
		name = cs.ServerName
	}
	if name == "" {
		return errors.New("tlsreload: no server name to verify the certificate for")
	}
	inter := x509.NewCertPool()
	for _, c := range cs.PeerCertificates[1:] {
		inter.AddCert(c)
	}
	_, err := cs.PeerCertificates[0].Verify(x509.VerifyOptions{
		Roots:         roots,
		Intermediates: inter,
		DNSName:       name,
		KeyUsages:     []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	})
	if err != nil {
		return fmt.Errorf("tlsreload: %w", err)
	}
	return nil
}
