package cluster

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/hashicorp/raft"
)

// HandOff moves leadership away from this node before it stops, so that
// the cluster does not wait out an election timeout: a node that is not
// the leader, or the only voter, returns nil at once. As leader it holds
// the pacer (the write in flight is applied first; writes arriving
// meanwhile wait), asks Raft to transfer leadership to the most up-to-date
// voter (Raft waits until that voter has the whole log, then tells it to
// stand at once; it wins the next term), and waits until it hears from
// the new leader. The held writes are then refused here as not-leader and
// retried through the new leader, so clients see a pause of a few
// milliseconds, not an error.
//
// ctx bounds the whole hand-off. On an error (no voter caught up in time,
// ctx ended) this node may still lead; stopping it then costs the cluster
// an election, as a crash would. Safe for concurrent use with every other
// method; call it before Close.
func (n *Node) HandOff(ctx context.Context) error {
	if n.raft.State() != raft.Leader || !n.hasOtherVoter() {
		return nil
	}
	start := time.Now()
	from := n.raft.CurrentTerm()
	release, err := n.pacer.hold(ctx)
	if err != nil {
		return fmt.Errorf("hand-off: %w", err)
	}
	defer release()
	if err := n.transferLeadership(ctx); err != nil {
		return fmt.Errorf("hand-off: %w", err)
	}
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for {
		if _, id := n.raft.LeaderWithID(); id != "" && string(id) != n.cfg.NodeID {
			n.cfg.Logger.Info("leadership transferred", "to", string(id), "term", n.raft.CurrentTerm(),
				"from_term", from, "took", time.Since(start).String())
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("hand-off: leadership given up, but no new leader heard from: %w", ctx.Err())
		case <-tick.C:
		}
	}
}

// transferLeadership runs Raft's leadership transfer, retrying while its
// main loop cannot take the request yet, until ctx ends. Raft bounds one
// transfer by its election timeout.
func (n *Node) transferLeadership(ctx context.Context) error {
	for {
		err := n.raft.LeadershipTransfer().Error()
		if err == nil {
			return nil
		}
		if !errors.Is(err, raft.ErrEnqueueTimeout) && !errors.Is(err, raft.ErrLeadershipTransferInProgress) {
			return fmt.Errorf("leadership transfer: %w", err)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("leadership transfer (%v): %w", err, ctx.Err())
		case <-time.After(10 * time.Millisecond):
		}
	}
}

// hasOtherVoter reports whether the configuration has a voter besides this
// node, one that leadership could go to.
func (n *Node) hasOtherVoter() bool {
	cf := n.raft.GetConfiguration()
	if cf.Error() != nil {
		return false
	}
	for _, s := range cf.Configuration().Servers {
		if s.Suffrage == raft.Voter && string(s.ID) != n.cfg.NodeID {
			return true
		}
	}
	return false
}
