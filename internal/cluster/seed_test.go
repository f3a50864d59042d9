package cluster

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"kvstore.dev/kvstore/internal/store"
)

// TestSeedRefuses: Seed changes nothing and says why on a data dir it
// must not seed; a seeded dir holds a one-server configuration of the
// member at its address, and a second Seed is refused.
func TestSeedRefuses(t *testing.T) {
	withStore := func(t *testing.T) string {
		d := t.TempDir()
		st, err := store.Open(filepath.Join(d, store.DBFile), store.Options{})
		if err != nil {
			t.Fatal(err)
		}
		if err := st.Close(); err != nil {
			t.Fatal(err)
		}
		return d
	}
	cases := map[string]struct {
		dir        func(t *testing.T) string
		id, addr   string
		want       string
		wantNoRaft bool
	}{
		"no store":      {func(t *testing.T) string { return t.TempDir() }, "kv-0", "kv-0:7000", "the store", true},
		"raft state":    {func(t *testing.T) string { return memberDir(t, threeServers) }, "n0", "n0:7000", "holds Raft state already", false},
		"empty node id": {withStore, "", "kv-0:7000", "node id", true},
		"bad address":   {withStore, "kv-0", "kv-0", "not a host:port", true},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			dir := tc.dir(t)
			before, _ := ReadServers(filepath.Join(dir, store.RaftDir))
			_, err := Seed(dir, tc.id, tc.addr)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Seed = %v, want an error containing %q", err, tc.want)
			}
			if _, serr := os.Stat(filepath.Join(dir, store.RaftDir)); tc.wantNoRaft && serr == nil {
				t.Error("Seed left a raft dir")
			}
			if after, _ := ReadServers(filepath.Join(dir, store.RaftDir)); len(after) != len(before) {
				t.Errorf("configuration changed: %v, then %v", before, after)
			}
		})
	}
	dir := withStore(t)
	idx, err := Seed(dir, "kv-0", "kv-0.peers:7000")
	if err != nil || idx != 1 {
		t.Fatalf("Seed = %d, %v; want index 1 (an empty store)", idx, err)
	}
	got, err := ReadServers(filepath.Join(dir, store.RaftDir))
	if err != nil || len(got) != 1 || got[0].ID != "kv-0" || got[0].Address != "kv-0.peers:7000" {
		t.Errorf("seeded configuration %v, %v", got, err)
	}
	if _, err := Seed(dir, "kv-0", "kv-0.peers:7000"); err == nil || !strings.Contains(err.Error(), "holds Raft state already") {
		t.Errorf("second Seed = %v", err)
	}
}
