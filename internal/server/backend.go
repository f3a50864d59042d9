package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"time"

	"kvstore.dev/kvstore/internal/cluster"
	"kvstore.dev/kvstore/internal/config"
	"kvstore.dev/kvstore/internal/httpapi"
	"kvstore.dev/kvstore/internal/metrics"
	"kvstore.dev/kvstore/internal/store"
	"kvstore.dev/kvstore/wire"
)

type httpapiBackend = httpapi.Backend

// backendAPI is what Run needs of a backend beyond httpapi.Backend.
type backendAPI interface {
	Propose(ctx context.Context, cmds ...store.Command) ([]store.Result, error)
	sweeps() bool
	// handOff gives up leadership before shutdown (cluster mode).
	handOff(ctx context.Context) error
}

// singleBackend joins the store's reads with the committer's writes.
type singleBackend struct {
	*store.Store
	*store.Committer
}

// Ready reports whether the store is open and the committer takes writes.
func (b singleBackend) Ready() error {
	if err := b.Committer.Healthy(); err != nil {
		return err
	}
	return b.Store.Ready()
}

func (b singleBackend) sweeps() bool { return true }

func (b singleBackend) handOff(context.Context) error { return nil }

// clusterBackend joins the store's reads with the Raft node's writes, read
// barriers and membership.
type clusterBackend struct {
	*store.Store
	node *cluster.Node
	m    *metrics.Metrics
}

func (b clusterBackend) Propose(ctx context.Context, cmds ...store.Command) ([]store.Result, error) {
	start := time.Now()
	res, err := b.node.Propose(ctx, cmds...)
	if err == nil {
		b.m.ObservePropose(time.Since(start))
	}
	return res, err
}

// Ready: the store is open and this node knows a leader (so a request it
// takes can be served).
func (b clusterBackend) Ready() error {
	if !b.node.HasLeader() {
		return fmt.Errorf("no leader known: %w", store.ErrNoQuorum)
	}
	return b.Store.Ready()
}

// handOff: a leader hands its leadership to another voter (cluster.Node.HandOff).
func (b clusterBackend) handOff(ctx context.Context) error { return b.node.HandOff(ctx) }

// sweeps: only the leader expires keys.
func (b clusterBackend) sweeps() bool { return b.node.IsLeader() }

func (b clusterBackend) ReadBarrier(ctx context.Context, level string) (time.Duration, error) {
	return b.node.ReadBarrier(ctx, level)
}

func (b clusterBackend) ClusterStatus(ctx context.Context) (any, error) {
	st, err := b.node.Status(ctx)
	return st, err
}

func (b clusterBackend) AddMember(ctx context.Context, id, address string, voter bool) error {
	return b.node.AddMember(ctx, wire.AddMemberRequest{ID: id, Address: address, Voter: &voter})
}

func (b clusterBackend) RemoveMember(ctx context.Context, id string) error {
	return b.node.RemoveMember(ctx, id)
}

// openBackend starts the write path: a WAL and committer on a single node,
// or a Raft node in cluster mode. The returned close function stops the
// write path and then closes st; when openBackend fails, st stays open and
// the caller closes it.
func openBackend(ctx context.Context, cfg config.Config, st *store.Store, m *metrics.Metrics, log *slog.Logger) (interface {
	backendAPI
	httpapiBackend
}, func() error, error) {
	if cfg.Cluster.Enabled {
		c := cfg.Cluster
		node, err := cluster.Start(ctx, cluster.Config{
			NodeID: c.NodeID, Dir: filepath.Join(cfg.DataDir, "raft"),
			PeerListen: c.PeerListen, PeerAdvertise: c.PeerAdvertise,
			Bootstrap: c.BootstrapNode == c.NodeID, Join: c.Join, JoinAsNonvoter: c.JoinAs == "nonvoter", PeerToken: c.PeerToken,
			HeartbeatTimeout: c.HeartbeatTimeout.D(), ElectionTimeout: c.ElectionTimeout.D(), LeaderLeaseTimeout: c.LeaderLeaseTimeout.D(),
			SnapshotThreshold: c.SnapshotThreshold, Logger: log.With("component", "cluster"), OnSnapshot: m.ObserveSnapshot,
		}, st)
		if err != nil {
			return nil, nil, err
		}
		m.ObserveCluster(node)
		log.Info("cluster mode", "node", c.NodeID, "peer", c.PeerAdvertise, "bootstrap", c.BootstrapNode == c.NodeID, "join", c.Join)
		return clusterBackend{st, node, m}, func() error { return errors.Join(node.Close(), st.Close()) }, nil
	}
	wal, err := store.OpenWAL(filepath.Join(cfg.DataDir, store.WALDir))
	if err != nil {
		return nil, nil, err
	}
	committer, err := store.NewCommitter(st, wal, store.CommitterOptions{MaxBatch: cfg.Store.MaxBatch, Logger: log, OnAppend: m.ObserveAppend})
	if err != nil {
		return nil, nil, errors.Join(err, wal.Close())
	}
	return singleBackend{st, committer}, func() error {
		committer.Close()
		return errors.Join(st.Close(), wal.Close())
	}, nil
}
