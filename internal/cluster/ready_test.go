package cluster

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"kvstore.dev/kvstore/internal/store"
)

// TestReadyThroughElection: when the leader crashes, the followers stay
// ready through the election that replaces it (within ReadyGrace), so a
// rolling update never has every pod unready at once.
func TestReadyThroughElection(t *testing.T) {
	nodes := startCluster(t, 3)
	old := leaderOf(t, nodes)
	var followers []*testNode
	for _, n := range nodes {
		if n != old {
			followers = append(followers, n)
		}
	}
	waitFor(t, "both followers ready", func() error {
		return errors.Join(followers[0].Ready(), followers[1].Ready())
	})
	old.stop()
	sawNoLeader := false
	waitFor(t, "a new leader known to both followers, each ready all along", func() error {
		for _, f := range followers {
			if err := f.Ready(); err != nil {
				t.Fatalf("%s unready during the election: %v", f.id, err)
			}
		}
		for _, f := range followers {
			if !f.HasLeader() {
				sawNoLeader = true
				return fmt.Errorf("%s knows no leader", f.id)
			}
			if _, id := f.raft.LeaderWithID(); string(id) == old.id {
				return fmt.Errorf("%s still names %s", f.id, old.id)
			}
		}
		return nil
	})
	if !sawNoLeader {
		t.Log("the followers never were seen without a leader; the election was quicker than a poll")
	}
}

// TestUnreadyAfterReadyGrace: a node left without a quorum is ready for
// ReadyGrace after it lost its leader, then not, with ErrNoQuorum.
func TestUnreadyAfterReadyGrace(t *testing.T) {
	const grace = 300 * time.Millisecond
	nodes := startCluster(t, 3, func(_ int, cfg *Config) { cfg.ReadyGrace = grace })
	leader := leaderOf(t, nodes)
	var last *testNode
	for _, n := range nodes {
		if n == leader {
			continue
		}
		if last == nil {
			last = n
			continue
		}
		n.stop()
	}
	waitFor(t, "the last follower ready", last.Ready)
	leader.stop()
	waitFor(t, "the last node unready once its grace has passed", func() error {
		err := last.Ready()
		if err == nil {
			return errors.New("still ready")
		}
		if !errors.Is(err, store.ErrNoQuorum) {
			t.Fatalf("unready: %v, want ErrNoQuorum", err)
		}
		d, ok := last.leaderless(time.Now())
		if !ok || d < grace {
			t.Fatalf("unready after %s without a leader (known: %v), before the grace of %s", d, ok, grace)
		}
		return nil
	})
}
