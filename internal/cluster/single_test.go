package cluster

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/raft"

	"kvstore.dev/kvstore/internal/store"
	"kvstore.dev/kvstore/test/harness"
)

// startSingle starts a single node (a one-server cluster) on dir and waits
// until it leads.
func startSingle(t *testing.T, dir string, tweaks ...func(*Config)) *testNode {
	t.Helper()
	n := startNode(t, "n1", dir, "", true, nil, append([]func(*Config){func(c *Config) { c.Single = true }}, tweaks...)...)
	waitFor(t, "the single node leads", n.Ready)
	return n
}

// neverFlush keeps every write in the store's buffer (and Raft's log) only.
func neverFlush(c *Config) {
	c.Flush = store.FlushPolicy{Interval: time.Hour, MaxKeys: 1 << 30, MaxBytes: 1 << 40}
}

// TestSingleNodeKeepsAcknowledgedWrites: what a single node acknowledged
// survives a clean restart and a crash (the data dir copied as kill -9
// leaves it: nothing buffered flushed to kv.db), replayed from Raft's log.
func TestSingleNodeKeepsAcknowledgedWrites(t *testing.T) {
	for _, crash := range []bool{false, true} {
		t.Run(fmt.Sprintf("crash=%v", crash), func(t *testing.T) {
			dir := t.TempDir()
			n := startSingle(t, dir, neverFlush)
			ctx := context.Background()
			for i := range 50 {
				if _, err := put(ctx, n, fmt.Sprintf("k%02d", i), fmt.Sprint(i)); err != nil {
					t.Fatal(err)
				}
			}
			if _, err := n.Propose(ctx, store.Command{Op: store.OpDeletePrefix, Key: "k4"}); err != nil {
				t.Fatal(err)
			}
			if keys, _ := n.st.Buffered(); keys == 0 {
				t.Fatal("nothing buffered: the test would not test recovery")
			}
			want, _ := n.st.List(store.ListOptions{Limit: 100, Now: time.Now()})
			if crash {
				crashed := t.TempDir()
				if err := os.CopyFS(crashed, os.DirFS(dir)); err != nil {
					t.Fatal(err)
				}
				dir = crashed
			}
			n.stop()
			n = startSingle(t, dir)
			if _, err := n.ReadBarrier(ctx, Linearizable); err != nil {
				t.Fatal(err)
			}
			got, _ := n.st.List(store.ListOptions{Limit: 100, Now: time.Now()})
			if !reflect.DeepEqual(got, want) || len(got.Items) != 40 {
				t.Errorf("after restart (-want +got):\n- %+v\n+ %+v", want, got)
			}
			if _, err := put(ctx, n, "after", "restart"); err != nil {
				t.Errorf("write after restart: %v", err)
			}
		})
	}
}

// TestSingleNodeGroupsConcurrentWriters: concurrent writes are each applied
// once, with distinct revisions, in fewer log entries than writes.
func TestSingleNodeGroupsConcurrentWriters(t *testing.T) {
	n := startSingle(t, t.TempDir())
	const writers, each = 32, 50
	var mu sync.Mutex
	seen := map[uint64]bool{}
	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			for i := range each {
				r, err := put(context.Background(), n, fmt.Sprintf("w%d/%d", w, i), "v")
				if err != nil || !r.Created {
					t.Errorf("put: %+v %v", r, err)
					return
				}
				mu.Lock()
				if seen[r.KV.ModRevision] {
					t.Errorf("revision %d acknowledged twice", r.KV.ModRevision)
				}
				seen[r.KV.ModRevision] = true
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if st := n.st.Status(); st.Keys != writers*each || st.Revision != writers*each {
		t.Errorf("status %+v, want %d keys and revision", st, writers*each)
	}
	if last, _ := n.logs.LastIndex(); last >= writers*each {
		t.Errorf("%d log entries for %d writes: no batching", last, writers*each)
	}
}

// TestSingleNodeHandOffAndClose: a single node has no one to hand off to,
// and refuses writes once closed. (Its cluster endpoints: httpapi's
// TestSingleNodeCluster.)
func TestSingleNodeHandOffAndClose(t *testing.T) {
	n := startSingle(t, t.TempDir())
	ctx := context.Background()
	if err := n.HandOff(ctx); err != nil || !n.IsLeader() {
		t.Errorf("HandOff: %v, leader after it: %v", err, n.IsLeader())
	}
	node := n.Node
	node.Close()
	if _, err := node.Propose(ctx, store.Command{Op: store.OpPut, Key: "b"}); !errors.Is(err, store.ErrClosed) {
		t.Errorf("Propose after Close: %v, want ErrClosed", err)
	}
}

// TestSingleNodeAdoptsStore: a store with data and no Raft state (a
// restored snapshot, the former single-node write path's data dir) becomes
// the one-server cluster's state at its applied index, and stays so.
func TestSingleNodeAdoptsStore(t *testing.T) {
	dir := t.TempDir()
	writeStoreAt(t, dir, 500)
	for range 2 { // adopted, then restarted
		n := startSingle(t, dir)
		if _, err := n.ReadBarrier(context.Background(), Linearizable); err != nil {
			t.Fatal(err)
		}
		if _, err := n.st.Get("other/history", time.Now(), false); err != nil {
			t.Fatalf("adopted key: %v", err)
		}
		r, err := put(context.Background(), n, "new", "1")
		if err != nil || n.st.AppliedIndex() <= 500 {
			t.Fatalf("write after adoption: %+v %v, applied index %d", r, err, n.st.AppliedIndex())
		}
		if single, err := IsSingle(filepath.Join(dir, "raft")); err == nil {
			t.Error("IsSingle read the log of a running node")
		} else if single {
			t.Error("IsSingle true on error")
		}
		n.stop()
		if single, err := IsSingle(filepath.Join(dir, "raft")); err != nil || !single {
			t.Errorf("IsSingle on a stopped single node = %v, %v", single, err)
		}
	}
}

// TestSingleNodeRefusesClusterState: a single node does not run on the
// Raft state of a cluster with other servers, nor under another id.
func TestSingleNodeRefusesClusterState(t *testing.T) {
	tests := map[string]struct {
		servers []raft.Server
		id      string
	}{
		"other servers": {[]raft.Server{{ID: "n1", Address: "a:1"}, {ID: "n2", Address: "b:1"}}, "n1"},
		"another id":    {[]raft.Server{{ID: "node-7", Address: singleAddr}}, "n1"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			writeRaftConfiguration(t, filepath.Join(dir, "raft"), tc.servers)
			if single, err := IsSingle(filepath.Join(dir, "raft")); err != nil || single != (len(tc.servers) == 1) {
				t.Errorf("IsSingle = %v, %v", single, err)
			}
			st, err := store.Open(filepath.Join(dir, store.DBFile), store.Options{})
			if err != nil {
				t.Fatal(err)
			}
			defer st.Close()
			cfg := fastConfig(tc.id, dir, "", true, nil)
			cfg.Single = true
			n, err := Start(context.Background(), cfg, st)
			if err == nil {
				n.Close()
				t.Fatal("a single node started on another cluster's Raft state")
			}
			if !strings.Contains(err.Error(), "refusing to start as a single node") {
				t.Errorf("error %q", err)
			}
		})
	}
}

// TestClusterModeRefusesSingleNodeState: a single node's data dir started
// with cluster config is refused (the node would never lead).
func TestClusterModeRefusesSingleNodeState(t *testing.T) {
	dir := t.TempDir()
	n := startSingle(t, dir)
	n.stop()
	st, err := store.Open(filepath.Join(dir, store.DBFile), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	c, err := Start(context.Background(), fastConfig("n1", dir, harness.FreeAddr(t), true, nil), st)
	if err == nil {
		c.Close()
		t.Fatal("a cluster member started on a single node's Raft state")
	}
	if !strings.Contains(err.Error(), "refusing to start in cluster mode") {
		t.Errorf("error %q", err)
	}
}

// writeRaftConfiguration leaves Raft state in dir whose log holds one
// configuration entry of servers (voters).
func writeRaftConfiguration(t *testing.T, dir string, servers []raft.Server) {
	t.Helper()
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	logs, err := openLogStore(dir, 0, true, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer logs.Close()
	if err := logs.SetUint64([]byte("CurrentTerm"), 1); err != nil {
		t.Fatal(err)
	}
	err = logs.StoreLog(&raft.Log{Index: 1, Term: 1, Type: raft.LogConfiguration, Data: raft.EncodeConfiguration(raft.Configuration{Servers: servers})})
	if err != nil {
		t.Fatal(err)
	}
}
