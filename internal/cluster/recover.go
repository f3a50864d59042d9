package cluster

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"

	"kvstore.dev/kvstore/internal/store"
)

// ErrNoRaftState means a data directory given to Recover holds no Raft
// state to recover from.
var ErrNoRaftState = errors.New("no raft state")

// RecoverResult is what Recover did.
type RecoverResult struct {
	NodeID, Address string
	// Previous is the configuration found before the recovery.
	Previous []raft.Server
	// LastLogTerm and LastLogIndex are those of the last entry kept: the
	// newest of the log's last entry and the latest snapshot.
	LastLogTerm, LastLogIndex uint64
	// AppliedIndex is the store's applied index after the recovery.
	AppliedIndex uint64
}

// Recover makes the stopped cluster member whose data directory is dataDir
// the only server of a new one-server cluster, keeping its log: etcd's
// --force-new-cluster for a cluster that lost its quorum for good (issue
// 14). It opens the node's Raft log, stable and snapshot stores
// (dataDir/raft, as Start does) and its store (dataDir/kv.db), and calls
// hashicorp/raft's RecoverCluster with a configuration holding only nodeID
// as a voter at address (default: the address nodeID has in the current
// configuration). RecoverCluster applies to the store every entry of the
// log the store does not hold yet, committed or not, writes a snapshot
// holding the new configuration and empties the log. Started again with
// its usual flags, the node elects itself leader; new members then join it
// through the ordinary join path.
//
// Entries the lost servers had committed and this node had not received
// are lost; entries this node holds but that were never committed are
// kept. Pick the survivor with the highest (last log term, last log index)
// (NodeStatus.LastLogTerm, LastLogIndex).
//
// Recover refuses, changing nothing, a data directory without Raft state
// (ErrNoRaftState), a log in a format this version does not read
// (ErrLogFormat), a single node's state (no cluster to recover), a nodeID
// that is not a member of the configuration found, a store that is ahead
// of the log, and a data directory a running server holds (the log's flock
// or the store's bbolt lock).
func Recover(dataDir, nodeID, address string) (RecoverResult, error) {
	res := RecoverResult{NodeID: nodeID, Address: address}
	if nodeID == "" {
		return res, errors.New("recover: the node id must not be empty")
	}
	raftDir := filepath.Join(dataDir, store.RaftDir)
	if _, err := os.Stat(raftDir); err != nil {
		return res, fmt.Errorf("refusing to recover: %s: %w (%v): it is not a cluster member's data directory", raftDir, ErrNoRaftState, err)
	}
	hlog := hclog.New(&hclog.LoggerOptions{Name: "raft", Level: hclog.Warn, Output: io.Discard})
	logs, err := openLogStore(raftDir, 0, false, hlog.Named("wal"))
	if errors.Is(err, ErrLogFormat) {
		return res, fmt.Errorf("refusing to recover: %w", err)
	} else if err != nil {
		return res, fmt.Errorf("refusing to recover: %w", err)
	}
	if logs == nil {
		return res, fmt.Errorf("refusing to recover: %s holds no raft log (%s): %w", raftDir, walDir, ErrNoRaftState)
	}
	defer logs.Close()
	snaps, err := raft.NewFileSnapshotStoreWithLogger(filepath.Join(raftDir, "snapshots"), 2, hlog)
	if err != nil {
		return res, fmt.Errorf("snapshot store: %w", err)
	}
	if ok, err := raft.HasExistingState(logs, logs, snaps); err != nil {
		return res, fmt.Errorf("read raft state: %w", err)
	} else if !ok {
		return res, fmt.Errorf("refusing to recover: the raft log in %s is empty: %w", raftDir, ErrNoRaftState)
	}
	servers, err := readServers(logs, snaps)
	if err != nil {
		return res, err
	}
	res.Previous = servers
	if len(servers) == 1 && servers[0].Address == singleAddr {
		return res, fmt.Errorf("refusing to recover: the raft state in %s is a single node's (%q), a one-server cluster already; there is no quorum to recover", raftDir, servers[0].ID)
	}
	var found bool
	for _, s := range servers {
		if string(s.ID) == nodeID {
			found = true
			if res.Address == "" {
				res.Address = string(s.Address)
			}
		}
	}
	if !found {
		return res, fmt.Errorf("refusing to recover: node %q is not a member of the raft configuration in %s (%s); give the id this node runs with (cluster.node_id)", nodeID, raftDir, serverList(servers))
	}
	if res.Address == "" {
		return res, errors.New("recover: no address for the node: give --address")
	}
	res.LastLogTerm, res.LastLogIndex, err = lastEntry(logs, snaps)
	if err != nil {
		return res, err
	}

	dbPath := filepath.Join(dataDir, store.DBFile)
	if _, err := os.Stat(dbPath); err != nil {
		return res, fmt.Errorf("refusing to recover: the store %s: %w", dbPath, err)
	}
	st, err := store.Open(dbPath, store.Options{})
	if err != nil {
		return res, fmt.Errorf("refusing to recover (stop the server first): %w", err)
	}
	defer st.Close()
	if err := checkStoreNotAhead(st, raftDir, logs, snaps); err != nil {
		return res, err
	}
	metas, err := snaps.List()
	if err != nil {
		return res, fmt.Errorf("list raft snapshots: %w", err)
	}
	f := &recoverFSM{fsm: newFSM(st, store.NewStamper(nil))}
	if len(metas) > 0 && st.AppliedIndex() >= metas[0].Index {
		f.skipRestore = true // the store holds the snapshot already (Start's NoSnapshotRestoreOnStart)
	}
	rc := raft.DefaultConfig()
	rc.LocalID = raft.ServerID(nodeID)
	rc.Logger = hlog
	_, trans := raft.NewInmemTransport(raft.ServerAddress(res.Address))
	conf := raft.Configuration{Servers: []raft.Server{{ID: raft.ServerID(nodeID), Address: raft.ServerAddress(res.Address), Suffrage: raft.Voter}}}
	err = raft.RecoverCluster(rc, f, logs, logs, snaps, trans, conf)
	if f.snap != nil {
		f.snap.Release() // RecoverCluster does not; its read transaction would block the store's Close
	}
	if err != nil {
		return res, fmt.Errorf("recover cluster: %w", err)
	}
	res.AppliedIndex = st.AppliedIndex()
	if err := st.Close(); err != nil {
		return res, fmt.Errorf("close the store: %w", err)
	}
	return res, nil
}

// recoverFSM is the store's fsm for RecoverCluster, which restores the
// newest snapshot first: that is skipped when the store holds it already.
type recoverFSM struct {
	*fsm
	skipRestore bool
	snap        raft.FSMSnapshot // the one RecoverCluster took, released by Recover
}

func (f *recoverFSM) Snapshot() (raft.FSMSnapshot, error) {
	sn, err := f.fsm.Snapshot()
	f.snap = sn
	return sn, err
}

func (f *recoverFSM) Restore(rc io.ReadCloser) error {
	if f.skipRestore {
		return rc.Close()
	}
	return f.fsm.Restore(rc)
}

// lastEntry returns the term and index of the last log entry, or of the
// latest snapshot when it is later.
func lastEntry(logs raft.LogStore, snaps raft.SnapshotStore) (term, index uint64, err error) {
	last, err := logs.LastIndex()
	if err != nil {
		return 0, 0, fmt.Errorf("read raft log: %w", err)
	}
	if last > 0 {
		var l raft.Log
		if err := logs.GetLog(last, &l); err != nil {
			return 0, 0, fmt.Errorf("read raft log entry %d: %w", last, err)
		}
		term, index = l.Term, l.Index
	}
	metas, err := snaps.List()
	if err != nil {
		return 0, 0, fmt.Errorf("list raft snapshots: %w", err)
	}
	if len(metas) > 0 && metas[0].Index > index {
		term, index = metas[0].Term, metas[0].Index
	}
	return term, index, nil
}

func serverList(servers []raft.Server) string {
	if len(servers) == 0 {
		return "no configuration"
	}
	s := ""
	for i, sv := range servers {
		if i > 0 {
			s += ", "
		}
		s += fmt.Sprintf("%s at %s (%s)", sv.ID, sv.Address, sv.Suffrage)
	}
	return s
}
