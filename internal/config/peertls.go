package config

import (
	"errors"

	"kvstore.dev/kvstore/internal/certs"
)

// validatePeerTLS checks cluster.name and the peer TLS files: all three set
// or none; when set, each must exist and parse, the key must match the
// certificate, the certificate must carry a cluster URI SAN
// (internal/certs), and it must name cluster.name when that is set.
func (c *Cluster) validatePeerTLS(bad func(field, format string, args ...any)) {
	if c.Name != "" && !certs.ClusterNamePattern.MatchString(c.Name) {
		bad("cluster.name", "%q is not 1-63 lower-case letters, digits and '-' (starting and ending with a letter or digit)", c.Name)
	}
	files := []struct{ field, path string }{
		{"cluster.peer_tls_cert", c.PeerTLSCert}, {"cluster.peer_tls_key", c.PeerTLSKey}, {"cluster.peer_tls_ca", c.PeerTLSCA},
	}
	set := 0
	for _, f := range files {
		if f.path != "" {
			set++
		}
	}
	if set == 0 {
		return
	}
	if set < len(files) {
		for _, f := range files {
			if f.path == "" {
				bad(f.field, "required when any of cluster.peer_tls_cert, peer_tls_key, peer_tls_ca is set (all three or none)")
			}
		}
		return
	}
	m, err := certs.LoadPeer(c.PeerTLSCert, c.PeerTLSKey, c.PeerTLSCA)
	if err != nil {
		var fe *certs.PeerFileError
		if errors.As(err, &fe) {
			bad("cluster.peer_tls_"+fe.File, "%v", fe.Err)
		} else {
			bad("cluster.peer_tls_cert", "%v", err)
		}
		return
	}
	if c.Name != "" && m.Cluster != c.Name {
		bad("cluster.name", "%q, but the certificate in cluster.peer_tls_cert is for cluster %q", c.Name, m.Cluster)
	}
}
