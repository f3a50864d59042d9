package cluster

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hashicorp/raft"

	"kvstore.dev/kvstore/internal/store"
)

// memberDir makes a stopped member's data dir: a store and a Raft log
// whose configuration is servers.
func memberDir(t *testing.T, servers []raft.Server) string {
	t.Helper()
	dir := t.TempDir()
	st, err := store.Open(filepath.Join(dir, store.DBFile), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	writeRaftConfiguration(t, filepath.Join(dir, store.RaftDir), servers)
	return dir
}

var threeServers = []raft.Server{
	{ID: "n0", Address: "127.0.0.1:7000", Suffrage: raft.Voter},
	{ID: "n1", Address: "127.0.0.1:7001", Suffrage: raft.Voter},
	{ID: "n2", Address: "127.0.0.1:7002", Suffrage: raft.Voter},
}

// TestRecoverRefuses: Recover changes nothing and says why on a data dir
// it must not recover.
func TestRecoverRefuses(t *testing.T) {
	cases := map[string]struct {
		dir     func(t *testing.T) string
		node    string
		want    string // in the message
		wantErr error  // errors.Is, if set
	}{
		"no raft state": {func(t *testing.T) string { return t.TempDir() }, "n0", "not a cluster member's data directory", ErrNoRaftState},
		"empty raft dir": {func(t *testing.T) string {
			d := t.TempDir()
			if err := os.MkdirAll(filepath.Join(d, store.RaftDir), 0o700); err != nil {
				t.Fatal(err)
			}
			return d
		}, "n0", "holds no raft log", ErrNoRaftState},
		"single node": {func(t *testing.T) string {
			return memberDir(t, []raft.Server{{ID: "n0", Address: singleAddr, Suffrage: raft.Voter}})
		}, "n0", "single node's", nil},
		"old log format": {func(t *testing.T) string {
			d := t.TempDir()
			if err := os.MkdirAll(filepath.Join(d, store.RaftDir), 0o700); err != nil {
				t.Fatal(err)
			}
			writeBoltLog(t, filepath.Join(d, store.RaftDir, boltLogFile))
			return d
		}, "n0", "raft-boltdb", ErrLogFormat},
		"not a member": {func(t *testing.T) string { return memberDir(t, threeServers) }, "n9", "not a member", nil},
		"server running": {func(t *testing.T) string {
			d := memberDir(t, threeServers)
			logs, err := openLogStore(filepath.Join(d, store.RaftDir), 0, false, nil)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { logs.Close() })
			return d
		}, "n0", "in use by another process", nil},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			dir := tc.dir(t)
			before, _ := ReadServers(filepath.Join(dir, store.RaftDir))
			_, err := Recover(dir, tc.node, "")
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Recover = %v, want an error containing %q", err, tc.want)
			}
			if tc.wantErr != nil && !errors.Is(err, tc.wantErr) {
				t.Errorf("Recover = %v, want errors.Is %v", err, tc.wantErr)
			}
			if name == "server running" {
				return
			}
			if after, _ := ReadServers(filepath.Join(dir, store.RaftDir)); len(after) != len(before) {
				t.Errorf("configuration changed: %v, then %v", before, after)
			}
		})
	}
}

// TestRecoverOneServer: a member's state becomes a one-server cluster of
// that member, at its address, keeping the log's last term and index.
func TestRecoverOneServer(t *testing.T) {
	dir := memberDir(t, threeServers)
	res, err := Recover(dir, "n1", "")
	if err != nil {
		t.Fatal(err)
	}
	if res.Address != "127.0.0.1:7001" || res.LastLogTerm != 1 || res.LastLogIndex != 1 || len(res.Previous) != 3 {
		t.Errorf("result %+v, want n1 at 127.0.0.1:7001, last term 1 index 1, 3 previous servers", res)
	}
	got, err := ReadServers(filepath.Join(dir, store.RaftDir))
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got[0].ID != "n1" || got[0].Address != "127.0.0.1:7001" || got[0].Suffrage != raft.Voter {
		t.Errorf("configuration after recovery %v, want n1 alone", got)
	}
	// A second run finds the one-server cluster; --address moves it.
	if res, err = Recover(dir, "n1", "127.0.0.1:7101"); err != nil || res.Address != "127.0.0.1:7101" {
		t.Fatalf("second Recover = %+v, %v", res, err)
	}
	if got, _ = ReadServers(filepath.Join(dir, store.RaftDir)); len(got) != 1 || got[0].Address != "127.0.0.1:7101" {
		t.Errorf("configuration %v, want n1 at 127.0.0.1:7101", got)
	}
}
