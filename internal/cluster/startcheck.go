package cluster

import (
	"fmt"

	"github.com/hashicorp/raft"

	"kvstore.dev/kvstore/internal/store"
)

// checkStoreNotAhead refuses to run Raft over a store that has applied log
// entries this node's Raft state does not hold: a kv.db restored from a
// snapshot or copied from elsewhere into a member, or a single node's data
// started in cluster mode. The state machine skips every entry at or below
// its applied index, so such a node would skip the cluster's entries up to
// that index and serve data the cluster does not have, even on
// linearizable reads.
func checkStoreNotAhead(st *store.Store, dir string, logs raft.LogStore, snaps raft.SnapshotStore) error {
	last, err := logs.LastIndex()
	if err != nil {
		return fmt.Errorf("read raft log: %w", err)
	}
	metas, err := snaps.List()
	if err != nil {
		return fmt.Errorf("list raft snapshots: %w", err)
	}
	var snap uint64
	if len(metas) > 0 {
		snap = metas[0].Index // newest first
	}
	return storeAheadError(st.Path(), st.AppliedIndex(), dir, max(last, snap))
}

// storeAheadError is the decision of checkStoreNotAhead: nil when the store
// has applied at most raftLast, the last index of the Raft state in dir.
func storeAheadError(dbPath string, applied uint64, dir string, raftLast uint64) error {
	if applied <= raftLast {
		return nil
	}
	return fmt.Errorf("refusing to start: the store %s has applied log index %d, but this node's Raft state in %s ends at index %d, "+
		"so the store is not this node's state machine (restored from a snapshot, copied from another node, or a single node's data started in cluster mode) "+
		"and the node would skip the cluster's entries up to %d and serve data the cluster does not have; "+
		"to bring this member back, stop it, remove both %s and %s and start it again: it rejoins and receives the cluster's state; "+
		"to use this data, run it as a single node (without cluster mode), or seed a new cluster with it: take a snapshot and kvstore restore --node-id it into an empty data dir",
		dbPath, applied, dir, raftLast, applied, dbPath, dir)
}
