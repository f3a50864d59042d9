package store

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	bolt "go.etcd.io/bbolt"
)

// Snapshot is a point-in-time copy of the store being written out: what a
// replication layer streams to a follower. It holds a bbolt read
// transaction, so writes go on while it is written; Close releases it. Not
// safe for concurrent use.
type Snapshot struct {
	tx      *bolt.Tx
	applied uint64
}

// OpenSnapshot flushes the buffered state and opens a read transaction on
// the result: the snapshot holds every entry applied so far (its
// AppliedIndex). Entries applied later are not in it. The caller must
// Close it.
func (s *Store) OpenSnapshot() (*Snapshot, error) {
	if err := s.Flush(); err != nil {
		return nil, fmt.Errorf("snapshot: %w", err)
	}
	tx, err := s.db.Begin(false)
	if err != nil {
		return nil, fmt.Errorf("snapshot: begin: %w", err)
	}
	return &Snapshot{tx: tx, applied: u64(tx.Bucket(bucketMeta).Get(metaAppliedIndex))}, nil
}

// AppliedIndex is the index of the last entry the snapshot holds.
func (sn *Snapshot) AppliedIndex() uint64 { return sn.applied }

// WriteTo writes the database file as of the snapshot to w.
func (sn *Snapshot) WriteTo(w io.Writer) (int64, error) { return sn.tx.WriteTo(w) }

// Close releases the snapshot's read transaction.
func (sn *Snapshot) Close() error { return sn.tx.Rollback() }

// ReplaceFrom replaces the store's whole state with the database read from
// r (a Snapshot written by another store): it is written to a temporary
// file beside the database, fsynced and verified, then renamed over the
// database file, which is reopened. Buffered, unflushed changes are
// discarded (the replication log that holds them will be replayed after the
// snapshot's applied index). Watchers are ended with ErrCompacted: the
// history they followed no longer leads to the new state. Applies and
// flushes wait while it runs. On error the store keeps its old state.
func (s *Store) ReplaceFrom(r io.Reader) (Status, error) {
	s.applyMu.Lock()
	defer s.applyMu.Unlock()
	s.flushMu.Lock()
	defer s.flushMu.Unlock()

	path := s.db.Path()
	tmp, err := os.CreateTemp(filepath.Dir(path), ".snapshot-*.db")
	if err != nil {
		return Status{}, fmt.Errorf("replace: %w", classify(err))
	}
	defer os.Remove(tmp.Name())
	if _, err := io.Copy(tmp, r); err != nil {
		tmp.Close()
		return Status{}, fmt.Errorf("replace: receive snapshot: %w", classify(err))
	}
	if err := errors.Join(tmp.Sync(), tmp.Close()); err != nil {
		return Status{}, fmt.Errorf("replace: %w", classify(err))
	}
	st, err := Verify(tmp.Name())
	if err != nil {
		return Status{}, fmt.Errorf("replace: %w", err)
	}

	s.memMu.Lock()
	defer s.memMu.Unlock()
	if err := s.db.Close(); err != nil {
		return Status{}, fmt.Errorf("replace: close database: %w", err)
	}
	renameErr := os.Rename(tmp.Name(), path)
	if renameErr == nil {
		renameErr = syncDir(filepath.Dir(path))
	}
	// Reopen whatever is in place now: the new file, or the old one if the
	// rename failed.
	db, err := bolt.Open(path, 0o600, boltOptions(s.opts))
	if err != nil {
		return Status{}, errors.Join(renameErr, fmt.Errorf("replace: reopen %s: %w", path, err))
	}
	s.db = db
	if renameErr != nil {
		return Status{}, fmt.Errorf("replace: %w", renameErr)
	}
	s.active, s.flushing = newMemtable(), nil
	s.cur = counters{rev: st.Revision, applied: st.AppliedIndex, keys: st.Keys}
	s.durable.Store(st.AppliedIndex)
	s.hub.reset(st.Revision)
	return st, nil
}
