package certdir

import (
	"bytes"
	"crypto/x509"
	"os"
	"path/filepath"
	"testing"
	"time"

	"kvstore.dev/kvstore/internal/certs"
)

func read(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// checkPublished: the public directory holds a pair for host that verifies
// against its ca.crt, and no CA key.
func checkPublished(t *testing.T, pub, host string) {
	t.Helper()
	if _, err := os.Stat(filepath.Join(pub, certs.CAKeyFile)); !os.IsNotExist(err) {
		t.Fatalf("%s in the public directory: %v", certs.CAKeyFile, err)
	}
	if fi, err := os.Stat(filepath.Join(pub, certs.ServerKeyFile)); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("server.key: %v, %v", fi, err)
	}
	leaf, err := certs.ParseCert(read(t, filepath.Join(pub, certs.ServerCertFile)))
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(read(t, filepath.Join(pub, certs.CACertFile)))
	if _, err := leaf.Verify(x509.VerifyOptions{Roots: roots, DNSName: host}); err != nil {
		t.Fatalf("server.crt does not verify against ca.crt for %s: %v", host, err)
	}
}

func TestEnsure(t *testing.T) {
	now := time.Now()
	hosts := []string{"localhost", "127.0.0.1"}
	tests := map[string]struct {
		prepare func(t *testing.T, pub, priv string)
		hosts   []string
		want    certs.Outcome
		check   func(t *testing.T, pub, priv string)
	}{
		"fresh volumes": {
			want: certs.Issued,
			check: func(t *testing.T, pub, priv string) {
				if _, err := os.Stat(filepath.Join(priv, certs.CAKeyFile)); err != nil {
					t.Errorf("no CA key in the CA dir: %v", err)
				}
			},
		},
		"second run": {
			prepare: func(t *testing.T, pub, priv string) {
				if _, err := Ensure(pub, priv, hosts, now); err != nil {
					t.Fatal(err)
				}
			},
			want: certs.Valid,
		},
		"former layout is migrated": {
			prepare: func(t *testing.T, pub, priv string) {
				if _, err := certs.EnsureDir(pub, hosts, now); err != nil {
					t.Fatal(err)
				}
			},
			want: certs.Valid,
			check: func(t *testing.T, pub, priv string) {
				if _, err := os.Stat(filepath.Join(priv, certs.CAKeyFile)); err != nil {
					t.Errorf("the CA key did not move to the CA dir: %v", err)
				}
			},
		},
		"former layout beside an existing CA dir": {
			prepare: func(t *testing.T, pub, priv string) {
				if _, err := certs.EnsureDir(priv, hosts, now); err != nil {
					t.Fatal(err)
				}
				if _, err := certs.EnsureDir(pub, hosts, now); err != nil { // another CA
					t.Fatal(err)
				}
			},
			want: certs.Valid,
		},
		"new hosts": {
			prepare: func(t *testing.T, pub, priv string) {
				if _, err := Ensure(pub, priv, hosts, now); err != nil {
					t.Fatal(err)
				}
			},
			hosts: []string{"kv.example.com", "localhost"},
			want:  certs.Issued,
			check: func(t *testing.T, pub, priv string) { checkPublished(t, pub, "kv.example.com") },
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			pub, priv := filepath.Join(t.TempDir(), "certs"), filepath.Join(t.TempDir(), "ca")
			if tc.prepare != nil {
				os.MkdirAll(pub, 0o755)
				os.MkdirAll(priv, 0o700)
				tc.prepare(t, pub, priv)
			}
			h := hosts
			if tc.hosts != nil {
				h = tc.hosts
			}
			got, err := Ensure(pub, priv, h, now)
			if err != nil || got != tc.want {
				t.Fatalf("Ensure: %q, %v; want %q", got, err, tc.want)
			}
			checkPublished(t, pub, "localhost")
			if tc.check != nil {
				tc.check(t, pub, priv)
			}
		})
	}
}

// TestEnsureLeavesUserCertificateAlone: a server.crt the private CA did not
// issue is never replaced, on a fresh CA dir or beside an existing CA.
func TestEnsureLeavesUserCertificateAlone(t *testing.T) {
	for name, withCA := range map[string]bool{"fresh CA dir": false, "existing CA": true} {
		t.Run(name, func(t *testing.T) {
			pub, priv := t.TempDir(), t.TempDir()
			if withCA {
				if _, err := Ensure(pub, priv, []string{"localhost"}, time.Now()); err != nil {
					t.Fatal(err)
				}
			}
			ca, err := certs.NewCA("user CA", time.Hour, time.Now())
			if err != nil {
				t.Fatal(err)
			}
			pair, err := ca.IssueServer([]string{"kv.example.com"}, time.Hour, time.Now())
			if err != nil {
				t.Fatal(err)
			}
			os.WriteFile(filepath.Join(pub, certs.ServerCertFile), pair.CertPEM, 0o644)
			os.WriteFile(filepath.Join(pub, certs.ServerKeyFile), pair.KeyPEM, 0o600)
			got, err := Ensure(pub, priv, []string{"localhost"}, time.Now())
			if err != nil || got != certs.UserProvided {
				t.Fatalf("Ensure: %q, %v; want %q", got, err, certs.UserProvided)
			}
			if !bytes.Equal(read(t, filepath.Join(pub, certs.ServerCertFile)), pair.CertPEM) || !bytes.Equal(read(t, filepath.Join(pub, certs.ServerKeyFile)), pair.KeyPEM) {
				t.Error("the user's certificate was replaced")
			}
		})
	}
}
