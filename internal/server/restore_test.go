package server

import (
	"errors"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hashicorp/raft"
	wal "github.com/hashicorp/raft-wal"
	"github.com/hashicorp/raft-wal/metadb"

	"kvstore.dev/kvstore/internal/store"
)

// TestRestoreSingleNode: kvstore restore into a single node's data dir
// (which holds raft/, its one-server cluster) brings the node back as a
// one-server cluster holding the snapshot, across restarts.
func TestRestoreSingleNode(t *testing.T) {
	dir := t.TempDir()
	r := start(t, withAdmin(dir))
	base := "http://" + r.api + "/api/v1/kv/"
	for _, kv := range [][2]string{{"a", "1"}, {"b", "2"}} {
		if code, body := do(t, "PUT", base+kv[0], kv[1]); code >= 300 {
			t.Fatalf("PUT: %d %s", code, body)
		}
	}
	snap := filepath.Join(t.TempDir(), "snap.db")
	req, _ := http.NewRequest("GET", "http://"+r.api+"/api/v1/snapshot", nil)
	req.Header.Set("Authorization", "Bearer "+adminToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("snapshot: %v %v", resp, err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err := os.WriteFile(snap, b, 0o600); err != nil {
		t.Fatal(err)
	}
	do(t, "PUT", base+"c", "3")
	do(t, "DELETE", base+"a", "")
	if _, err := Restore(snap, dir, true); err == nil {
		t.Error("Restore into the data dir of a running server succeeded")
	}
	r.stop(t)

	st, err := Restore(snap, dir, true)
	if err != nil {
		t.Fatalf("Restore: %v", err)
	}
	if st.Keys != 2 {
		t.Errorf("restored %+v, want 2 keys", st)
	}
	for range 2 { // restored, then restarted
		r = start(t, withAdmin(dir))
		wantKeys(t, r, map[string]string{"a": "1", "b": "2", "c": ""})
		if code, body := do(t, "PUT", "http://"+r.api+"/api/v1/kv/d", "4"); code >= 300 {
			t.Fatalf("PUT after the restore: %d %s", code, body)
		}
		r.stop(t)
	}
}

// TestRestoreRefusesClusterMember: a data dir whose Raft state is a
// multi-server cluster's is refused, force or not, and left as it was.
func TestRestoreRefusesClusterMember(t *testing.T) {
	dir := t.TempDir()
	raftDir := filepath.Join(dir, store.RaftDir)
	conf := raft.Configuration{Servers: []raft.Server{{ID: "n0", Address: "n0:7000"}, {ID: "n1", Address: "n1:7000"}}}
	writeRaftLog(t, raftDir, &raft.Log{Index: 1, Term: 1, Type: raft.LogConfiguration, Data: raft.EncodeConfiguration(conf)})
	snap := filepath.Join(t.TempDir(), "snap.db")
	s, err := store.Open(snap, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	for _, force := range []bool{false, true} {
		_, err := Restore(snap, dir, force)
		if !errors.Is(err, store.ErrClusterMember) || !strings.Contains(err.Error(), raftDir) {
			t.Errorf("Restore(force %v) = %v, want ErrClusterMember naming %s", force, err, raftDir)
		}
	}
	if _, err := os.Stat(filepath.Join(raftDir, "wal", metadb.FileName)); err != nil {
		t.Errorf("raft state touched: %v", err)
	}
}

// writeRaftLog leaves in raftDir (a data dir's store.RaftDir) a Raft log of
// the format a node keeps there (raft-wal, in raftDir/wal) holding logs.
func writeRaftLog(t *testing.T, raftDir string, logs ...*raft.Log) {
	t.Helper()
	dir := filepath.Join(raftDir, "wal")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	meta := &metadb.BoltMetaDB{} // closed here: raft-wal's Close leaves it open
	w, err := wal.Open(dir, wal.WithMetaStore(meta))
	if err != nil {
		t.Fatal(err)
	}
	defer meta.Close()
	defer w.Close()
	if err := w.StoreLogs(logs); err != nil {
		t.Fatal(err)
	}
}
