package backup_test

import (
	"context"
	"encoding/pem"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"kvstore.dev/kvstore/internal/backup"
)

// TestS3CA checks that a CA given in memory (CAPEM, the operator's way) is
// trusted for an https endpoint, in addition to the system's, and that
// without it the endpoint's certificate is refused.
func TestS3CA(t *testing.T) {
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/xml")
		_, _ = w.Write([]byte(`<?xml version="1.0" encoding="UTF-8"?><ListBucketResult><Name>bkt</Name><IsTruncated>false</IsTruncated></ListBucketResult>`))
	}))
	defer srv.Close()
	caPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw})
	env := map[string]string{backup.EnvAccessKey: "ak", backup.EnvSecretKey: "sk"}
	for name, tc := range map[string]struct {
		ca      []byte
		wantErr string // "" for success
	}{
		"trusted in memory":   {ca: caPEM},
		"not trusted without": {wantErr: "certificate"},
	} {
		t.Run(name, func(t *testing.T) {
			d, err := backup.NewS3("bkt", "", backup.S3Options{Endpoint: srv.URL, BucketLookup: "path", CAPEM: tc.ca,
				Getenv: func(k string) string { return env[k] }})
			if err != nil {
				t.Fatal(err)
			}
			_, err = d.List(context.Background())
			switch {
			case tc.wantErr == "" && err != nil:
				t.Fatalf("List: %v", err)
			case tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)):
				t.Fatalf("List: %v, want an error with %q", err, tc.wantErr)
			}
		})
	}
	if _, err := backup.NewS3("bkt", "", backup.S3Options{Endpoint: srv.URL, CAPEM: []byte("not pem"),
		Getenv: func(k string) string { return env[k] }}); err == nil || !strings.Contains(err.Error(), "no PEM certificate") {
		t.Fatalf("a bundle without a certificate: %v", err)
	}
}
