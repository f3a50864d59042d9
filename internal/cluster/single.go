package cluster

import (
	"fmt"
	"io"
	"path/filepath"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"

	"kvstore.dev/kvstore/internal/errcode"
	"kvstore.dev/kvstore/internal/store"
	"kvstore.dev/kvstore/wire"
)

// A single node (Config.Single) is a one-server cluster over an in-memory
// transport: singleAddr is its Raft address, SingleNodeID its default id.
const (
	SingleNodeID  = "node-1"
	singleAddr    = "local"
	singleTimeout = 50 * time.Millisecond
)

var errNotClustered = fmt.Errorf("this server runs without cluster mode: %w", errcode.ErrNotClustered)

func singleConfiguration(id string) raft.Configuration {
	return raft.Configuration{Servers: []raft.Server{{ID: raft.ServerID(id), Address: singleAddr, Suffrage: raft.Voter}}}
}

// seedSnapshot makes st, a store with data but no Raft state yet, the
// initial state of a cluster of conf (one server: a single node's, or the
// first member of a cluster restored from a backup, Seed): a Raft snapshot
// at the store's applied index holding the store's file, so that the log
// goes on after that index (the state machine skips every entry at or
// below it). Raft reads only the snapshot's index and configuration at
// start (NoSnapshotRestoreOnStart); its data is what a new member
// receives. A store that never applied an entry is seeded at index 1.
func seedSnapshot(st *store.Store, conf raft.Configuration, snaps raft.SnapshotStore) error {
	sn, err := st.OpenSnapshot()
	if err != nil {
		return err
	}
	defer sn.Close()
	_, trans := raft.NewInmemTransport(singleAddr)
	idx := max(sn.AppliedIndex(), 1)
	sink, err := snaps.Create(raft.SnapshotVersionMax, idx, 1, conf, idx, trans)
	if err != nil {
		return fmt.Errorf("seed raft snapshot: %w", err)
	}
	if _, err := sn.WriteTo(sink); err != nil {
		_ = sink.Cancel()
		return fmt.Errorf("seed raft snapshot: %w", err)
	}
	if err := sink.Close(); err != nil {
		return fmt.Errorf("seed raft snapshot: %w", err)
	}
	return nil
}

// checkSingle refuses to run a single node on Raft state whose
// configuration is not this node alone: a multi-server cluster member's
// data dir, or a single node's started under another id.
func checkSingle(cf raft.ConfigurationFuture, cfg Config) error {
	if err := cf.Error(); err != nil {
		return fmt.Errorf("read raft configuration: %w", err)
	}
	servers := cf.Configuration().Servers
	if len(servers) == 1 && string(servers[0].ID) == cfg.NodeID && servers[0].Suffrage == raft.Voter {
		return nil
	}
	ids := make([]string, len(servers))
	for i, s := range servers {
		ids[i] = string(s.ID)
	}
	return fmt.Errorf("refusing to start as a single node: the Raft state in %s is that of a cluster of %v, not of this node %q alone; "+
		"start it with its cluster configuration (cluster.enabled), or set cluster.node_id to the id it was started with",
		cfg.Dir, ids, cfg.NodeID)
}

// checkNotSingle refuses to run a cluster member on a single node's Raft
// state (one server at the in-memory address): no peer could reach that
// server, and this node, not in its configuration, would never lead.
func checkNotSingle(cf raft.ConfigurationFuture, cfg Config) error {
	if cf.Error() != nil {
		return nil // Raft reports it
	}
	if s := cf.Configuration().Servers; len(s) == 1 && s[0].Address == singleAddr {
		return fmt.Errorf("refusing to start in cluster mode: the Raft state in %s is a single node's (%q); run it without cluster mode, "+
			"or start the member on a fresh data dir; to seed a cluster with a single node's data, take a snapshot (or a backup) and kvstore restore --node-id it into an empty data dir", cfg.Dir, s[0].ID)
	}
	return nil
}

// singleStatus is a single node's GET /api/v1/cluster: not enabled, one
// member, itself the leader.
func (n *Node) singleStatus() wire.ClusterStatus {
	self := n.selfStatus()
	// What the state machine has applied: Raft's own AppliedIndex may lag
	// an entry already applied and answered.
	self.Address, self.AppliedIndex = "", max(self.AppliedIndex, n.fsm.last.Load())
	st := wire.ClusterStatus{Self: self, Members: []wire.Member{{ID: self.ID, Suffrage: wire.SuffrageVoter, Status: &self}}}
	if n.IsLeader() {
		st.LeaderID, st.Members[0].Leader = self.ID, true
	}
	return st
}

// IsSingle reports whether the Raft state in dir (a Config's Dir) of a
// stopped node is a single node's (Config.Single): one server, at the
// in-memory address. State without a configuration (a member that never
// joined) is not. It fails if a running node holds the log open.
func IsSingle(dir string) (bool, error) {
	servers, err := ReadServers(dir)
	if err != nil {
		return false, err
	}
	return len(servers) == 1 && servers[0].Address == singleAddr, nil
}

// ReadServers returns the latest Raft configuration held in dir (a Config's
// Dir) of a stopped node: the newest snapshot's, or a later one from the
// log; none when dir holds no log. It fails if a running node holds the
// log open, and with ErrLogFormat on a log this version does not read.
func ReadServers(dir string) ([]raft.Server, error) {
	logs, err := openLogStore(dir, 0, false, nil)
	if err != nil {
		return nil, err
	}
	if logs == nil {
		return nil, nil // no log: no configuration (and none created here)
	}
	defer logs.Close()
	snaps, err := raft.NewFileSnapshotStoreWithLogger(filepath.Join(dir, "snapshots"), 2, hclog.New(&hclog.LoggerOptions{Output: io.Discard}))
	if err != nil {
		return nil, fmt.Errorf("snapshot store: %w", err)
	}
	return readServers(logs, snaps)
}

// readServers is ReadServers on open stores.
func readServers(logs raft.LogStore, snaps raft.SnapshotStore) ([]raft.Server, error) {
	metas, err := snaps.List()
	if err != nil {
		return nil, fmt.Errorf("list raft snapshots: %w", err)
	}
	var servers []raft.Server
	from, err := logs.FirstIndex()
	if err != nil {
		return nil, fmt.Errorf("read raft log: %w", err)
	}
	if len(metas) > 0 {
		servers, from = metas[0].Configuration.Servers, max(from, metas[0].Index+1)
	}
	last, err := logs.LastIndex()
	if err != nil {
		return nil, fmt.Errorf("read raft log: %w", err)
	}
	for i := max(from, 1); i <= last; i++ {
		var l raft.Log
		if err := logs.GetLog(i, &l); err != nil {
			return nil, fmt.Errorf("read raft log entry %d: %w", i, err)
		}
		if l.Type == raft.LogConfiguration {
			servers = raft.DecodeConfiguration(l.Data).Servers
		}
	}
	return servers, nil
}
