package cluster

import (
	"context"
	"fmt"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/hashicorp/raft"

	"kvstore.dev/kvstore/internal/store"
	"kvstore.dev/kvstore/wire"
)

// selfStatus is this node's own view: GET /peer/v1/status.
func (n *Node) selfStatus() wire.NodeStatus {
	lc := n.lastContact()
	ms := lc.Milliseconds()
	if lc < 0 {
		ms = -1
	}
	lastTerm, lastIndex := n.lastLog()
	return wire.NodeStatus{
		ID: n.cfg.NodeID, Address: n.cfg.PeerAdvertise, State: n.raft.State().String(), Term: n.raft.CurrentTerm(),
		CommitIndex: n.raft.CommitIndex(), AppliedIndex: n.raft.AppliedIndex(),
		LastLogTerm: lastTerm, LastLogIndex: lastIndex, LastContactMS: ms,
	}
}

// lastLog returns the term and index of the last entry in this node's
// Raft log, or of its latest snapshot when none follows it: Raft's own
// last_log_term and last_log_index (Stats).
func (n *Node) lastLog() (term, index uint64) {
	stats := n.raft.Stats()
	term, _ = strconv.ParseUint(stats["last_log_term"], 10, 64)
	index, _ = strconv.ParseUint(stats["last_log_index"], 10, 64)
	return term, index
}

// Status returns this node's view of the cluster (Enabled true), with each
// member's own status fetched from it (a member that does not answer
// within a second carries the error instead). A single node answers
// Enabled false, itself the one member.
func (n *Node) Status(ctx context.Context) (wire.ClusterStatus, error) {
	if n.cfg.Single {
		return n.singleStatus(), nil
	}
	addr, id := n.raft.LeaderWithID()
	st := wire.ClusterStatus{Enabled: true, Self: n.selfStatus(), LeaderID: string(id), Leader: string(addr)}
	cf := n.raft.GetConfiguration()
	if err := cf.Error(); err != nil {
		return st, err
	}
	servers := cf.Configuration().Servers
	st.Members = make([]wire.Member, 0, len(servers))
	for _, s := range servers {
		st.Members = append(st.Members, wire.Member{ID: string(s.ID), Address: string(s.Address), Suffrage: s.Suffrage.String(), Leader: s.ID == id})
	}
	n.peers.statuses(ctx, st.Members, st.Self)
	return st, nil
}

// statuses fills in each member's own status, asked of all of them at
// once; self is this node's, which is not asked. A member that does not
// answer within a second carries the error instead.
func (c *peerClient) statuses(ctx context.Context, members []wire.Member, self wire.NodeStatus) {
	var wg sync.WaitGroup
	for i := range members {
		m := &members[i]
		if m.ID == self.ID {
			m.Status = &self
			continue
		}
		wg.Go(func() {
			var ns wire.NodeStatus
			if err := c.call(ctx, time.Second, m.Address, http.MethodGet, wire.PeerPathStatus, nil, &ns); err != nil {
				m.Error = err.Error()
				return
			}
			m.Status = &ns
		})
	}
	wg.Wait()
}

// IsLeader reports whether this node leads the cluster now.
func (n *Node) IsLeader() bool { return n.raft.State() == raft.Leader }

// HasLeader reports whether this node knows a leader.
func (n *Node) HasLeader() bool { addr, _ := n.raft.LeaderWithID(); return addr != "" }

// LeaderChanges counts the leader changes this node observed.
func (n *Node) LeaderChanges() uint64 { return n.leaderCh.Load() }

// Indexes returns the commit index this node knows and the last index it
// applied.
func (n *Node) Indexes() (commit, applied uint64) {
	return n.raft.CommitIndex(), n.raft.AppliedIndex()
}

// ClusterStatus is Status: GET /api/v1/cluster's body (backend.WritePath).
func (n *Node) ClusterStatus(ctx context.Context) (wire.ClusterStatus, error) { return n.Status(ctx) }

// Ready returns why this node cannot serve now: no leader known, and none
// within cfg.ReadyGrace (leaderless). A node that has never known a
// leader since it started is not ready.
func (n *Node) Ready() error {
	if n.HasLeader() {
		return nil
	}
	if d, ok := n.leaderless(time.Now()); !ok || d >= n.cfg.ReadyGrace {
		return fmt.Errorf("no leader known for %s: %w", d.Round(time.Millisecond), store.ErrNoQuorum)
	}
	return nil
}

// leaderless says how long this node has had no leader at now, counted
// from the later of its last contact with a leader (as a follower, from
// Raft) and the moment it saw its leader go (which covers a leader that
// stepped down); ok is false when it has known none since it started.
func (n *Node) leaderless(now time.Time) (d time.Duration, ok bool) {
	last := n.raft.LastContact()
	if lost := n.leaderLost.Load(); lost != 0 {
		if t := time.Unix(0, lost); t.After(last) {
			last = t
		}
	}
	if last.IsZero() {
		return 0, false
	}
	return now.Sub(last), true
}

// Sweeps reports whether this node's TTL sweeper proposes expiries: only
// the leader's does.
func (n *Node) Sweeps() bool { return n.IsLeader() }
