package config

import (
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"kvstore.dev/kvstore/internal/certs"
)

// peerFiles writes a CA, a peer certificate of cluster "prod" with its key,
// a server certificate without a cluster URI, a stray key and a broken file
// into a temporary directory, and returns their paths by name.
func peerFiles(t *testing.T) map[string]string {
	t.Helper()
	dir := t.TempDir()
	ca, err := certs.NewCA("test", time.Hour, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	peer, err := ca.IssuePeer("prod", "n0", []string{"127.0.0.1"}, time.Hour, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	other, err := ca.IssuePeer("prod", "n1", nil, time.Hour, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	server, err := ca.IssueServer([]string{"localhost"}, time.Hour, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	files := map[string][]byte{
		"ca": ca.CertPEM, "cert": peer.CertPEM, "key": peer.KeyPEM, "otherkey": other.KeyPEM,
		"server": server.CertPEM, "serverkey": server.KeyPEM, "broken": []byte("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"),
	}
	paths := map[string]string{"missing": filepath.Join(dir, "missing.pem")}
	for name, b := range files {
		paths[name] = filepath.Join(dir, name+".pem")
		if err := os.WriteFile(paths[name], b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return paths
}

// TestPeerTLSConfig: the peer TLS fields come from the file or the flags
// (which turn on cluster mode), are all set or none, must load, and must
// agree with cluster.name; each error names its field.
func TestPeerTLSConfig(t *testing.T) {
	f := peerFiles(t)
	base := []string{"--node-id", "n0", "--bootstrap-node", "n0", "--peer-advertise", "127.0.0.1:7000"}
	tls := func(cert, key, ca string) []string {
		var a []string
		for flag, v := range map[string]string{"--peer-tls-cert": cert, "--peer-tls-key": key, "--peer-tls-ca": ca} {
			if v != "" {
				a = append(a, flag, f[v])
			}
		}
		return a
	}
	tests := map[string]struct {
		yaml string
		args []string
		want []string // substrings of the error; none: valid
		name string   // the cluster name wanted when valid
	}{
		"no peer TLS":          {},
		"flags":                {args: tls("cert", "key", "ca")},
		"flags and the name":   {args: append(tls("cert", "key", "ca"), "--cluster-name", "prod"), name: "prod"},
		"file":                 {yaml: "cluster: {name: prod, peer_tls_cert: " + f["cert"] + ", peer_tls_key: " + f["key"] + ", peer_tls_ca: " + f["ca"] + "}", name: "prod"},
		"cert only":            {args: tls("cert", "", ""), want: []string{"cluster.peer_tls_key: required", "cluster.peer_tls_ca: required"}},
		"no key":               {args: tls("cert", "", "ca"), want: []string{"cluster.peer_tls_key: required"}},
		"missing cert":         {args: tls("missing", "key", "ca"), want: []string{"cluster.peer_tls_cert:", "no such file"}},
		"broken cert":          {args: tls("broken", "key", "ca"), want: []string{"cluster.peer_tls_cert:"}},
		"key of another cert":  {args: tls("cert", "otherkey", "ca"), want: []string{"cluster.peer_tls_key: does not parse or does not match"}},
		"missing CA":           {args: tls("cert", "key", "missing"), want: []string{"cluster.peer_tls_ca:"}},
		"CA bundle not PEM":    {args: tls("cert", "key", "key"), want: []string{"cluster.peer_tls_ca: no CERTIFICATE"}},
		"broken CA":            {args: tls("cert", "key", "broken"), want: []string{"cluster.peer_tls_ca: certificate 1"}},
		"no cluster URI":       {args: tls("server", "serverkey", "ca"), want: []string{"cluster.peer_tls_cert: no peer URI SAN kvstore://cluster/<name>"}},
		"another cluster name": {args: append(tls("cert", "key", "ca"), "--cluster-name", "staging"), want: []string{`cluster.name: "staging", but the certificate in cluster.peer_tls_cert is for cluster "prod"`}},
		"bad cluster name":     {args: []string{"--cluster-name", "Prod_1"}, want: []string{`cluster.name: "Prod_1" is not`}},
	}
	env := func(k string) string {
		if k == EnvPeerToken {
			return "peer-token-0123456789"
		}
		return ""
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			args := append(append([]string(nil), base...), tc.args...)
			if tc.yaml != "" {
				args = append([]string{"--config", writeFile(t, tc.yaml)}, args...)
			}
			cfg, err := Load(args, env, io.Discard)
			if len(tc.want) == 0 {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				if cfg.Cluster.Name != tc.name {
					t.Errorf("cluster.name %q, want %q", cfg.Cluster.Name, tc.name)
				}
				return
			}
			if err == nil {
				t.Fatalf("accepted, want errors mentioning %q", tc.want)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("err = %v, want it to mention %q", err, w)
				}
			}
			if strings.Contains(err.Error(), "PRIVATE KEY") {
				t.Errorf("key material in the error: %v", err)
			}
		})
	}
}
