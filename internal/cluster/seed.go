package cluster

import (
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"

	"kvstore.dev/kvstore/internal/store"
)

// Seed makes the stopped server's data directory dataDir, which holds a
// database (a restored backup, dataDir/kv.db) and no Raft state, the
// first member of a new cluster: a Raft snapshot at the store's applied
// index whose configuration is nodeID alone, a voter at address (its
// cluster.peer_advertise). Started in cluster mode under that id, the
// server elects itself leader of a one-server cluster holding the store;
// servers started on empty data directories join it through the ordinary
// join path and receive the store by Raft's snapshot install (issue 14,
// `kvstore restore --node-id`).
//
// Seed refuses, changing nothing, a data directory without a database or
// with Raft state, and a database a running server holds. If seeding
// fails, the Raft directory it created is removed.
func Seed(dataDir, nodeID, address string) (appliedIndex uint64, err error) {
	if nodeID == "" {
		return 0, errors.New("seed: the node id must not be empty")
	}
	if host, port, err := net.SplitHostPort(address); err != nil || host == "" || port == "" || port == "0" {
		return 0, fmt.Errorf("seed: the peer address %q is not a host:port other nodes can reach", address)
	}
	raftDir := filepath.Join(dataDir, store.RaftDir)
	if _, err := os.Stat(raftDir); err == nil {
		return 0, fmt.Errorf("refusing to seed a cluster: %s exists; this data dir holds Raft state already", raftDir)
	} else if !errors.Is(err, os.ErrNotExist) {
		return 0, err
	}
	dbPath := filepath.Join(dataDir, store.DBFile)
	if _, err := os.Stat(dbPath); err != nil {
		return 0, fmt.Errorf("refusing to seed a cluster: the store %s: %w", dbPath, err)
	}
	st, err := store.Open(dbPath, store.Options{})
	if err != nil {
		return 0, fmt.Errorf("refusing to seed a cluster (stop the server first): %w", err)
	}
	appliedIndex = max(st.AppliedIndex(), 1)
	err = seed(st, raftDir, nodeID, address)
	if cerr := st.Close(); cerr != nil {
		err = errors.Join(err, fmt.Errorf("close the store: %w", cerr))
	}
	if err != nil {
		if rerr := os.RemoveAll(raftDir); rerr != nil {
			err = errors.Join(err, fmt.Errorf("remove %s: %w", raftDir, rerr))
		}
		return 0, err
	}
	return appliedIndex, nil
}

// seed writes raftDir's log and the seeding snapshot of st.
func seed(st *store.Store, raftDir, nodeID, address string) error {
	hlog := hclog.New(&hclog.LoggerOptions{Name: "raft", Level: hclog.Warn, Output: io.Discard})
	logs, err := openLogStore(raftDir, 0, true, hlog.Named("wal"))
	if err != nil {
		return err
	}
	defer logs.Close()
	snaps, err := raft.NewFileSnapshotStoreWithLogger(filepath.Join(raftDir, "snapshots"), 2, hlog)
	if err != nil {
		return fmt.Errorf("snapshot store: %w", err)
	}
	conf := raft.Configuration{Servers: []raft.Server{{ID: raft.ServerID(nodeID), Address: raft.ServerAddress(address), Suffrage: raft.Voter}}}
	if err := seedSnapshot(st, conf, snaps); err != nil {
		return err
	}
	return logs.Close()
}
