package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"time"

	"kvstore.dev/kvstore/internal/backend"
	"kvstore.dev/kvstore/internal/cluster"
	"kvstore.dev/kvstore/internal/config"
	"kvstore.dev/kvstore/internal/metrics"
	"kvstore.dev/kvstore/internal/single"
	"kvstore.dev/kvstore/internal/store"
	"kvstore.dev/kvstore/internal/wal"
	"kvstore.dev/kvstore/wire"
)

// raftPath is the Raft node as a backend.WritePath.
type raftPath struct {
	node *cluster.Node
	m    *metrics.Metrics
}

func (b raftPath) Propose(ctx context.Context, cmds ...store.Command) ([]store.Result, error) {
	start := time.Now()
	res, err := b.node.Propose(ctx, cmds...)
	if err == nil {
		b.m.ObservePropose(time.Since(start))
	}
	return res, err
}

// Ready: this node knows a leader (so a request it takes can be served).
func (b raftPath) Ready() error {
	if !b.node.HasLeader() {
		return fmt.Errorf("no leader known: %w", store.ErrNoQuorum)
	}
	return nil
}

// HandOff: a leader hands its leadership to another voter (cluster.Node.HandOff).
func (b raftPath) HandOff(ctx context.Context) error { return b.node.HandOff(ctx) }

// Sweeps: only the leader expires keys.
func (b raftPath) Sweeps() bool { return b.node.IsLeader() }

func (b raftPath) ReadBarrier(ctx context.Context, level string) (time.Duration, error) {
	return b.node.ReadBarrier(ctx, level)
}

func (b raftPath) ClusterStatus(ctx context.Context) (wire.ClusterStatus, error) {
	return b.node.Status(ctx)
}

func (b raftPath) AddMember(ctx context.Context, req wire.AddMemberRequest) error {
	return b.node.AddMember(ctx, req)
}

func (b raftPath) RemoveMember(ctx context.Context, id string) error {
	return b.node.RemoveMember(ctx, id)
}

func (b raftPath) Close() error { return b.node.Close() }

// flushPolicy is the store section's flush policy; its zero fields take
// the write path's defaults (store.DefaultFlushPolicy).
func flushPolicy(s config.StoreTuning) store.FlushPolicy {
	return store.FlushPolicy{Interval: s.FlushInterval.D(), MaxKeys: s.FlushMaxKeys, MaxBytes: s.FlushMaxBytes}
}

// openBackend starts the write path, a WAL and committer on a single node
// or a Raft node in cluster mode, and joins it with st. Closing the
// returned node stops the write path and then closes st; when openBackend
// fails, st stays open and the caller closes it.
func openBackend(ctx context.Context, cfg config.Config, st *store.Store, m *metrics.Metrics, log *slog.Logger) (backend.Node, error) {
	if cfg.Cluster.Enabled {
		c := cfg.Cluster
		node, err := cluster.Start(ctx, cluster.Config{
			NodeID: c.NodeID, Dir: filepath.Join(cfg.DataDir, "raft"),
			PeerListen: c.PeerListen, PeerAdvertise: c.PeerAdvertise,
			Bootstrap: c.BootstrapNode == c.NodeID, Join: c.Join, JoinAsNonvoter: c.JoinAs == "nonvoter", PeerToken: c.PeerToken,
			HeartbeatTimeout: c.HeartbeatTimeout.D(), ElectionTimeout: c.ElectionTimeout.D(), LeaderLeaseTimeout: c.LeaderLeaseTimeout.D(),
			SnapshotThreshold: c.SnapshotThreshold, Flush: flushPolicy(cfg.Store),
			Logger: log.With("component", "cluster"), OnSnapshot: m.ObserveSnapshot,
		}, st)
		if err != nil {
			return backend.Node{}, err
		}
		m.ObserveCluster(node)
		log.Info("cluster mode", "node", c.NodeID, "peer", c.PeerAdvertise, "bootstrap", c.BootstrapNode == c.NodeID, "join", c.Join)
		return backend.Node{Store: st, WritePath: raftPath{node, m}}, nil
	}
	w, err := wal.Open(filepath.Join(cfg.DataDir, store.WALDir))
	if err != nil {
		return backend.Node{}, err
	}
	committer, err := single.New(st, w, single.Options{MaxBatch: cfg.Store.MaxBatch, Flush: flushPolicy(cfg.Store), Logger: log, OnAppend: m.ObserveAppend})
	if err != nil {
		return backend.Node{}, errors.Join(err, w.Close())
	}
	return backend.Node{Store: st, WritePath: committer}, nil
}
