package certs

import (
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"time"
)

// Peer identity. A peer (node) certificate names the cluster it belongs to
// in exactly one URI subject alternative name of the form
//
//	kvstore://cluster/<name>
//
// where <name> is the cluster's name (ClusterNamePattern: 1 to 63 lower-case
// letters, digits and '-', starting and ending with a letter or digit). A
// node accepts a peer on the peer port only if the peer's certificate chain
// verifies against the node's CA bundle and its cluster URI names the
// node's own cluster. The node's id and host names are not part of the
// identity: every member of a cluster may be reached at any address (a
// Service), so host names in a peer certificate are informational.
const (
	PeerURIScheme = "kvstore"
	PeerURIHost   = "cluster"
)

// ClusterNamePattern is what a cluster name may look like (a DNS label).
var ClusterNamePattern = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$`)

// Peer certificate file names in a certificate directory: peer-<node>.crt
// and peer-<node>.key.
func PeerCertFile(node string) string { return "peer-" + node + ".crt" }

// PeerKeyFile is the key beside PeerCertFile(node).
func PeerKeyFile(node string) string { return "peer-" + node + ".key" }

// PeerValidity is the default validity of a peer certificate.
const PeerValidity = 365 * 24 * time.Hour

// ClusterURI is the URI SAN naming cluster, or an error if name is not a
// valid cluster name.
func ClusterURI(name string) (*url.URL, error) {
	if !ClusterNamePattern.MatchString(name) {
		return nil, fmt.Errorf("cluster name %q is not 1-63 lower-case letters, digits and '-' (starting and ending with a letter or digit)", name)
	}
	return &url.URL{Scheme: PeerURIScheme, Host: PeerURIHost, Path: "/" + name}, nil
}

// ClusterOf returns the cluster name of a peer certificate: the name in its
// one kvstore://cluster/ URI SAN. A certificate without one, with more than
// one, or with a malformed one has none (an error).
func ClusterOf(cert *x509.Certificate) (string, error) {
	var names []string
	for _, u := range cert.URIs {
		if u.Scheme != PeerURIScheme {
			continue
		}
		name, ok := parseClusterURI(u)
		if !ok {
			return "", fmt.Errorf("malformed peer URI SAN %q (want %s://%s/<name>)", u.String(), PeerURIScheme, PeerURIHost)
		}
		names = append(names, name)
	}
	switch len(names) {
	case 0:
		return "", fmt.Errorf("no peer URI SAN %s://%s/<name> in the certificate of %q", PeerURIScheme, PeerURIHost, cert.Subject.CommonName)
	case 1:
		return names[0], nil
	}
	return "", fmt.Errorf("%d peer URI SANs in the certificate of %q, want one", len(names), cert.Subject.CommonName)
}

func parseClusterURI(u *url.URL) (string, bool) {
	if u.Host != PeerURIHost || u.User != nil || u.RawQuery != "" || u.Fragment != "" || len(u.Path) < 2 || u.Path[0] != '/' {
		return "", false
	}
	name := u.Path[1:]
	return name, ClusterNamePattern.MatchString(name)
}

// IssuePeer issues a peer certificate for node of cluster: usable both as a
// TLS server and as a TLS client (the peer port is mutual TLS), carrying
// the cluster URI SAN, with node as its common name and hosts (DNS names or
// IP addresses, optional) as further SANs. It is valid from now for
// validity, capped at the CA's own expiry.
func (ca *CA) IssuePeer(cluster, node string, hosts []string, validity time.Duration, now time.Time) (Pair, error) {
	uri, err := ClusterURI(cluster)
	if err != nil {
		return Pair{}, err
	}
	if node == "" {
		return Pair{}, errors.New("a node id is required")
	}
	return ca.issue(pkix.Name{CommonName: node, Organization: []string{"kvstore"}}, hosts, []*url.URL{uri},
		[]x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth}, validity, now)
}

// WritePeer issues a peer certificate for node of cluster with the CA in
// dir (ca.crt and ca.key, made as EnsureDir makes them when missing) and
// writes it to dir/peer-<node>.crt and .key (the key mode 0600), replacing
// any there. It returns the paths written.
func WritePeer(dir, cluster, node string, hosts []string, now time.Time) (certPath, keyPath string, err error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", "", fmt.Errorf("certificate dir: %w", err)
	}
	path := func(name string) string { return filepath.Join(dir, name) }
	var ca *CA
	caPEM, err1 := os.ReadFile(path(CACertFile))
	caKey, err2 := os.ReadFile(path(CAKeyFile))
	switch {
	case err1 == nil && err2 == nil:
		if ca, err = ParseCA(caPEM, caKey); err != nil {
			return "", "", fmt.Errorf("%s: %w", dir, err)
		}
	case errors.Is(err1, os.ErrNotExist) && errors.Is(err2, os.ErrNotExist):
		if ca, err = NewCA("kvstore self-signed CA", CAValidity, now); err != nil {
			return "", "", err
		}
		if err := writeFile(path(CAKeyFile), ca.KeyPEM, 0o600); err != nil {
			return "", "", err
		}
		if err := writeFile(path(CACertFile), ca.CertPEM, 0o644); err != nil {
			return "", "", err
		}
	default:
		return "", "", fmt.Errorf("%s: need both %s and %s to sign peer certificates: %w", dir, CACertFile, CAKeyFile, errors.Join(err1, err2))
	}
	pair, err := ca.IssuePeer(cluster, node, hosts, PeerValidity, now)
	if err != nil {
		return "", "", err
	}
	certPath, keyPath = path(PeerCertFile(node)), path(PeerKeyFile(node))
	if err := writeFile(keyPath, pair.KeyPEM, 0o600); err != nil {
		return "", "", err
	}
	if err := writeFile(certPath, pair.CertPEM, 0o644); err != nil {
		return "", "", err
	}
	return certPath, keyPath, nil
}

// ParseBundle parses every CERTIFICATE block in a CA bundle. A bundle with
// no certificate, or a block that does not parse, is an error.
func ParseBundle(bundlePEM []byte) ([]*x509.Certificate, error) {
	var out []*x509.Certificate
	for rest := bundlePEM; ; {
		var block *pem.Block
		block, rest = pem.Decode(rest)
		if block == nil {
			break
		}
		if block.Type != "CERTIFICATE" {
			continue
		}
		c, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("certificate %d: %w", len(out)+1, err)
		}
		out = append(out, c)
	}
	if len(out) == 0 {
		return nil, errors.New("no CERTIFICATE PEM block")
	}
	return out, nil
}

// PeerMaterial is what a node reads from its peer TLS files: its own
// certificate and key, the CA bundle it trusts, and the cluster its
// certificate names.
type PeerMaterial struct {
	Cert    tls.Certificate // Leaf is set
	Roots   *x509.CertPool
	Cluster string
}

// PeerFileError says which of the three peer TLS files a LoadPeer problem
// is in: "cert", "key" or "ca".
type PeerFileError struct {
	File string
	Err  error
}

func (e *PeerFileError) Error() string { return e.File + ": " + e.Err.Error() }
func (e *PeerFileError) Unwrap() error { return e.Err }

// LoadPeer reads and checks a node's peer TLS files: the certificate (its
// first block the leaf, the rest intermediates), its key, and the CA
// bundle. The certificate must carry a cluster URI (ClusterOf). Errors are
// *PeerFileError naming the file at fault; they never contain key bytes.
func LoadPeer(certFile, keyFile, caFile string) (PeerMaterial, error) {
	certPEM, err := os.ReadFile(certFile)
	if err != nil {
		return PeerMaterial{}, &PeerFileError{"cert", err}
	}
	if _, err := ParseCert(certPEM); err != nil {
		return PeerMaterial{}, &PeerFileError{"cert", err}
	}
	keyPEM, err := os.ReadFile(keyFile)
	if err != nil {
		return PeerMaterial{}, &PeerFileError{"key", err}
	}
	pair, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return PeerMaterial{}, &PeerFileError{"key", fmt.Errorf("does not parse or does not match the certificate: %w", err)}
	}
	cluster, err := ClusterOf(pair.Leaf)
	if err != nil {
		return PeerMaterial{}, &PeerFileError{"cert", err}
	}
	bundle, err := os.ReadFile(caFile)
	if err != nil {
		return PeerMaterial{}, &PeerFileError{"ca", err}
	}
	cas, err := ParseBundle(bundle)
	if err != nil {
		return PeerMaterial{}, &PeerFileError{"ca", err}
	}
	roots := x509.NewCertPool()
	for _, c := range cas {
		roots.AddCert(c)
	}
	return PeerMaterial{Cert: pair, Roots: roots, Cluster: cluster}, nil
}
