package healthcheck

import (
	"context"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"kvstore.dev/kvstore/internal/auth"
	"kvstore.dev/kvstore/internal/certs"
	"kvstore.dev/kvstore/internal/config"
	"kvstore.dev/kvstore/internal/server"
	"kvstore.dev/kvstore/internal/testlog"
)

// TestPutGetOnARealServer runs --put-get against a real server (bbolt in
// t.TempDir(), API over TLS with a CA of the test's, token auth): it
// passes with the admin token and the CA, and fails, naming the step,
// with a read-only token, a wrong token, or no token file.
func TestPutGetOnARealServer(t *testing.T) {
	dir := t.TempDir()
	ca, err := certs.NewCA("test CA", time.Hour, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	pair, err := ca.IssueServer([]string{"localhost", "127.0.0.1"}, time.Hour, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	write := func(name string, b []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, b, 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	caFile := write("ca.crt", ca.CertPEM)
	cfg := config.Default()
	cfg.Listen, cfg.DebugListen, cfg.DataDir = "127.0.0.1:0", "", filepath.Join(dir, "data")
	cfg.API.TLS.CertFile, cfg.API.TLS.KeyFile = write("tls.crt", pair.CertPEM), write("tls.key", pair.KeyPEM)
	admin, reader := strings.Repeat("a", 32), strings.Repeat("r", 32)
	cfg.Auth.Tokens = []config.Token{{Name: "admin", Token: admin, Role: auth.RoleAdmin}, {Name: "reader", Token: reader, Role: auth.RoleReadOnly}}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	logs := &testlog.Buffer{}
	addr, done := make(chan string, 1), make(chan error, 1)
	go func() {
		done <- server.Run(ctx, cfg, server.NewLogger(cfg.Log, logs), func(api, _ net.Addr) { addr <- api.String() })
	}()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	})
	var base string
	select {
	case a := <-addr:
		base = "https://localhost:" + a[strings.LastIndex(a, ":")+1:]
	case err := <-done:
		t.Fatalf("Run: %v\n%s", err, logs)
	}
	tests := map[string]struct {
		token   string // "" = no --token-file
		wantErr string
	}{
		"admin":      {token: admin + "\n"},
		"read only":  {token: reader, wantErr: "PUT helm-test/"},
		"wrong":      {token: strings.Repeat("x", 32), wantErr: "401"},
		"no token":   {wantErr: "--put-get needs --token-file"},
		"empty file": {token: "\n", wantErr: "is empty"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			args := []string{"--url", base + "/healthz", "--ca-file", caFile, "--put-get", "--timeout", "10s"}
			if tc.token != "" {
				args = append(args, "--token-file", write(strings.ReplaceAll(name, " ", "-")+".token", []byte(tc.token)))
			}
			err := Run(context.Background(), args, io.Discard)
			if tc.wantErr == "" && err != nil {
				t.Fatalf("Run: %v", err)
			}
			if tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)) {
				t.Fatalf("Run: %v, want an error with %q", err, tc.wantErr)
			}
		})
	}
}
