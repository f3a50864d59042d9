package certs

import (
	"crypto/tls"
	"crypto/x509"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"
)

var now = time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)

func TestIssuedCertificateVerifies(t *testing.T) {
	ca, err := NewCA("test CA", CAValidity, now)
	if err != nil {
		t.Fatal(err)
	}
	pair, err := ca.IssueServer([]string{"kvstore.local", "localhost", "127.0.0.1"}, ServerValidity, now)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := ParseCert(pair.CertPEM)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(ca.Cert)
	for _, host := range []string{"kvstore.local", "localhost", "127.0.0.1"} {
		if _, err := cert.Verify(x509.VerifyOptions{Roots: pool, DNSName: host, CurrentTime: now.Add(time.Hour)}); err != nil {
			t.Errorf("verify for %s: %v", host, err)
		}
	}
	if _, err := cert.Verify(x509.VerifyOptions{Roots: pool, DNSName: "other.example", CurrentTime: now}); err == nil {
		t.Error("certificate verified for a host it does not name")
	}
	if _, err := tls.X509KeyPair(pair.CertPEM, pair.KeyPEM); err != nil {
		t.Errorf("key pair: %v", err)
	}
	again, err := ParseCA(ca.CertPEM, ca.KeyPEM)
	if err != nil || !again.Cert.Equal(ca.Cert) {
		t.Errorf("ParseCA: %v", err)
	}
	if _, err := ParseCA(pair.CertPEM, pair.KeyPEM); err == nil {
		t.Error("ParseCA accepted a server certificate")
	}
}

// TestIssueClient: a client certificate verifies for client auth only,
// and a name is required.
func TestIssueClient(t *testing.T) {
	ca, err := NewCA("test CA", CAValidity, now)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ca.IssueClient("", time.Hour, now); err == nil {
		t.Error("IssueClient with no name: no error")
	}
	pair, err := ca.IssueClient("app", time.Hour, now)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := ParseCert(pair.CertPEM)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(ca.Cert)
	for usage, ok := range map[x509.ExtKeyUsage]bool{x509.ExtKeyUsageClientAuth: true, x509.ExtKeyUsageServerAuth: false} {
		_, err := cert.Verify(x509.VerifyOptions{Roots: pool, KeyUsages: []x509.ExtKeyUsage{usage}, CurrentTime: now})
		if (err == nil) != ok {
			t.Errorf("verify for usage %v: %v, want ok %v", usage, err, ok)
		}
	}
	if cert.Subject.CommonName != "app" {
		t.Errorf("common name %q, want app", cert.Subject.CommonName)
	}
}

func TestRenewal(t *testing.T) {
	ca, _ := NewCA("test CA", CAValidity, now)
	pair, _ := ca.IssueServer([]string{"a.example"}, 90*24*time.Hour, now)
	tests := map[string]struct {
		at    time.Time
		hosts []string
		want  bool
	}{
		"fresh":                  {now.Add(24 * time.Hour), []string{"a.example"}, false},
		"just before two thirds": {now.Add(59 * 24 * time.Hour), []string{"a.example"}, false},
		"past two thirds":        {now.Add(61 * 24 * time.Hour), []string{"a.example"}, true},
		"new host":               {now, []string{"a.example", "b.example"}, true},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			got, err := NeedsRenewal(pair.CertPEM, tc.hosts, tc.at)
			if err != nil || got != tc.want {
				t.Errorf("NeedsRenewal = %v, %v; want %v", got, err, tc.want)
			}
		})
	}
}

func TestEnsureDir(t *testing.T) {
	dir := t.TempDir()
	hosts := []string{"localhost", "127.0.0.1"}
	if got, err := EnsureDir(dir, hosts, now); err != nil || got != Issued {
		t.Fatalf("first EnsureDir = %v, %v", got, err)
	}
	first, _ := os.ReadFile(filepath.Join(dir, ServerCertFile))
	for name, mode := range map[string]os.FileMode{CAKeyFile: 0o600, ServerKeyFile: 0o600, CACertFile: 0o644, ServerCertFile: 0o644} {
		fi, err := os.Stat(filepath.Join(dir, name))
		if err != nil || fi.Mode().Perm() != mode {
			t.Errorf("%s: %v mode %v, want %v", name, err, fi.Mode().Perm(), mode)
		}
	}
	if got, _ := EnsureDir(dir, hosts, now.Add(time.Hour)); got != Valid {
		t.Errorf("second EnsureDir = %v, want valid", got)
	}
	if got, _ := EnsureDir(dir, hosts, now.Add(300*24*time.Hour)); got != Issued {
		t.Errorf("EnsureDir near expiry = %v, want issued", got)
	}
	second, _ := os.ReadFile(filepath.Join(dir, ServerCertFile))
	if string(first) == string(second) {
		t.Error("server certificate not re-issued")
	}

	// A user's own certificate (no ca.key) is never touched.
	user := t.TempDir()
	os.WriteFile(filepath.Join(user, ServerCertFile), first, 0o644)
	os.WriteFile(filepath.Join(user, ServerKeyFile), []byte("user key"), 0o600)
	if got, err := EnsureDir(user, []string{"other"}, now.Add(400*24*time.Hour)); err != nil || got != UserProvided {
		t.Errorf("user dir: %v, %v", got, err)
	}
	if b, _ := os.ReadFile(filepath.Join(user, ServerKeyFile)); string(b) != "user key" {
		t.Error("user key modified")
	}
}

// TestServesTLS uses the generated files in a real TLS server and client.
func TestServesTLS(t *testing.T) {
	dir := t.TempDir()
	if _, err := EnsureDir(dir, []string{"localhost", "127.0.0.1"}, time.Now()); err != nil {
		t.Fatal(err)
	}
	cert, err := tls.LoadX509KeyPair(filepath.Join(dir, ServerCertFile), filepath.Join(dir, ServerKeyFile))
	if err != nil {
		t.Fatal(err)
	}
	ln, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12})
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.Write([]byte("ok")) })}
	go srv.Serve(ln)
	defer srv.Close()
	caPEM, _ := os.ReadFile(filepath.Join(dir, CACertFile))
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(caPEM)
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	_, port, _ := net.SplitHostPort(ln.Addr().String())
	resp, err := client.Get("https://localhost:" + port)
	if err != nil {
		t.Fatalf("TLS request with the generated CA: %v", err)
	}
	resp.Body.Close()
}
