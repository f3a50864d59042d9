package cluster

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/hashicorp/raft"

	"kvstore.dev/kvstore/internal/store"
	"kvstore.dev/kvstore/wire"
)

// Read consistency levels (the ?consistency= query parameter).
const (
	// Linearizable reads see every write acknowledged before they began:
	// the leader confirms it still leads and gives its commit index, and
	// the read waits until this node has applied that far.
	Linearizable = "linearizable"
	// Leader reads are served by the leader within its lease, without a
	// round to the followers; on a follower they are linearizable.
	Leader = "leader"
	// Stale reads are served from this node's state as it is.
	Stale = "stale"
)

// ReadBarrier makes a local read that follows it as consistent as level
// asks, and returns how long ago this node last heard from a leader (zero
// on the leader).
func (n *Node) ReadBarrier(ctx context.Context, level string) (time.Duration, error) {
	switch level {
	case Stale:
		return n.lastContact(), nil
	case Leader:
		if n.raft.State() == raft.Leader {
			return 0, nil
		}
	case "", Linearizable:
	default:
		return 0, fmt.Errorf("consistency %q: want linearizable, leader or stale: %w", level, ErrBadConsistency)
	}
	idx, err := n.readIndex(ctx)
	if err != nil {
		return 0, err
	}
	return n.lastContact(), n.waitApplied(ctx, idx)
}

// readIndexTimeout bounds one read-index request to the leader.
const readIndexTimeout = 2 * time.Second

// ErrBadConsistency is an unknown consistency level.
var ErrBadConsistency = errors.New("bad consistency level")

func (n *Node) lastContact() time.Duration {
	if n.raft.State() == raft.Leader {
		return 0
	}
	t := n.raft.LastContact()
	if t.IsZero() {
		return -1
	}
	return time.Since(t)
}

// readIndex returns an index such that a read after applying it is
// linearizable: the leader's commit index once it has confirmed (by a
// heartbeat round) that it still leads.
func (n *Node) readIndex(ctx context.Context) (uint64, error) {
	var idx uint64
	err := n.peers.viaLeader(ctx, func() (err error) {
		if n.raft.State() != raft.Leader {
			return errNotLeader
		}
		idx, err = n.localReadIndex()
		return err
	}, func(addr string) (err error) {
		idx, err = n.peers.readIndex(ctx, addr)
		return err
	})
	return idx, err
}

func (n *Node) localReadIndex() (uint64, error) {
	if term := n.raft.CurrentTerm(); n.readyTerm.Load() != term {
		// New leader: first apply what earlier leaders committed. A barrier
		// that succeeds was committed in this term by this leader.
		if err := n.raft.Barrier(n.cfg.ApplyTimeout).Error(); err != nil {
			if errors.Is(err, raft.ErrNotLeader) || errors.Is(err, raft.ErrLeadershipLost) || errors.Is(err, raft.ErrLeadershipTransferInProgress) {
				return 0, errNotLeader
			}
			return 0, fmt.Errorf("read index: %v: %w", err, store.ErrNoQuorum)
		}
		n.readyTerm.Store(term)
	}
	// Every write this leader acknowledged was applied by its state machine
	// first, and the barrier above applied everything earlier leaders
	// committed: so the state machine's last index covers every write
	// acknowledged before this read began.
	idx := n.fsm.last.Load()
	if n.cfg.Single {
		// The only voter, and none can be added (AddMember refuses): no
		// other node can lead or commit, so leading is enough, without a
		// round through Raft's leader loop (VerifyLeader).
		return idx, nil
	}
	if err := n.raft.VerifyLeader().Error(); err != nil {
		if errors.Is(err, raft.ErrNotLeader) || errors.Is(err, raft.ErrLeadershipLost) || errors.Is(err, raft.ErrLeadershipTransferInProgress) {
			return 0, errNotLeader
		}
		return 0, fmt.Errorf("read index: cannot confirm leadership: %v: %w", err, store.ErrNoQuorum)
	}
	return idx, nil
}

// readIndexResponse answers GET /peer/v1/read-index.
type readIndexResponse struct {
	Index uint64 `json:"index"`
}

// readIndex asks the leader for a read index. An attempt is bounded (a
// heartbeat round takes milliseconds); a leader that does not answer in
// time counts as unreachable, and the caller follows the next one. Reads
// change nothing, so retrying them is safe: any other error is
// store.ErrNoQuorum, retried like one.
func (c *peerClient) readIndex(ctx context.Context, leader string) (uint64, error) {
	var out readIndexResponse
	err := c.call(ctx, readIndexTimeout, leader, http.MethodGet, wire.PeerPathReadIndex, nil, &out)
	if err != nil && !retryable(err) {
		err = fmt.Errorf("read index from the leader %s: %v: %w", leader, err, store.ErrNoQuorum)
	}
	return out.Index, err
}

// waitApplied waits until this node's state machine has applied the log
// through idx.
func (n *Node) waitApplied(ctx context.Context, idx uint64) error {
	for n.fsm.last.Load() < idx {
		ch := n.fsm.waitChan()
		if n.fsm.last.Load() >= idx {
			break
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return fmt.Errorf("wait for index %d (applied %d): %w: %w", idx, n.fsm.last.Load(), ctx.Err(), store.ErrNoQuorum)
		case <-n.stop:
			return store.ErrClosed
		}
	}
	return nil
}
