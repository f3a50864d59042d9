package cluster

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"kvstore.dev/kvstore/internal/store"
	"kvstore.dev/kvstore/test/harness"
)

// writeStoreAt leaves a closed kv.db in dir whose applied index is applied.
func writeStoreAt(t *testing.T, dir string, applied uint64) {
	t.Helper()
	st, err := store.Open(filepath.Join(dir, store.DBFile), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.Apply([]store.Entry{{Index: applied, Command: store.Command{Op: store.OpPut, Key: "other/history", Value: []byte("x"), Now: time.Now().UnixNano()}}}); err != nil {
		t.Fatal(err)
	}
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
}

// TestStartRefusesStoreAheadOfLog: a node whose kv.db has applied more than
// its Raft state holds (a snapshot restored into a member, a single node's
// data started in cluster mode) must not start, or it would skip the
// cluster's entries and serve data the cluster does not have.
func TestStartRefusesStoreAheadOfLog(t *testing.T) {
	tests := map[string]func(t *testing.T, dir, addr string){
		"kv.db replaced under a member's raft/": func(t *testing.T, dir, addr string) {
			n := startNode(t, "n0", dir, addr, true, nil)
			waitFor(t, "leader", func() error { _, err := put(context.Background(), n, "a", "1"); return err })
			n.stop()
			other := t.TempDir()
			writeStoreAt(t, other, 500)
			b, err := os.ReadFile(filepath.Join(other, store.DBFile))
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(dir, store.DBFile), b, 0o600); err != nil {
				t.Fatal(err)
			}
		},
		"single node's data started in cluster mode": func(t *testing.T, dir, _ string) {
			writeStoreAt(t, dir, 500)
		},
	}
	for name, prepare := range tests {
		t.Run(name, func(t *testing.T) {
			dir, addr := t.TempDir(), harness.FreeAddr(t)
			prepare(t, dir, addr)
			st, err := store.Open(filepath.Join(dir, store.DBFile), store.Options{})
			if err != nil {
				t.Fatal(err)
			}
			defer st.Close()
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			n, err := Start(ctx, fastConfig("n0", dir, addr, true, nil), st)
			if err == nil {
				n.Close()
				t.Fatal("Start succeeded on a store ahead of its Raft log")
			}
			for _, want := range []string{"refusing to start", "applied log index 500", "rejoins"} {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error %q does not say %q", err, want)
				}
			}
		})
	}
}
