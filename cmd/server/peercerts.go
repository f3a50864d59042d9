package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
	"time"

	"kvstore.dev/kvstore/internal/certs"
)

// peerCertFlags are the `kvstore certs` flags that issue a peer (node)
// certificate instead of the edge's server certificate.
type peerCertFlags struct {
	peer          *bool
	cluster, node *string
}

func addPeerCertFlags(fs *flag.FlagSet) peerCertFlags {
	return peerCertFlags{
		peer:    fs.Bool("peer", false, "issue a peer (node) certificate for mutual TLS on the peer port instead: peer-<node>.crt and .key in --dir, signed by its ca.crt/ca.key (made if missing), for --hosts"),
		cluster: fs.String("cluster", "", "with --peer: the cluster `name` the certificate carries (URI SAN kvstore://cluster/NAME; the servers' cluster.name)"),
		node:    fs.String("node", "", "with --peer: the node `id`"),
	}
}

// makePeerCert issues the peer certificate of f into dir.
func makePeerCert(f peerCertFlags, dir string, hosts []string, stdout io.Writer) error {
	switch {
	case *f.cluster == "":
		return errors.New("certs: --peer needs --cluster")
	case *f.node == "":
		return errors.New("certs: --peer needs --node")
	}
	crt, key, err := certs.WritePeer(dir, *f.cluster, *f.node, hosts, time.Now())
	if err != nil {
		return fmt.Errorf("certs: %w", err)
	}
	fmt.Fprintf(stdout, "certs: issued peer certificate %s and key %s (cluster %s, node %s, hosts %s)\n", crt, key, *f.cluster, *f.node, strings.Join(hosts, ","))
	return nil
}
