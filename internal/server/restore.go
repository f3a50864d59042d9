package server

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"kvstore.dev/kvstore/internal/backup"
	"kvstore.dev/kvstore/internal/cluster"
	"kvstore.dev/kvstore/internal/store"
)

// Restore installs the snapshot file from as the database of the stopped
// server whose data directory is dataDir (kvstore restore; store.Restore
// says how, and what force does). A single node's Raft state (a one-server
// cluster of its own) is set aside first, as raft.pre-restore-<unix time>,
// so that the node comes up as a one-server cluster holding the snapshot
// at its applied index (cluster.Config.Single adopts such a store); if
// the restore then fails, it is put back. A multi-server cluster member's
// data directory is refused (store.ErrClusterMember): its log would skip
// the cluster's entries up to the snapshot's index.
func Restore(from, dataDir string, force bool) (store.Status, error) {
	raftDir := filepath.Join(dataDir, store.RaftDir)
	if _, err := os.Stat(raftDir); err != nil {
		return store.Restore(from, dataDir, force)
	}
	if single, err := cluster.IsSingle(raftDir); err != nil || !single {
		if err != nil {
			return store.Status{}, fmt.Errorf("read the raft state in %s: %w", raftDir, err)
		}
		return store.Restore(from, dataDir, force) // refused, with what to do instead
	}
	aside := fmt.Sprintf("%s.pre-restore-%d", raftDir, time.Now().Unix())
	if err := os.Rename(raftDir, aside); err != nil {
		return store.Status{}, fmt.Errorf("set aside the single node's raft state: %w", err)
	}
	st, err := store.Restore(from, dataDir, force)
	if err != nil {
		if rerr := os.Rename(aside, raftDir); rerr != nil {
			err = errors.Join(err, fmt.Errorf("put back %s as %s: %w", aside, raftDir, rerr))
		}
	}
	return st, err
}

// RestoreBackup restores the backup name of dest (its newest when name is
// "") into the stopped server's dataDir, as Restore does, after checking
// that Restore would accept dataDir (no cluster member's; an existing
// database only with force) and after fetching the backup into a
// temporary file in dataDir, verified against its manifest's SHA-256 and
// size and, when wantSHA256 is set, against that checksum. Until both
// checks pass nothing in dataDir is touched (it is created if missing;
// the temporary file is removed whatever happens). Restore then verifies
// the snapshot's pages and records before it replaces anything.
func RestoreBackup(ctx context.Context, dest backup.Destination, name, wantSHA256, dataDir string, force bool) (backup.Manifest, store.Status, error) {
	if err := checkRestoreTarget(dataDir, force); err != nil {
		return backup.Manifest{}, store.Status{}, err
	}
	if name == "" {
		m, err := backup.Latest(ctx, dest)
		if err != nil {
			return backup.Manifest{}, store.Status{}, err
		}
		name = m.Name
	}
	if err := os.MkdirAll(dataDir, 0o700); err != nil {
		return backup.Manifest{}, store.Status{}, fmt.Errorf("data dir: %w", err)
	}
	tmp := filepath.Join(dataDir, fmt.Sprintf(".%s.fetch-%d", store.DBFile, time.Now().UnixNano()))
	defer os.Remove(tmp)
	m, err := backup.Fetch(ctx, dest, name, tmp, wantSHA256)
	if err != nil {
		return backup.Manifest{}, store.Status{}, err
	}
	st, err := Restore(tmp, dataDir, force)
	if err != nil {
		return m, st, fmt.Errorf("backup %s (checksum verified): %w", m.Name, err)
	}
	return m, st, nil
}

// checkRestoreTarget refuses early what Restore would refuse after the
// download: a cluster member's data directory, and an existing database
// without force.
func checkRestoreTarget(dataDir string, force bool) error {
	raftDir := filepath.Join(dataDir, store.RaftDir)
	if _, err := os.Stat(raftDir); err == nil {
		single, err := cluster.IsSingle(raftDir)
		if err != nil {
			return fmt.Errorf("read the raft state in %s: %w", raftDir, err)
		}
		if !single {
			return fmt.Errorf("%w: %s holds the Raft state of a multi-server cluster member; "+
				"restore into a fresh data dir and run that as a single node", store.ErrClusterMember, dataDir)
		}
	}
	db := filepath.Join(dataDir, store.DBFile)
	if _, err := os.Stat(db); err == nil && !force {
		return fmt.Errorf("%s already exists; pass --force to replace it (the old file is kept)", db)
	} else if err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	return nil
}
