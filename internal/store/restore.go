package store

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	bolt "go.etcd.io/bbolt"
)

// DBFile is the database file's name inside a data directory.
const DBFile = "kv.db"

// WALDir is the directory inside a data directory where a single node
// kept its write-ahead log before it ran as a one-server Raft cluster
// (issue 16; internal/server replays it once).
const WALDir = "wal"

// RaftDir is the directory inside a data directory where a cluster member
// keeps its Raft log and snapshots (internal/cluster); its presence marks
// the data directory as a cluster member's.
const RaftDir = "raft"

// Restore installs the snapshot file from as the database of dataDir. The
// snapshot is copied to a temporary file beside the database, fsynced and
// verified (Verify), and only then are the old files set aside and the copy
// renamed into place, so a damaged snapshot changes nothing and a crash
// leaves either the old or the new database. An existing database is
// refused unless force is set, in which case it is kept beside the new one
// as kv.db.pre-restore-<unix time>. Restore fails if a server holds the
// database open.
//
// A data directory holding RaftDir is refused, force or not: its Raft log
// would skip every entry up to the snapshot's index and the node would
// serve data the cluster does not have (ErrClusterMember). A single node's
// Raft state is set aside by its caller first (internal/server.Restore).
func Restore(from, dataDir string, force bool) (Status, error) {
	if raft := filepath.Join(dataDir, RaftDir); fileExists(raft) {
		return Status{}, fmt.Errorf("%w: %s holds %s; restoring kv.db under it would make the node skip the cluster's log up to the snapshot "+
			"and serve data the cluster does not have (--force does not change this). "+
			"To bring a member back, stop it, remove %s and %s and start it again: it rejoins and receives the cluster's state. "+
			"To use the snapshot, restore it into a fresh data dir and run that as a single node",
			ErrClusterMember, dataDir, raft, filepath.Join(dataDir, DBFile), raft)
	}
	if err := os.MkdirAll(dataDir, 0o700); err != nil {
		return Status{}, fmt.Errorf("data dir: %w", err)
	}
	dst := filepath.Join(dataDir, DBFile)
	_, statErr := os.Stat(dst)
	switch {
	case statErr == nil && !force:
		return Status{}, fmt.Errorf("%s already exists; pass --force to replace it (the old file is kept)", dst)
	case statErr != nil && !errors.Is(statErr, os.ErrNotExist):
		return Status{}, statErr
	}
	// The copy that is installed is the one verified; until it passes,
	// nothing in dataDir is touched.
	tmp := dst + ".restore-tmp"
	defer os.Remove(tmp)
	if err := copyFileSync(from, tmp); err != nil {
		return Status{}, err
	}
	st, err := Verify(tmp)
	if err != nil {
		return Status{}, fmt.Errorf("snapshot %s: %w", from, err)
	}
	if statErr == nil {
		// Holding the lock proves no server has the database open.
		db, err := bolt.Open(dst, 0o600, &bolt.Options{Timeout: time.Second})
		if err != nil {
			return st, fmt.Errorf("%s is in use (stop the server first): %w", dst, err)
		}
		db.Close()
		if err := os.Rename(dst, fmt.Sprintf("%s.pre-restore-%d", dst, time.Now().Unix())); err != nil {
			return st, fmt.Errorf("keep old database: %w", err)
		}
	}
	// A WAL belongs to the database it was written for: replayed over the
	// snapshot it would apply the old database's entries. Keep it aside.
	if wal := filepath.Join(dataDir, WALDir); fileExists(wal) {
		if err := os.Rename(wal, fmt.Sprintf("%s.pre-restore-%d", wal, time.Now().Unix())); err != nil {
			return st, fmt.Errorf("set aside the old wal: %w", err)
		}
	}
	if err := os.Rename(tmp, dst); err != nil {
		return st, fmt.Errorf("install snapshot: %w", err)
	}
	return st, syncDir(dataDir)
}

func fileExists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}

func copyFileSync(from, to string) error {
	in, err := os.Open(from)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(to, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o600)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return fmt.Errorf("copy snapshot: %w", classify(err))
	}
	if err := out.Sync(); err != nil {
		out.Close()
		return fmt.Errorf("sync snapshot: %w", classify(err))
	}
	return out.Close()
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}
