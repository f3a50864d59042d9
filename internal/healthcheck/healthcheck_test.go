package healthcheck

import (
	"context"
	"encoding/pem"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"kvstore.dev/kvstore/internal/certs"
)

func TestRun(t *testing.T) {
	ready := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/readyz" {
			w.WriteHeader(http.StatusServiceUnavailable)
		}
	})
	plain := httptest.NewServer(ready)
	defer plain.Close()
	secure := httptest.NewTLSServer(ready)
	defer secure.Close()
	dir := t.TempDir()
	rightCA := filepath.Join(dir, "right.crt")
	os.WriteFile(rightCA, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: secure.Certificate().Raw}), 0o600)
	other, err := certs.NewCA("another CA", time.Hour, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	wrongCA := filepath.Join(dir, "wrong.crt")
	os.WriteFile(wrongCA, other.CertPEM, 0o600)
	port := secure.URL[strings.LastIndex(secure.URL, ":"):]

	tests := map[string]struct {
		args    []string
		wantErr string // "" = healthy
	}{
		"http ready":                 {args: []string{"--url", plain.URL + "/readyz"}},
		"http not ready":             {args: []string{"--url", plain.URL + "/other"}, wantErr: "503"},
		"https loopback without CA":  {args: []string{"--url", secure.URL + "/readyz"}},
		"https localhost without CA": {args: []string{"--url", "https://localhost" + port + "/readyz"}},
		"https with its CA":          {args: []string{"--url", secure.URL + "/readyz", "--ca-file", rightCA}},
		"https with another CA":      {args: []string{"--url", secure.URL + "/readyz", "--ca-file", wrongCA}, wantErr: "certificate"},
		"missing CA file":            {args: []string{"--url", secure.URL + "/readyz", "--ca-file", filepath.Join(dir, "nope")}, wantErr: "--ca-file"},
		"cert without key":           {args: []string{"--url", secure.URL + "/readyz", "--cert-file", rightCA}, wantErr: "--cert-file and --key-file"},
		"not a URL":                  {args: []string{"--url", "ftp://x/"}, wantErr: "not an http(s) URL"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			err := Run(context.Background(), tc.args, io.Discard)
			if tc.wantErr == "" && err != nil {
				t.Fatalf("Run: %v, want healthy", err)
			}
			if tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)) {
				t.Fatalf("Run: %v, want an error mentioning %q", err, tc.wantErr)
			}
		})
	}
}

// TestVerificationSkippedOnlyOnLoopback: without --ca-file only a loopback
// URL goes unverified.
func TestVerificationSkippedOnlyOnLoopback(t *testing.T) {
	tests := map[string]bool{
		"https://127.0.0.1:8080/readyz":   true,
		"https://127.1.2.3:8080/readyz":   true,
		"https://[::1]:8080/readyz":       true,
		"https://localhost:8080/readyz":   true,
		"https://app:8080/readyz":         false,
		"https://10.0.0.1:8080/readyz":    false,
		"https://localhost.evil.example/": false,
		"http://127.0.0.1:8080/readyz":    false, // no TLS at all
	}
	for raw, skip := range tests {
		u, _ := url.Parse(raw)
		cfg, err := clientTLS(u, "", "", "")
		if err != nil {
			t.Fatal(err)
		}
		if cfg.InsecureSkipVerify != skip {
			t.Errorf("%s: InsecureSkipVerify = %v, want %v", raw, cfg.InsecureSkipVerify, skip)
		}
	}
}
