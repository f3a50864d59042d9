package cluster

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/raft"

	"kvstore.dev/kvstore/internal/store"
)

// skewedNode is a test node whose write-path clock runs ahead of the wall
// clock by a settable offset.
type skewedNode struct {
	*testNode
	offset atomic.Int64
}

func (s *skewedNode) clock() time.Time { return time.Now().Add(time.Duration(s.offset.Load())) }

// startSkewedCluster starts size nodes like startCluster, each with a clock
// of its own.
func startSkewedCluster(t *testing.T, size int) []*skewedNode {
	t.Helper()
	nodes := make([]*skewedNode, size)
	for i := range nodes {
		nodes[i] = &skewedNode{}
	}
	for i, tn := range startCluster(t, size, func(i int, cfg *Config) { cfg.Clock = nodes[i].clock }) {
		nodes[i].testNode = tn
	}
	return nodes
}

func skewedLeader(t *testing.T, nodes []*skewedNode) (leader *skewedNode, followers []*skewedNode) {
	t.Helper()
	plain := make([]*testNode, len(nodes))
	for i, n := range nodes {
		plain[i] = n.testNode
	}
	l := leaderOf(t, plain)
	for _, n := range nodes {
		if n.testNode == l {
			leader = n
		} else {
			followers = append(followers, n)
		}
	}
	return leader, followers
}

// stampsInLog returns the Now of every command in this node's Raft log, by key.
func stampsInLog(t *testing.T, n *testNode) map[string]int64 {
	t.Helper()
	first, err := n.logs.FirstIndex()
	if err != nil {
		t.Fatal(err)
	}
	last, err := n.logs.LastIndex()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]int64{}
	for i := first; i <= last && i > 0; i++ {
		var l raft.Log
		if err := n.logs.GetLog(i, &l); err != nil {
			t.Fatalf("log entry %d: %v", i, err)
		}
		if l.Type != raft.LogCommand {
			continue
		}
		cmds, err := decodeCommands(l.Data)
		if err != nil {
			t.Fatalf("log entry %d: %v", i, err)
		}
		for _, c := range cmds {
			out[c.Key] = c.Now
		}
	}
	return out
}

// TestLeaderClockStampsEveryWrite: a write proposed on the leader and one a
// follower forwards both carry the leader's clock in the log, whatever Now
// the proposer set and whatever the follower's clock says, and it is that
// clock which decides whether a key has expired.
func TestLeaderClockStampsEveryWrite(t *testing.T) {
	nodes := startSkewedCluster(t, 3)
	leader, followers := skewedLeader(t, nodes)
	const ahead = time.Hour
	leader.offset.Store(int64(ahead))
	ctx := context.Background()

	// Expired by the leader's clock only.
	half := time.Now().Add(ahead / 2).UnixNano()
	for _, k := range []string{"via-leader", "via-follower"} {
		if _, err := leader.Propose(ctx, store.Command{Op: store.OpPut, Key: k, Value: []byte("old"), ExpiresAt: half}); err != nil {
			t.Fatal(err)
		}
	}
	before := time.Now()
	for _, tc := range []struct {
		key string
		via *skewedNode
	}{{"via-leader", leader}, {"via-follower", followers[0]}} {
		res, err := tc.via.Propose(ctx, store.Command{Op: store.OpPut, Key: tc.key, Value: []byte("new"), IfAbsent: true, Now: 1})
		if err != nil {
			t.Fatalf("%s: %v", tc.key, err)
		}
		if res[0].Err != nil || !res[0].Created {
			t.Errorf("%s: create-only over a key expired by the leader's clock: %+v, want created", tc.key, res[0])
		}
	}
	after := time.Now()
	for _, n := range nodes {
		if _, err := n.ReadBarrier(ctx, Linearizable); err != nil {
			t.Fatal(err)
		}
		stamps := stampsInLog(t, n.testNode)
		for _, k := range []string{"via-leader", "via-follower"} {
			got := time.Unix(0, stamps[k])
			if got.Before(before.Add(ahead)) || got.After(after.Add(ahead)) {
				t.Errorf("%s's log: %s stamped %v, want the leader's clock, within [%v, %v]", n.id, k, got, before.Add(ahead), after.Add(ahead))
			}
		}
	}
}

// TestExpiredKeysAreGoneForWrites: once a key's TTL has passed (a read
// says 404), every write treats it as absent, through any node: a
// create-only put succeeds, a compare-and-swap on its old revision fails,
// and a prefix delete does not count it.
func TestExpiredKeysAreGoneForWrites(t *testing.T) {
	nodes := startCluster(t, 3)
	leader := leaderOf(t, nodes)
	var follower *testNode
	for _, n := range nodes {
		if n != leader {
			follower = n
			break
		}
	}
	ctx := context.Background()
	exp := time.Now().Add(300 * time.Millisecond).UnixNano()
	var oldRev uint64
	for _, k := range []string{"t/create", "t/cas", "p/expired"} {
		res, err := follower.Propose(ctx, store.Command{Op: store.OpPut, Key: k, Value: []byte("v"), ExpiresAt: exp})
		if err != nil || res[0].Err != nil {
			t.Fatalf("put %s: %v %v", k, err, res)
		}
		if k == "t/cas" {
			oldRev = res[0].KV.ModRevision
		}
	}
	if _, err := put(ctx, follower, "p/live", "v"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the keys read as expired", func() error {
		for _, n := range nodes {
			if _, err := n.ReadBarrier(ctx, Linearizable); err != nil {
				return err
			}
			if _, err := n.st.Get("t/create", time.Now(), false); !errors.Is(err, store.ErrNotFound) {
				return fmt.Errorf("%s: get = %v", n.id, err)
			}
		}
		return nil
	})
	for name, tc := range map[string]struct {
		via   *testNode
		cmd   store.Command
		check func(store.Result) error
	}{
		"create-only": {follower, store.Command{Op: store.OpPut, Key: "t/create", Value: []byte("new"), IfAbsent: true}, func(r store.Result) error {
			if r.Err != nil || !r.Created {
				return fmt.Errorf("%+v, want created", r)
			}
			return nil
		}},
		"cas on the old revision": {leader, store.Command{Op: store.OpPut, Key: "t/cas", Value: []byte("new"), IfRevision: oldRev}, func(r store.Result) error {
			if !errors.Is(r.Err, store.ErrPreconditionFailed) {
				return fmt.Errorf("%+v, want precondition failed", r)
			}
			return nil
		}},
		"prefix delete": {follower, store.Command{Op: store.OpDeletePrefix, Key: "p/"}, func(r store.Result) error {
			if r.Err != nil || r.Deleted != 1 {
				return fmt.Errorf("%+v, want 1 deleted (the live key only)", r)
			}
			return nil
		}},
	} {
		res, err := tc.via.Propose(ctx, tc.cmd)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if err := tc.check(res[0]); err != nil {
			t.Errorf("%s on an expired key: %v", name, err)
		}
	}
}
