package single

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"kvstore.dev/kvstore/internal/store"
	"kvstore.dev/kvstore/internal/wal"
)

var t0 = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

func put(key, value string) store.Command {
	return store.Command{Op: store.OpPut, Key: key, Value: []byte(value), ContentType: "text/plain", Now: t0.UnixNano()}
}

// mustOpenStore opens a store on a fresh file in t.TempDir and closes it at
// cleanup.
func mustOpenStore(t *testing.T) *store.Store {
	t.Helper()
	return mustOpenAt(t, filepath.Join(t.TempDir(), store.DBFile))
}

func mustOpenAt(t *testing.T, path string) *store.Store {
	t.Helper()
	s, err := store.Open(path, store.Options{})
	if err != nil {
		t.Fatalf("Open(%s): %v", path, err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func propose(t *testing.T, p store.Proposer, c store.Command) store.Result {
	t.Helper()
	res, err := p.Propose(context.Background(), c)
	if err != nil {
		t.Fatalf("Propose(%s %q): %v", c.Op, c.Key, err)
	}
	return res[0]
}

// mustCommitter starts a committer (with w, which may be nil) closed at
// cleanup, before the store.
func mustCommitter(t *testing.T, s *store.Store, w *wal.Log, opts Options) *Committer {
	t.Helper()
	c, err := New(s, w, opts)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// mustOpenWAL opens the WAL in data directory dir, closed at cleanup.
func mustOpenWAL(t *testing.T, dir string) *wal.Log {
	t.Helper()
	w, err := wal.Open(filepath.Join(dir, store.WALDir))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { w.Close() })
	return w
}

// crashCopy copies data directory dir, while its server runs, to a new
// one: the files as a killed process would leave them.
func crashCopy(t *testing.T, dir string) string {
	t.Helper()
	dst := t.TempDir()
	if err := os.CopyFS(dst, os.DirFS(dir)); err != nil {
		t.Fatal(err)
	}
	return dst
}
