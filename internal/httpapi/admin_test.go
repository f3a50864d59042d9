package httpapi

import (
	"io"
	"os"
	"path/filepath"
	"testing"
	"time"

	"kvstore.dev/kvstore/internal/store"
)

// TestSnapshotRestores takes a hot snapshot over HTTP and restores it into a
// new data directory, which must hold the same keys.
func TestSnapshotRestores(t *testing.T) {
	ts := newTestServer(t)
	for _, k := range []string{"a", "b/c", "d"} {
		ts.do(t, req{method: "PUT", path: "/api/v1/kv/" + k, token: adminToken, body: "v-" + k})
	}
	resp := ts.do(t, req{method: "GET", path: "/api/v1/snapshot", token: adminToken})
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "application/octet-stream" {
		t.Fatalf("snapshot: %d %v", resp.StatusCode, resp.Header)
	}
	snap := filepath.Join(t.TempDir(), "snap.db")
	f, _ := os.Create(snap)
	if _, err := io.Copy(f, resp.Body); err != nil {
		t.Fatal(err)
	}
	f.Close()
	dir := t.TempDir()
	if _, err := store.Restore(snap, dir, false); err != nil {
		t.Fatalf("restore: %v", err)
	}
	st, err := store.Open(filepath.Join(dir, store.DBFile), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	for _, k := range []string{"a", "b/c", "d"} {
		kv, err := st.Get(k, time.Now(), true)
		if err != nil || string(kv.Value) != "v-"+k {
			t.Errorf("restored %q = %q, %v", k, kv.Value, err)
		}
	}
}
