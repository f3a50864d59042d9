package server

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"kvstore.dev/kvstore/internal/backend"
	"kvstore.dev/kvstore/internal/cluster"
	"kvstore.dev/kvstore/internal/config"
	"kvstore.dev/kvstore/internal/metrics"
	"kvstore.dev/kvstore/internal/store"
)

// raftPath is the Raft node as a backend.WritePath, its proposals timed.
type raftPath struct {
	*cluster.Node
	m *metrics.Metrics
}

func (b raftPath) Propose(ctx context.Context, cmds ...store.Command) ([]store.Result, error) {
	start := time.Now()
	res, err := b.Node.Propose(ctx, cmds...)
	if err == nil {
		b.m.ObservePropose(time.Since(start))
	}
	return res, err
}

// openBackend starts the write path, a Raft node (a one-server cluster of
// its own without cluster mode), and joins it with st. Closing the returned
// node stops the write path and then closes st; when openBackend fails, st
// stays open and the caller closes it.
func openBackend(ctx context.Context, cfg config.Config, st *store.Store, m *metrics.Metrics, log *slog.Logger) (backend.Node, error) {
	c := cfg.Cluster
	ccfg := cluster.Config{
		Single: !c.Enabled, NodeID: c.NodeID, Dir: filepath.Join(cfg.DataDir, store.RaftDir),
		HeartbeatTimeout: c.HeartbeatTimeout.D(), ElectionTimeout: c.ElectionTimeout.D(), LeaderLeaseTimeout: c.LeaderLeaseTimeout.D(),
		SnapshotThreshold: c.SnapshotThreshold, ReadyGrace: c.ReadyGrace.D(),
		Flush:  store.FlushPolicy{Interval: cfg.Store.FlushInterval.D(), MaxKeys: cfg.Store.FlushMaxKeys, MaxBytes: cfg.Store.FlushMaxBytes},
		Logger: log.With("component", "cluster"), OnSnapshot: m.ObserveSnapshot,
	}
	if c.Enabled {
		ccfg.PeerListen, ccfg.PeerAdvertise, ccfg.PeerToken = c.PeerListen, c.PeerAdvertise, c.PeerToken
		ccfg.PeerTokenFile = c.PeerTokenReloadFile()
		ccfg.Bootstrap, ccfg.Join, ccfg.JoinAsNonvoter = c.BootstrapNode == c.NodeID, c.Join, c.JoinAs == "nonvoter"
		if f := c.BootstrapAllowedFile; f != "" {
			ccfg.MayBootstrap = func() error { return bootstrapAllowed(f) }
		}
		ccfg.ClusterName, ccfg.PeerTLS = c.Name, cluster.PeerTLS{CertFile: c.PeerTLSCert, KeyFile: c.PeerTLSKey, CAFile: c.PeerTLSCA}
	} else if err := replayLegacyWAL(st, cfg.DataDir, log); err != nil {
		return backend.Node{}, err
	}
	node, err := cluster.Start(ctx, ccfg, st)
	if err != nil {
		return backend.Node{}, err
	}
	m.ObserveCluster(node)
	if c.Enabled {
		log.Info("cluster mode", "node", c.NodeID, "peer", c.PeerAdvertise, "bootstrap", ccfg.Bootstrap, "join", c.Join, "peer_tls", c.PeerTLSCert != "")
	}
	return backend.Node{Store: st, WritePath: raftPath{node, m}}, nil
}

// bootstrapAllowed reads cluster.bootstrap_allowed_file: nil when it says
// "true" (surrounding space ignored), else an error saying what it holds.
// The file is read at every ask, since the operator rewrites it (a
// ConfigMap key, which the kubelet updates in the mounted volume).
func bootstrapAllowed(file string) error {
	b, err := os.ReadFile(file)
	if err != nil {
		return fmt.Errorf("cluster.bootstrap_allowed_file: %w", err)
	}
	if v := strings.TrimSpace(string(b)); v != "true" {
		return fmt.Errorf("cluster.bootstrap_allowed_file %s says %q, not \"true\"", file, v)
	}
	return nil
}
