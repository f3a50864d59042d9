package main

import (
	"bytes"
	"context"
	"io"
	"path/filepath"
	"strings"
	"testing"

	"kvstore.dev/kvstore/internal/cluster"
	"kvstore.dev/kvstore/internal/config"
	"kvstore.dev/kvstore/test/harness"
	"kvstore.dev/kvstore/test/harness/inprocess"
)

// TestBackupRestoreCommands: `kvstore backup` writes a backup of a running
// server into a directory, `kvstore restore --from file://...` restores it
// into an empty data dir, and refuses a second time without --force.
func TestBackupRestoreCommands(t *testing.T) {
	const token = "cmd-test-admin-token-0123456789"
	cfg := config.Default()
	cfg.Listen, cfg.DebugListen, cfg.Console.Enabled, cfg.Log.Level = "127.0.0.1:0", "", false, "warn"
	cfg.Auth.Tokens = []config.Token{{Name: "admin", Token: token, Role: "admin"}}
	srv := inprocess.Start(t, cfg)
	if r := harness.NewClient(t, srv.URL, token).Put("k", []byte("v")); !r.OK() {
		t.Fatal(r)
	}
	getenv := func(k string) string { return map[string]string{config.EnvAdminToken: token}[k] }
	dest := "file://" + filepath.Join(t.TempDir(), "backups")
	var stderr bytes.Buffer
	if err := run(context.Background(), []string{"backup", "--server", srv.URL, "--destination", dest}, getenv, io.Discard, &stderr); err != nil {
		t.Fatalf("backup: %v\n%s", err, &stderr)
	}
	if strings.Contains(stderr.String(), token) {
		t.Fatalf("the log shows the token:\n%s", &stderr)
	}
	dataDir := filepath.Join(t.TempDir(), "data")
	var out bytes.Buffer
	if err := run(context.Background(), []string{"restore", "--from", dest, "--data-dir", dataDir}, getenv, &out, io.Discard); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "restored backup kvstore-") || !strings.Contains(out.String(), "1 keys") {
		t.Errorf("restore printed %q", out.String())
	}
	out.Reset()
	seeded := filepath.Join(t.TempDir(), "data")
	if err := run(context.Background(), []string{"restore", "--from", dest, "--data-dir", seeded, "--node-id", "kv-0", "--peer-advertise", "kv-0:7000"}, getenv, &out, io.Discard); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "seeded a one-server cluster of kv-0 at kv-0:7000") {
		t.Errorf("restore --node-id printed %q", out.String())
	}
	if servers, err := cluster.ReadServers(filepath.Join(seeded, "raft")); err != nil || len(servers) != 1 || servers[0].Address != "kv-0:7000" {
		t.Errorf("seeded configuration %v, %v; want kv-0 at kv-0:7000 alone", servers, err)
	}
	for name, args := range map[string][]string{
		"existing data":      {"restore", "--from", dest, "--data-dir", dataDir},
		"bad uri":            {"restore", "--from", "s3://Bad/x", "--data-dir", t.TempDir()},
		"--backup with file": {"restore", "--from", "snap.db", "--backup", "x", "--data-dir", t.TempDir()},
		"wrong sha256":       {"restore", "--from", dest, "--sha256", strings.Repeat("0", 64), "--data-dir", t.TempDir()},
		"--node-id alone":    {"restore", "--from", dest, "--node-id", "kv-0", "--data-dir", t.TempDir()},
		"--node-id, --force": {"restore", "--from", dest, "--node-id", "kv-0", "--peer-advertise", "kv-0:7000", "--force", "--data-dir", t.TempDir()},
		"member, data there": {"restore", "--from", dest, "--node-id", "kv-0", "--peer-advertise", "kv-0:7000", "--data-dir", dataDir},
	} {
		if err := run(context.Background(), args, getenv, io.Discard, io.Discard); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}
