package server

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"

	"kvstore.dev/kvstore/internal/backup"
	"kvstore.dev/kvstore/internal/cluster"
	"kvstore.dev/kvstore/internal/store"
)

// Member is the first member of a new cluster that a restore seeds
// (kvstore restore --node-id, --peer-advertise): the id and peer address
// the server will run with in cluster mode (cluster.node_id,
// cluster.peer_advertise).
type Member struct {
	NodeID        string
	PeerAdvertise string
}

// RestoreAsMember restores a backup (fetch: RestoreBackup with no force,
// or Restore of a snapshot file) into the empty data directory dataDir and
// seeds its Raft state as a one-server cluster of m (cluster.Seed), so
// that the server started in cluster mode as m leads a cluster holding the
// backup at its applied index, and servers started on empty data
// directories join it and receive that state by Raft's snapshot install.
//
// A data directory holding a database, Raft state or a single node's
// former WAL is refused before anything is fetched, and nothing in it is
// changed (ErrDataDirNotEmpty): a restore never overwrites data. If
// seeding fails after the restore, the restored database is removed
// again.
func RestoreAsMember(dataDir string, m Member, restore func() (store.Status, error)) (store.Status, uint64, error) {
	if err := m.validate(); err != nil {
		return store.Status{}, 0, err
	}
	if err := checkEmptyDataDir(dataDir); err != nil {
		return store.Status{}, 0, err
	}
	st, err := restore()
	if err != nil {
		return st, 0, err
	}
	idx, err := cluster.Seed(dataDir, m.NodeID, m.PeerAdvertise)
	if err != nil {
		db := filepath.Join(dataDir, store.DBFile)
		if rerr := os.Remove(db); rerr != nil {
			err = errors.Join(err, fmt.Errorf("remove the restored %s: %w", db, rerr))
		}
		return st, 0, fmt.Errorf("seed the cluster's Raft state (the restored database is removed again): %w", err)
	}
	return st, idx, nil
}

// RestoreBackupAsMember is RestoreAsMember of the backup name of dest (its
// newest when name is ""), verified as RestoreBackup verifies it.
func RestoreBackupAsMember(ctx context.Context, dest backup.Destination, name, wantSHA256, dataDir string, m Member) (backup.Manifest, store.Status, uint64, error) {
	var man backup.Manifest
	st, idx, err := RestoreAsMember(dataDir, m, func() (store.Status, error) {
		var st store.Status
		var err error
		man, st, err = RestoreBackup(ctx, dest, name, wantSHA256, dataDir, false)
		return st, err
	})
	return man, st, idx, err
}

// ErrDataDirNotEmpty means a restore as a new cluster's first member was
// aimed at a data directory that already holds data.
var ErrDataDirNotEmpty = errors.New("kvstore: data dir is not empty")

func (m Member) validate() error {
	if m.NodeID == "" {
		return errors.New("the node id (--node-id) must not be empty")
	}
	if host, port, err := net.SplitHostPort(m.PeerAdvertise); err != nil || host == "" || port == "" || port == "0" {
		return fmt.Errorf("the peer address (--peer-advertise) %q is not a host:port other nodes can reach", m.PeerAdvertise)
	}
	return nil
}

// checkEmptyDataDir refuses a data directory that holds a database, Raft
// state or a former single node's WAL (anything else, such as a new
// volume's lost+found, is left alone).
func checkEmptyDataDir(dataDir string) error {
	for _, name := range []string{store.DBFile, store.RaftDir, store.WALDir} {
		p := filepath.Join(dataDir, name)
		if _, err := os.Stat(p); err == nil {
			return fmt.Errorf("%w: %s exists; a new cluster is restored only into an empty data dir, never over existing data", ErrDataDirNotEmpty, p)
		} else if !errors.Is(err, os.ErrNotExist) {
			return err
		}
	}
	return nil
}
