// Package backend is the contract between a server's API and its write
// path: [WritePath], implemented by the Raft node (internal/cluster,
// adapted in internal/server), a single node being a one-server cluster of
// its own. The API (internal/httpapi) serves a [Node], a store's reads
// joined with a write path, and never asks which kind of node it serves: a
// single node answers the cluster endpoints too.
package backend

import (
	"context"
	"errors"
	"time"

	"kvstore.dev/kvstore/internal/store"
	"kvstore.dev/kvstore/wire"
)

// WritePath is how writes reach a store, and what else depends on the
// replication behind them. Implementations are safe for concurrent use.
type WritePath interface {
	// Propose commits cmds and returns one result per command once they
	// are durably applied to the local store.
	store.Proposer
	// ReadBarrier returns once a local read is as consistent as level
	// asks ("" or "linearizable", "leader", "stale"), with how long ago
	// this node heard from the leader (negative: never). A single node,
	// its own leader, needs no round to others.
	ReadBarrier(ctx context.Context, level string) (time.Duration, error)
	// ClusterStatus is GET /api/v1/cluster's body.
	ClusterStatus(ctx context.Context) (wire.ClusterStatus, error)
	// AddMember and RemoveMember change the membership; a single node
	// (not in cluster mode) answers errcode.ErrNotClustered.
	AddMember(ctx context.Context, req wire.AddMemberRequest) error
	RemoveMember(ctx context.Context, id string) error
	// Ready returns why writes cannot be served now, or nil.
	Ready() error
	// HandOff gives up leadership before shutdown, if this node leads
	// other voters.
	HandOff(ctx context.Context) error
	// Sweeps reports whether this node's TTL sweeper proposes expiries now
	// (a cluster's leader only).
	Sweeps() bool
	// Close stops the write path, committing what it already took. The
	// store stays open.
	Close() error
}

// Node is a store's reads joined with its write path: what the API serves.
type Node struct {
	*store.Store
	WritePath
}

// Ready reports whether the write path takes writes and the store is open.
func (n Node) Ready() error {
	if err := n.WritePath.Ready(); err != nil {
		return err
	}
	return n.Store.Ready()
}

// Close closes the write path, then the store.
func (n Node) Close() error { return errors.Join(n.WritePath.Close(), n.Store.Close()) }
