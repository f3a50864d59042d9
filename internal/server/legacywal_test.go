package server

import (
	"encoding/binary"
	"errors"
	"hash/crc32"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"kvstore.dev/kvstore/internal/cluster"
	"kvstore.dev/kvstore/internal/config"
	"kvstore.dev/kvstore/internal/store"
	"kvstore.dev/kvstore/internal/testlog"
)

const adminToken = "admin-token-0123456789"

// withAdmin gives the server a known admin token and dataDir.
func withAdmin(dataDir string) func(*config.Config) {
	return func(c *config.Config) {
		c.DataDir = dataDir
		c.Auth.Tokens = []config.Token{{Name: "a", Token: adminToken, Role: "admin"}}
	}
}

func do(t *testing.T, method, url, body string) (int, string) {
	t.Helper()
	return request(t, method, url, adminToken, body)
}

// wantKeys checks what GET answers for each key ("" means 404).
func wantKeys(t *testing.T, r *running, want map[string]string) {
	t.Helper()
	for key, value := range want {
		code, body := do(t, "GET", "http://"+r.api+"/api/v1/kv/"+key, "")
		if (value == "" && code != 404) || (value != "" && (code != 200 || body != value)) {
			t.Errorf("GET %s = %d %q, want %q", key, code, body, value)
		}
	}
}

func put(key, value string, index uint64) store.Entry {
	return store.Entry{Index: index, Command: store.Command{Op: store.OpPut, Key: key, Value: []byte(value), ContentType: "text/plain", Now: time.Now().UnixNano()}}
}

// writeLegacyWAL writes entries as the former single-node WAL did: one
// segment of [length u32][crc32c u32][index u64][command], then torn
// bytes (an append a crash cut short).
func writeLegacyWAL(t *testing.T, dataDir string, entries []store.Entry) {
	t.Helper()
	tbl := crc32.MakeTable(crc32.Castagnoli)
	var b []byte
	for _, e := range entries {
		payload, err := e.Command.MarshalBinary()
		if err != nil {
			t.Fatal(err)
		}
		var hdr [16]byte
		binary.BigEndian.PutUint32(hdr[0:], uint32(len(payload)))
		binary.BigEndian.PutUint64(hdr[8:], e.Index)
		binary.BigEndian.PutUint32(hdr[4:], crc32.Update(crc32.Checksum(hdr[8:], tbl), tbl, payload))
		b = append(append(b, hdr[:]...), payload...)
	}
	b = append(b, 0, 0, 0, 9, 1, 2) // torn
	dir := filepath.Join(dataDir, store.WALDir)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "00000000000000000001.wal"), b, 0o600); err != nil {
		t.Fatal(err)
	}
}

// TestReplaysLegacyWAL: a data dir of the former single-node write path
// (wal/ beside kv.db, no raft/) loses none of the WAL's unflushed tail: it
// is replayed once, the WAL set aside, and the node goes on as a
// one-server cluster from there, across restarts.
func TestReplaysLegacyWAL(t *testing.T) {
	dir := t.TempDir()
	entries := []store.Entry{put("a", "1", 1), put("b", "2", 2), put("c", "3", 3), put("d", "4", 4), put("e", "5", 5),
		{Index: 6, Command: store.Command{Op: store.OpDelete, Key: "a", Now: time.Now().UnixNano()}}}
	st, err := store.Open(filepath.Join(dir, store.DBFile), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.Apply(entries[:3]); err != nil { // flushed; the rest only in the WAL
		t.Fatal(err)
	}
	st.Close()
	writeLegacyWAL(t, dir, entries)

	r := start(t, withAdmin(dir))
	wantKeys(t, r, map[string]string{"a": "", "b": "2", "c": "3", "d": "4", "e": "5"})
	if code, body := do(t, "PUT", "http://"+r.api+"/api/v1/kv/f", "6"); code != 201 {
		t.Fatalf("PUT after the replay: %d %s", code, body)
	}
	r.stop(t)
	if _, err := os.Stat(filepath.Join(dir, store.WALDir)); !os.IsNotExist(err) {
		t.Errorf("wal/ still there after the replay: %v", err)
	}
	if aside, _ := filepath.Glob(filepath.Join(dir, "wal.replayed-*")); len(aside) != 1 {
		t.Errorf("set aside: %v, want one wal.replayed-*", aside)
	}
	r = start(t, withAdmin(dir))
	wantKeys(t, r, map[string]string{"a": "", "b": "2", "d": "4", "e": "5", "f": "6"})
}

// TestRefusesLegacyWALBesideRaft: both layouts in one data dir is refused
// with a message naming the WAL.
func TestRefusesLegacyWALBesideRaft(t *testing.T) {
	dir := t.TempDir()
	writeLegacyWAL(t, dir, []store.Entry{put("a", "1", 1)})
	if err := os.MkdirAll(filepath.Join(dir, store.RaftDir), 0o700); err != nil {
		t.Fatal(err)
	}
	cfg := config.Default()
	cfg.Listen, cfg.DebugListen, cfg.DataDir = "127.0.0.1:0", "", dir
	err := Run(t.Context(), cfg, NewLogger(cfg.Log, &testlog.Buffer{}), nil)
	if err == nil || !strings.Contains(err.Error(), filepath.Join(dir, store.WALDir)) || !strings.Contains(err.Error(), "refusing to start") {
		t.Errorf("Run = %v, want a refusal naming %s", err, filepath.Join(dir, store.WALDir))
	}
}

// TestRefusesRaftBoltDBLog: a data dir whose Raft log is an older
// kvstore's raft-boltdb raft.db (this version keeps raft-wal's) is refused
// with cluster.ErrLogFormat and a message naming the file and what to do;
// kvstore restore refuses it too, and the file is left as it was.
func TestRefusesRaftBoltDBLog(t *testing.T) {
	dir := t.TempDir()
	old := filepath.Join(dir, store.RaftDir, "raft.db")
	if err := os.MkdirAll(filepath.Dir(old), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(old, []byte("a raft-boltdb file"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := config.Default()
	cfg.Listen, cfg.DebugListen, cfg.DataDir = "127.0.0.1:0", "", dir
	err := Run(t.Context(), cfg, NewLogger(cfg.Log, &testlog.Buffer{}), nil)
	if !errors.Is(err, cluster.ErrLogFormat) {
		t.Fatalf("Run = %v, want cluster.ErrLogFormat", err)
	}
	for _, want := range []string{"refusing to start", old, "raft-boltdb", "kvstore restore"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("Run = %q\ndoes not say %q", err, want)
		}
	}
	snap := filepath.Join(t.TempDir(), "snap.db")
	s, err := store.Open(snap, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	if _, err := Restore(snap, dir, true); !errors.Is(err, cluster.ErrLogFormat) || !strings.Contains(err.Error(), old) {
		t.Errorf("Restore = %v, want cluster.ErrLogFormat naming %s", err, old)
	}
	if b, err := os.ReadFile(old); err != nil || string(b) != "a raft-boltdb file" {
		t.Errorf("%s changed: %q %v", old, b, err)
	}
}
