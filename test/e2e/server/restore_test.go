package server

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"kvstore.dev/kvstore/internal/store"
	"kvstore.dev/kvstore/test/harness"
)

// writeStore leaves a closed kv.db in dir with one key, applied at index.
func writeStore(t *testing.T, dir string, index uint64) string {
	t.Helper()
	path := filepath.Join(dir, store.DBFile)
	st, err := store.Open(path, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.Apply([]store.Entry{{Index: index, Command: store.Command{Op: store.OpPut, Key: "k", Value: []byte("v"), Now: time.Now().UnixNano()}}}); err != nil {
		t.Fatal(err)
	}
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestClusterMemberRestoreRefused: `kvstore restore` into a data dir whose
// raft/ is not a single node's (internal/server's TestRestoreSingleNode)
// fails (with --force too) and leaves kv.db as it was, and a cluster
// node whose store is ahead of its Raft log does not start.
func TestClusterMemberRestoreRefused(t *testing.T) {
	bin := harness.Binary(t, "server")
	snapDir := t.TempDir()
	snap := writeStore(t, snapDir, 900)
	tests := map[string]struct {
		args func(dir string) []string
		want string
	}{
		"restore into a member": {
			args: func(dir string) []string { return []string{"restore", "--from", snap, "--data-dir", dir} },
			want: "rejoin",
		},
		"restore --force into a member": {
			args: func(dir string) []string { return []string{"restore", "--from", snap, "--data-dir", dir, "--force"} },
			want: "rejoin",
		},
		"start a member whose store is ahead of its log": {
			args: func(dir string) []string {
				return []string{"--data-dir", dir, "--listen", "127.0.0.1:0", "--debug-listen", "off", "--log-format", "text",
					"--node-id", "n0", "--peer-listen", "127.0.0.1:7999", "--peer-advertise", "127.0.0.1:7999", "--bootstrap-node", "n0"}
			},
			want: "refusing to start",
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			db := writeStore(t, dir, 500)
			if strings.HasPrefix(name, "restore") {
				if err := os.MkdirAll(filepath.Join(dir, store.RaftDir), 0o700); err != nil {
					t.Fatal(err)
				}
			}
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			cmd := exec.CommandContext(ctx, bin, tc.args(dir)...)
			cmd.Env = []string{"KVSTORE_PEER_TOKEN=peer-token-0123456789", "KVSTORE_ADMIN_TOKEN=admin-token-0123456789"}
			var stderr bytes.Buffer
			cmd.Stderr = &stderr
			err := cmd.Run()
			if err == nil || !strings.Contains(stderr.String(), tc.want) {
				t.Fatalf("kvstore %s: %v, want an error saying %q; stderr:\n%s", strings.Join(tc.args(dir), " "), err, tc.want, &stderr)
			}
			st, err := store.Open(db, store.Options{})
			if err != nil {
				t.Fatal(err)
			}
			defer st.Close()
			if got := st.AppliedIndex(); got != 500 {
				t.Errorf("kv.db's applied index is %d after the refusal, want 500 (unchanged)", got)
			}
		})
	}
}
