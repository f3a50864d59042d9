package main

import (
	"bytes"
	"context"
	"io"
	"path/filepath"
	"strings"
	"testing"

	"kvstore.dev/kvstore/internal/certs"
)

// TestCertsPeer: `kvstore certs --peer` writes a peer certificate of the
// cluster, signed by the directory's CA, and refuses to run without the
// cluster or the node.
func TestCertsPeer(t *testing.T) {
	dir := t.TempDir()
	var out bytes.Buffer
	args := []string{"certs", "--dir", dir, "--peer", "--cluster", "prod", "--node", "n0", "--hosts", "n0.example,127.0.0.1"}
	if err := run(context.Background(), args, func(string) string { return "" }, &out, io.Discard); err != nil {
		t.Fatal(err)
	}
	m, err := certs.LoadPeer(filepath.Join(dir, "peer-n0.crt"), filepath.Join(dir, "peer-n0.key"), filepath.Join(dir, certs.CACertFile))
	if err != nil || m.Cluster != "prod" || m.Cert.Leaf.Subject.CommonName != "n0" || len(m.Cert.Leaf.IPAddresses) != 1 {
		t.Fatalf("peer certificate: cluster %q, %v", m.Cluster, err)
	}
	if !strings.Contains(out.String(), "peer-n0.crt") {
		t.Errorf("output %q does not name the certificate", out.String())
	}
	for name, args := range map[string][]string{
		"no cluster":  {"certs", "--dir", dir, "--peer", "--node", "n0"},
		"no node":     {"certs", "--dir", dir, "--peer", "--cluster", "prod"},
		"bad cluster": {"certs", "--dir", dir, "--peer", "--cluster", "Prod", "--node", "n0"},
	} {
		if err := run(context.Background(), args, func(string) string { return "" }, io.Discard, io.Discard); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}
