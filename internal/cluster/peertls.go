package cluster

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"kvstore.dev/kvstore/internal/certs"
	"kvstore.dev/kvstore/internal/tlsreload"
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

// peerTLS holds the current peer TLS material: this node's pair in an
// internal/tlsreload Reloader that also checks the leaf names this node's
// cluster, and the CA bundle in a tlsreload CAPool. Both re-read their
// files at most once a second, on a handshake, when the contents changed;
// a file that does not load (does not parse, a key that does not match, a
// certificate for another cluster) keeps the previous material and is
// logged once per change, without key material. New handshakes use the
// new material; established connections are left alone. It is safe for
// concurrent use.
type peerTLS struct {
	cluster string // fixed at start
	cert    *tlsreload.Reloader
	roots   *tlsreload.CAPool

	now func() time.Time // for chain verification; a seam for tests
}

// newPeerTLS loads the peer TLS files. cluster is this node's cluster name;
// "" takes the one in its certificate. Errors name the config field.
func newPeerTLS(files PeerTLS, cluster string, log *slog.Logger) (*peerTLS, error) {
	// certs.LoadPeer checks the three files together and says which one
	// is wrong; the reloaders then serve them.
	m, err := certs.LoadPeer(files.CertFile, files.KeyFile, files.CAFile)
	if err != nil {
		return nil, peerTLSFieldError(err)
	}
	if cluster == "" {
		cluster = m.Cluster
	} else if m.Cluster != cluster {
		return nil, fmt.Errorf("cluster.peer_tls_cert: the certificate is for cluster %q, this node's cluster.name is %q", m.Cluster, cluster)
	}
	p := &peerTLS{cluster: cluster, now: time.Now}
	sameCluster := func(leaf *x509.Certificate) error {
		name, err := certs.ClusterOf(leaf)
		if err == nil && name != cluster {
			err = fmt.Errorf("the certificate is for cluster %q, this node's is %q", name, cluster)
		}
		return err
	}
	if p.cert, err = tlsreload.NewVerified(files.CertFile, files.KeyFile, log, sameCluster); err != nil {
		return nil, fmt.Errorf("cluster.peer_tls_cert: %w", err)
	}
	if p.roots, err = tlsreload.NewCAPool(files.CAFile, log); err != nil {
		return nil, fmt.Errorf("cluster.peer_tls_ca: %w", err)
	}
	return p, nil
}

func peerTLSFieldError(err error) error {
	var fe *certs.PeerFileError
	if errors.As(err, &fe) {
		return fmt.Errorf("cluster.peer_tls_%s: %w", fe.File, fe.Err)
	}
	return fmt.Errorf("cluster.peer_tls: %w", err)
}

// material returns this node's pair and the CA bundle as of now.
func (p *peerTLS) material() (*tls.Certificate, *x509.CertPool) {
	return p.cert.Certificate(), p.roots.Pool()
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
			cert, roots := p.material()
			return &tls.Config{
				MinVersion: tls.VersionTLS13,
				// Every connection is a full handshake, its certificate
				// checked against the material of the moment; peers pool
				// their connections, so resumption would save little.
				SessionTicketsDisabled: true,
				Certificates:           []tls.Certificate{*cert},
				// The chain is verified in VerifyConnection, against the
				// same material, so that one check decides.
				ClientAuth: tls.RequireAnyClientCert,
				VerifyConnection: func(cs tls.ConnectionState) error {
					return p.verifyPeer(cs.PeerCertificates, roots, x509.ExtKeyUsageClientAuth)
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
	cert, roots := p.material()
	return &tls.Config{
		MinVersion:         tls.VersionTLS13,
		Certificates:       []tls.Certificate{*cert},
		InsecureSkipVerify: true, // verified by VerifyConnection below
		VerifyConnection: func(cs tls.ConnectionState) error {
			return p.verifyPeer(cs.PeerCertificates, roots, x509.ExtKeyUsageServerAuth)
		},
	}
}
