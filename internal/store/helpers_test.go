package store

import (
	"context"
	"path/filepath"
	"testing"
	"time"
)

// mustOpenStore opens a store on a fresh file in t.TempDir and closes it at
// cleanup.
func mustOpenStore(t *testing.T) *Store {
	t.Helper()
	return mustOpenAt(t, filepath.Join(t.TempDir(), DBFile))
}

func mustOpenAt(t *testing.T, path string) *Store {
	t.Helper()
	s, err := Open(path, Options{})
	if err != nil {
		t.Fatalf("Open(%s): %v", path, err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// reopen closes s and opens its file again.
func reopen(t *testing.T, s *Store) *Store {
	t.Helper()
	path := s.Path()
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	return mustOpenAt(t, path)
}

// applyOne applies a single command as the next log entry.
func applyOne(t *testing.T, s *Store, c Command) Result {
	t.Helper()
	res, err := s.Apply([]Entry{{Index: s.AppliedIndex() + 1, Command: c}})
	if err != nil {
		t.Fatalf("Apply(%s %q): %v", c.Op, c.Key, err)
	}
	return res[0]
}

var t0 = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

func put(key, value string) Command {
	return Command{Op: OpPut, Key: key, Value: []byte(value), ContentType: "text/plain", Now: t0.UnixNano()}
}

func propose(t *testing.T, p Proposer, c Command) Result {
	t.Helper()
	res, err := p.Propose(context.Background(), c)
	if err != nil {
		t.Fatalf("Propose(%s %q): %v", c.Op, c.Key, err)
	}
	return res[0]
}
