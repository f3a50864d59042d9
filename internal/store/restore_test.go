package store

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// snapshotFile writes a snapshot of a store holding keys to a file and
// returns its path.
func snapshotFile(t *testing.T, keys ...string) string {
	t.Helper()
	s := mustOpenStore(t)
	for _, k := range keys {
		applyOne(t, s, put(k, "v-"+k))
	}
	path := filepath.Join(t.TempDir(), "snap.db")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.WriteSnapshot(f); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	return path
}

// dataDirWith returns a data dir whose kv.db holds the key "old".
func dataDirWith(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	s, err := Open(filepath.Join(dir, DBFile), Options{})
	if err != nil {
		t.Fatal(err)
	}
	applyOne(t, s, put("old", "x"))
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	return dir
}

// assertOldData checks that dir's kv.db still holds exactly the key "old".
func assertOldData(t *testing.T, dir string) {
	t.Helper()
	s := mustOpenAt(t, filepath.Join(dir, DBFile))
	if kv, err := s.Get("old", t0, true); err != nil || string(kv.Value) != "x" {
		t.Errorf("old data lost: %q %v", kv.Value, err)
	}
	if st := s.Status(); st.Keys != 1 {
		t.Errorf("old database has %d keys, want 1", st.Keys)
	}
}

// TestRestoreRefusesClusterMember: an offline restore into a data dir with
// raft/ is refused, with and without --force, and changes nothing.
func TestRestoreRefusesClusterMember(t *testing.T) {
	snap := snapshotFile(t, "a", "b")
	for name, force := range map[string]bool{"without force": false, "with force": true} {
		t.Run(name, func(t *testing.T) {
			dir := dataDirWith(t)
			if err := os.MkdirAll(filepath.Join(dir, RaftDir, "snapshots"), 0o700); err != nil {
				t.Fatal(err)
			}
			_, err := Restore(snap, dir, force)
			if !errors.Is(err, ErrClusterMember) {
				t.Fatalf("Restore into a member: %v, want ErrClusterMember", err)
			}
			if !strings.Contains(err.Error(), "rejoin") {
				t.Errorf("error %q does not say what to do instead", err)
			}
			assertOldData(t, dir)
			if !fileExists(filepath.Join(dir, RaftDir)) {
				t.Error("raft/ was removed")
			}
		})
	}
}
