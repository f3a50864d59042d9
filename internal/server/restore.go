package server

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

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
