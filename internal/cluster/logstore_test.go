package cluster

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/raft"
	"github.com/hashicorp/raft-wal/metadb"
	bolt "go.etcd.io/bbolt"

	"kvstore.dev/kvstore/internal/store"
)

// startSingleErr starts a single node on dir and returns Start's error,
// closing what it opened.
func startSingleErr(t *testing.T, dir string) error {
	t.Helper()
	st, err := store.Open(filepath.Join(dir, store.DBFile), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	cfg := fastConfig("n1", dir, "", true, nil)
	cfg.Single = true
	n, err := Start(context.Background(), cfg, st)
	if err == nil {
		n.Close()
	}
	return err
}

// writeBoltLog leaves a raft-boltdb log (a bbolt file with its buckets) at
// path, as a kvstore before raft-wal did.
func writeBoltLog(t *testing.T, path string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		t.Fatal(err)
	}
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	err = db.Update(func(tx *bolt.Tx) error {
		for _, b := range []string{"logs", "conf"} {
			if _, err := tx.CreateBucket([]byte(b)); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// writeWAL leaves a raft-wal log in raftDir holding one entry.
func writeWAL(t *testing.T, raftDir string) {
	t.Helper()
	writeRaftConfiguration(t, raftDir, []raft.Server{{ID: "n1", Address: singleAddr}})
}

// TestLogFormat: a node starts on an empty Raft dir (a new raft-wal log)
// and on its own log (reopened, entries intact); it refuses, with
// ErrLogFormat and a message naming the path and what to do, an older
// kvstore's raft-boltdb raft.db and a raft-wal dir that does not read, and
// leaves them as they were.
func TestLogFormat(t *testing.T) {
	tests := map[string]struct {
		setup func(t *testing.T, raftDir string)
		// want: the substrings of the refusal (paths relative to raftDir);
		// none means the node starts.
		want []string
		// kept: a file (relative to raftDir) the refusal leaves in place.
		kept string
	}{
		"empty dir": {setup: func(*testing.T, string) {}},
		"existing raft-wal log": {setup: func(t *testing.T, raftDir string) {
			n := startSingle(t, filepath.Dir(raftDir))
			if _, err := put(context.Background(), n, "k", "v"); err != nil {
				t.Fatal(err)
			}
			n.stop()
		}},
		"raft-boltdb raft.db": {
			setup: func(t *testing.T, raftDir string) { writeBoltLog(t, filepath.Join(raftDir, "raft.db")) },
			want:  []string{"raft.db", "raft-boltdb", "does not migrate", "kvstore restore", "rejoins"},
			kept:  "raft.db",
		},
		"raft-boltdb raft.db beside a raft-wal log": {
			setup: func(t *testing.T, raftDir string) {
				writeWAL(t, raftDir)
				writeBoltLog(t, filepath.Join(raftDir, "raft.db"))
			},
			want: []string{"raft.db", "raft-boltdb"},
			kept: "raft.db",
		},
		"raft-wal metadata unreadable": {
			setup: func(t *testing.T, raftDir string) {
				if err := os.MkdirAll(filepath.Join(raftDir, walDir), 0o700); err != nil {
					t.Fatal(err)
				}
				junk := bytes.Repeat([]byte("not a bbolt file "), 4096)
				if err := os.WriteFile(filepath.Join(raftDir, walDir, metadb.FileName), junk, 0o600); err != nil {
					t.Fatal(err)
				}
			},
			want: []string{walDir, "does not open as a raft-wal log", "rejoins"},
			kept: filepath.Join(walDir, metadb.FileName),
		},
		"raft-wal segments without metadata": {
			setup: func(t *testing.T, raftDir string) {
				writeWAL(t, raftDir)
				if err := os.Remove(filepath.Join(raftDir, walDir, metadb.FileName)); err != nil {
					t.Fatal(err)
				}
			},
			want: []string{walDir, "segment files", metadb.FileName},
			kept: walDir,
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			raftDir := filepath.Join(dir, store.RaftDir)
			tc.setup(t, raftDir)
			var before []string
			if tc.kept != "" {
				before = listDir(t, filepath.Join(raftDir, tc.kept))
			}
			err := startSingleErr(t, dir)
			if len(tc.want) == 0 {
				if err != nil {
					t.Fatalf("Start: %v", err)
				}
				n := startSingle(t, dir)
				if _, err := put(context.Background(), n, "after", "1"); err != nil {
					t.Fatalf("write after a restart: %v", err)
				}
				if name == "existing raft-wal log" {
					if _, err := n.st.Get("k", time.Now(), false); err != nil {
						t.Errorf("the write before the restart: %v", err)
					}
				}
				n.stop()
				if _, err := os.Stat(filepath.Join(raftDir, walDir, metadb.FileName)); err != nil {
					t.Errorf("no raft-wal log: %v", err)
				}
				return
			}
			if !errors.Is(err, ErrLogFormat) {
				t.Fatalf("Start = %v, want ErrLogFormat", err)
			}
			for _, w := range tc.want {
				if w == "raft.db" || w == walDir {
					w = filepath.Join(raftDir, w)
				}
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q\ndoes not say %q", err, w)
				}
			}
			if after := listDir(t, filepath.Join(raftDir, tc.kept)); fmt.Sprint(after) != fmt.Sprint(before) {
				t.Errorf("%s changed: (-want +got)\n-%v\n+%v", tc.kept, before, after)
			}
			if _, err := ReadServers(raftDir); !errors.Is(err, ErrLogFormat) {
				t.Errorf("ReadServers = %v, want ErrLogFormat", err)
			}
		})
	}
}

// listDir names path's files with their sizes (path itself if a file).
func listDir(t *testing.T, path string) []string {
	t.Helper()
	var out []string
	err := filepath.Walk(path, func(p string, fi os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		out = append(out, fmt.Sprintf("%s:%d", strings.TrimPrefix(p, path), fi.Size()))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// TestLogInUseIsRefused: a second open of a log held open fails at once,
// naming the directory, instead of waiting for the first to close.
func TestLogInUseIsRefused(t *testing.T) {
	raftDir := t.TempDir()
	l, err := openLogStore(raftDir, 0, true, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	done := make(chan error, 1)
	go func() {
		l2, err := openLogStore(raftDir, 0, true, nil)
		if err == nil {
			l2.Close()
		}
		done <- err
	}()
	select {
	case err := <-done:
		if err == nil || errors.Is(err, ErrLogFormat) || !strings.Contains(err.Error(), "in use") || !strings.Contains(err.Error(), filepath.Join(raftDir, walDir)) {
			t.Errorf("second open = %v, want an in-use error naming the log", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("a second open of a log held open blocked")
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	l3, err := openLogStore(raftDir, 0, true, nil)
	if err != nil {
		t.Fatalf("open after close: %v", err)
	}
	l3.Close()
}

// TestFollowerRestartKeepsItsLog: a follower of three stopped and started
// again reopens its own raft-wal log, entries intact (read offline in
// between), and catches up on what was written while it was down.
func TestFollowerRestartKeepsItsLog(t *testing.T) {
	nodes := startCluster(t, 3)
	ctx := context.Background()
	leader := leaderOf(t, nodes)
	var f *testNode
	for _, n := range nodes {
		if n != leader {
			f = n
			break
		}
	}
	for i := range 20 {
		if _, err := put(ctx, leader, fmt.Sprintf("before%02d", i), "1"); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, "the follower has the writes", func() error {
		_, err := f.st.Get("before19", time.Now(), false)
		return err
	})
	f.stop()
	raftDir := filepath.Join(f.dir, store.RaftDir)
	l, err := openLogStore(raftDir, 0, false, nil)
	if err != nil || l == nil {
		t.Fatalf("open the stopped follower's log: %v %v", l, err)
	}
	first, _ := l.FirstIndex()
	last, err := l.LastIndex()
	if err != nil || first != 1 || last < 21 {
		t.Errorf("the stopped follower's log holds %d..%d (%v), want 1.. at least 21", first, last, err)
	}
	var e raft.Log
	if err := l.GetLog(last, &e); err != nil || e.Index != last {
		t.Errorf("GetLog(%d) = %+v, %v", last, e, err)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	for i := range 20 {
		if _, err := put(ctx, leader, fmt.Sprintf("after%02d", i), "2"); err != nil {
			t.Fatal(err)
		}
	}
	back := startNode(t, f.id, f.dir, f.addr, false, []string{leader.addr})
	waitFor(t, "the restarted follower catches up", func() error {
		_, err := back.st.Get("after19", time.Now(), false)
		return err
	})
	if _, err := back.st.Get("before00", time.Now(), false); err != nil {
		t.Errorf("the restarted follower lost a write: %v", err)
	}
	if first, _ := back.logs.FirstIndex(); first != 1 {
		t.Errorf("the restarted follower's log starts at %d, want 1 (its own log, not a snapshot)", first)
	}
}

// TestStableWritesAfterClose: once closed, the stable store drops writes
// (a heartbeat in flight past Raft's Shutdown would make Raft panic on an
// error), while reads and log appends still fail.
func TestStableWritesAfterClose(t *testing.T) {
	l, err := openLogStore(filepath.Join(t.TempDir(), "raft"), 0, true, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := l.SetUint64([]byte("CurrentTerm"), 2); err != nil {
		t.Fatal(err)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if err := l.SetUint64([]byte("CurrentTerm"), 3); err != nil {
		t.Errorf("SetUint64 after Close: %v, want it dropped", err)
	}
	if err := l.Set([]byte("LastVoteCand"), []byte("n1")); err != nil {
		t.Errorf("Set after Close: %v, want it dropped", err)
	}
	if _, err := l.GetUint64([]byte("CurrentTerm")); err == nil {
		t.Error("GetUint64 after Close succeeded")
	}
	if err := l.StoreLog(&raft.Log{Index: 1, Term: 1}); err == nil {
		t.Error("StoreLog after Close succeeded")
	}
}

// TestTailTruncationSurvivesRestart: raft deletes a follower's conflicting
// tail (DeleteRange up to the last index) and appends the leader's
// entries; after a restart every entry still reads. raft-wal v0.4.0 sealed
// the truncated segment without an index block, and the restarted node
// panicked in raft.NewRaft ("sealed segment has no index block",
// hashicorp/raft-wal#31; seen in the Kubernetes suite's scale scenario).
func TestTailTruncationSurvivesRestart(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "raft")
	l, err := openLogStore(dir, 0, true, nil)
	if err != nil {
		t.Fatal(err)
	}
	store := func(from, to, term uint64) {
		for i := from; i <= to; i++ {
			if err := l.StoreLog(&raft.Log{Index: i, Term: term, Type: raft.LogCommand, Data: []byte{byte(i)}}); err != nil {
				t.Fatal(err)
			}
		}
	}
	store(1, 10, 1)
	if err := l.DeleteRange(8, 10); err != nil { // the conflicting suffix
		t.Fatal(err)
	}
	store(8, 12, 2)
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if l, err = openLogStore(dir, 0, false, nil); err != nil {
		t.Fatalf("reopen after a tail truncation: %v", err)
	}
	defer l.Close()
	for i := uint64(1); i <= 12; i++ {
		var e raft.Log
		if err := l.GetLog(i, &e); err != nil {
			t.Fatalf("entry %d after the restart: %v", i, err)
		}
		if want := uint64(1 + i/8); e.Term != want || e.Data[0] != byte(i) {
			t.Errorf("entry %d: term %d data %v, want term %d", i, e.Term, e.Data, want)
		}
	}
}
