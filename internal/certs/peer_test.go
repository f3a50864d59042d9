package certs

import (
	"crypto/x509"
	"net/url"
	"os"
	"path/filepath"
	"testing"
)

// TestClusterURI: names build into kvstore://cluster/<name> and parse back;
// bad names and malformed or repeated URIs are refused.
func TestClusterURI(t *testing.T) {
	u, err := ClusterURI("prod-1")
	if err != nil || u.String() != "kvstore://cluster/prod-1" {
		t.Fatalf("ClusterURI(prod-1) = %v, %v", u, err)
	}
	for _, bad := range []string{"", "Prod", "a_b", "-a", "a-", "a/b", string(make([]byte, 64))} {
		if _, err := ClusterURI(bad); err == nil {
			t.Errorf("ClusterURI(%q) accepted", bad)
		}
	}
	mustURL := func(s string) *url.URL {
		u, err := url.Parse(s)
		if err != nil {
			t.Fatal(err)
		}
		return u
	}
	for name, tc := range map[string]struct {
		uris []string
		want string // "" : an error
	}{
		"one":                 {uris: []string{"kvstore://cluster/prod"}, want: "prod"},
		"beside other URIs":   {uris: []string{"spiffe://example.org/x", "kvstore://cluster/prod"}, want: "prod"},
		"none":                {uris: nil},
		"other host":          {uris: []string{"kvstore://node/prod"}},
		"nested path":         {uris: []string{"kvstore://cluster/prod/n0"}},
		"query":               {uris: []string{"kvstore://cluster/prod?x=1"}},
		"two":                 {uris: []string{"kvstore://cluster/prod", "kvstore://cluster/staging"}},
		"empty name":          {uris: []string{"kvstore://cluster/"}},
		"upper-case name":     {uris: []string{"kvstore://cluster/Prod"}},
		"user info":           {uris: []string{"kvstore://u@cluster/prod"}},
		"same name twice too": {uris: []string{"kvstore://cluster/prod", "kvstore://cluster/prod"}},
	} {
		t.Run(name, func(t *testing.T) {
			c := &x509.Certificate{}
			for _, s := range tc.uris {
				c.URIs = append(c.URIs, mustURL(s))
			}
			got, err := ClusterOf(c)
			if tc.want == "" && err == nil {
				t.Fatalf("ClusterOf = %q, want an error", got)
			}
			if tc.want != "" && (err != nil || got != tc.want) {
				t.Fatalf("ClusterOf = %q, %v, want %q", got, err, tc.want)
			}
		})
	}
}

// TestIssuePeer: a peer certificate verifies as both a TLS server and a TLS
// client against its CA and names its cluster and node.
func TestIssuePeer(t *testing.T) {
	ca, err := NewCA("test CA", CAValidity, now)
	if err != nil {
		t.Fatal(err)
	}
	pair, err := ca.IssuePeer("prod", "n0", []string{"n0.example", "10.0.0.1"}, PeerValidity, now)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := ParseCert(pair.CertPEM)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(ca.Cert)
	for _, usage := range []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth} {
		if _, err := cert.Verify(x509.VerifyOptions{Roots: pool, KeyUsages: []x509.ExtKeyUsage{usage}, CurrentTime: now}); err != nil {
			t.Errorf("verify for usage %v: %v", usage, err)
		}
	}
	if name, err := ClusterOf(cert); err != nil || name != "prod" {
		t.Errorf("cluster %q, %v", name, err)
	}
	if cert.Subject.CommonName != "n0" || len(cert.DNSNames) != 1 || len(cert.IPAddresses) != 1 {
		t.Errorf("subject %q, DNS %v, IP %v", cert.Subject.CommonName, cert.DNSNames, cert.IPAddresses)
	}
	if _, err := ca.IssuePeer("Not A Name", "n0", nil, PeerValidity, now); err == nil {
		t.Error("issued a certificate for an invalid cluster name")
	}
}

// TestWritePeer: peer certificates are signed by the directory's CA (made
// when missing, kept when present) and load with LoadPeer.
func TestWritePeer(t *testing.T) {
	dir := t.TempDir()
	certA, keyA, err := WritePeer(dir, "prod", "n0", []string{"127.0.0.1"}, now)
	if err != nil {
		t.Fatal(err)
	}
	caBefore, _ := os.ReadFile(filepath.Join(dir, CACertFile))
	if _, _, err := WritePeer(dir, "prod", "n1", nil, now); err != nil {
		t.Fatal(err)
	}
	caAfter, _ := os.ReadFile(filepath.Join(dir, CACertFile))
	if string(caBefore) != string(caAfter) {
		t.Error("the CA was replaced by the second peer certificate")
	}
	if certA != filepath.Join(dir, "peer-n0.crt") || keyA != filepath.Join(dir, "peer-n0.key") {
		t.Errorf("paths %s %s", certA, keyA)
	}
	if fi, err := os.Stat(keyA); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("key mode: %v %v", fi.Mode(), err)
	}
	for _, node := range []string{"n0", "n1"} {
		m, err := LoadPeer(filepath.Join(dir, PeerCertFile(node)), filepath.Join(dir, PeerKeyFile(node)), filepath.Join(dir, CACertFile))
		if err != nil || m.Cluster != "prod" || m.Cert.Leaf.Subject.CommonName != node {
			t.Errorf("LoadPeer %s: %+v, %v", node, m.Cluster, err)
		}
	}
	// A directory with a CA certificate but not its key cannot sign.
	other := t.TempDir()
	os.WriteFile(filepath.Join(other, CACertFile), caBefore, 0o644)
	if _, _, err := WritePeer(other, "prod", "n0", nil, now); err == nil {
		t.Error("issued without the CA key")
	}
}
