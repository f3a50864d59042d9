package cluster

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"syscall"
	"time"

	"kvstore.dev/kvstore/internal/certs"
)

// PeerTLS names the files of mutual TLS on the peer port: this node's
// certificate (a peer certificate with the cluster URI SAN, see
// internal/certs), its key, and the bundle of CAs whose peer certificates
// it accepts. All three set turns peer TLS on; all empty leaves it off.
type PeerTLS struct {
	CertFile, KeyFile, CAFile string
}

// enabled reports whether peer TLS is configured.
func (p PeerTLS) enabled() bool { return p.CertFile != "" || p.KeyFile != "" || p.CAFile != "" }

// peerTLS holds the current peer TLS material and re-reads it from disk
// when one of its files changes: each handshake stats the three files
// (cheap) and reloads them when a file's size, modification time or inode
// differs from the last attempt. A reload that fails (a file that does not
// parse, a key that does not match, a certificate for another cluster)
// keeps the previous material and logs an error once per change. New
// handshakes use the new material; established connections are left
// alone. It is safe for concurrent use.
type peerTLS struct {
	files   PeerTLS
	cluster string // fixed at start
	log     *slog.Logger

	now func() time.Time // for chain verification; a seam for tests

	mu     sync.Mutex
	cur    certs.PeerMaterial
	stamps [3]fileStamp // of the last attempt, good or bad
}

// fileStamp is what a stat says about a file's version.
type fileStamp struct {
	size  int64
	mtime time.Time
	ino   uint64
	err   bool
}

func stampOf(path string) fileStamp {
	fi, err := os.Stat(path)
	if err != nil {
		return fileStamp{err: true}
	}
	s := fileStamp{size: fi.Size(), mtime: fi.ModTime()}
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		s.ino = st.Ino
	}
	return s
}

// newPeerTLS loads the peer TLS files. cluster is this node's cluster name;
// "" takes the one in its certificate. Errors name the config field.
func newPeerTLS(files PeerTLS, cluster string, log *slog.Logger) (*peerTLS, error) {
	p := &peerTLS{files: files, log: log, now: time.Now}
	p.stamps = p.stat()
	m, err := certs.LoadPeer(files.CertFile, files.KeyFile, files.CAFile)
	if err != nil {
		return nil, peerTLSFieldError(err)
	}
	if cluster == "" {
		cluster = m.Cluster
	} else if m.Cluster != cluster {
		return nil, fmt.Errorf("cluster.peer_tls_cert: the certificate is for cluster %q, this node's cluster.name is %q", m.Cluster, cluster)
	}
	p.cluster, p.cur = cluster, m
	return p, nil
}

func peerTLSFieldError(err error) error {
	var fe *certs.PeerFileError
	if errors.As(err, &fe) {
		return fmt.Errorf("cluster.peer_tls_%s: %w", fe.File, fe.Err)
	}
	return fmt.Errorf("cluster.peer_tls: %w", err)
}

func (p *peerTLS) stat() [3]fileStamp {
	return [3]fileStamp{stampOf(p.files.CertFile), stampOf(p.files.KeyFile), stampOf(p.files.CAFile)}
}

// material returns the current material, reloading it first if a file
// changed since the last attempt.
func (p *peerTLS) material() certs.PeerMaterial {
	stamps := p.stat()
	p.mu.Lock()
	defer p.mu.Unlock()
	if stamps == p.stamps {
		return p.cur
	}
	p.stamps = stamps
	m, err := certs.LoadPeer(p.files.CertFile, p.files.KeyFile, p.files.CAFile)
	if err == nil && m.Cluster != p.cluster {
		err = &certs.PeerFileError{File: "cert", Err: fmt.Errorf("the new certificate is for cluster %q, this node's is %q", m.Cluster, p.cluster)}
	}
	if err != nil {
		p.log.Error("peer TLS files changed but do not load: keeping the previous certificate and CA bundle", "err", peerTLSFieldError(err))
		return p.cur
	}
	p.cur = m
	p.log.Info("peer TLS files reloaded", "cert_serial", m.Cert.Leaf.SerialNumber.Text(16), "not_after", m.Cert.Leaf.NotAfter)
	return p.cur
}

// verifyPeer checks a peer's certificate chain against roots for usage and
// that its certificate names this node's cluster.
func (p *peerTLS) verifyPeer(chain []*x509.Certificate, roots *x509.CertPool, usage x509.ExtKeyUsage) error {
	if len(chain) == 0 {
		return errors.New("peer sent no certificate")
	}
	inter := x509.NewCertPool()
	for _, c := range chain[1:] {
		inter.AddCert(c)
	}
	if _, err := chain[0].Verify(x509.VerifyOptions{Roots: roots, Intermediates: inter, KeyUsages: []x509.ExtKeyUsage{usage}, CurrentTime: p.now()}); err != nil {
		return fmt.Errorf("peer certificate: %w", err)
	}
	name, err := certs.ClusterOf(chain[0])
	if err != nil {
		return err
	}
	if name != p.cluster {
		return fmt.Errorf("peer certificate is for cluster %q, not %q", name, p.cluster)
	}
	return nil
}

// serverConfig is the peer port's TLS configuration: TLS 1.3, a client
// certificate required, both verified with the material current at each
// handshake.
func (p *peerTLS) serverConfig() *tls.Config {
	return &tls.Config{
		MinVersion:             tls.VersionTLS13,
		SessionTicketsDisabled: true,
		GetConfigForClient: func(*tls.ClientHelloInfo) (*tls.Config, error) {
			m := p.material()
			return &tls.Config{
				MinVersion: tls.VersionTLS13,
				// Every connection is a full handshake, its certificate
				// checked against the material of the moment; peers pool
				// their connections, so resumption would save little.
				SessionTicketsDisabled: true,
				Certificates:           []tls.Certificate{m.Cert},
				// The chain is verified in VerifyConnection, against the
				// same material, so that one check decides.
				ClientAuth: tls.RequireAnyClientCert,
				VerifyConnection: func(cs tls.ConnectionState) error {
					return p.verifyPeer(cs.PeerCertificates, m.Roots, x509.ExtKeyUsageClientAuth)
				},
			}, nil
		},
	}
}

// clientConfig is a dialing peer's TLS configuration for one connection,
// with the material current now. The server's host name is not checked:
// a peer's identity is its cluster URI (internal/certs), and any member
// may answer at any address.
func (p *peerTLS) clientConfig() *tls.Config {
	m := p.material()
	return &tls.Config{
		MinVersion:         tls.VersionTLS13,
		Certificates:       []tls.Certificate{m.Cert},
		InsecureSkipVerify: true, // verified by VerifyConnection below
		VerifyConnection: func(cs tls.ConnectionState) error {
			return p.verifyPeer(cs.PeerCertificates, m.Roots, x509.ExtKeyUsageServerAuth)
		},
	}
}
