package cluster

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"path/filepath"
	"testing"
	"time"

	"kvstore.dev/kvstore/internal/store"
	"kvstore.dev/kvstore/test/harness"
)

const testToken = "peer-token-0123456789"

type testNode struct {
	*Node
	st   *store.Store
	dir  string
	addr string
	id   string
}

func fastConfig(id, dir, addr string, bootstrap bool, join []string) Config {
	return Config{
		NodeID: id, Dir: filepath.Join(dir, "raft"), PeerListen: addr, PeerAdvertise: addr,
		Bootstrap: bootstrap, Join: join, PeerToken: testToken, ApplyTimeout: 5 * time.Second,
		HeartbeatTimeout: 200 * time.Millisecond, ElectionTimeout: 200 * time.Millisecond, LeaderLeaseTimeout: 100 * time.Millisecond,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), RaftLog: io.Discard,
	}
}

// startNode opens a store in dir and starts a node on it.
func startNode(t *testing.T, id, dir, addr string, bootstrap bool, join []string, tweaks ...func(*Config)) *testNode {
	t.Helper()
	st, err := store.Open(filepath.Join(dir, store.DBFile), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	cfg := fastConfig(id, dir, addr, bootstrap, join)
	for _, tweak := range tweaks {
		tweak(&cfg)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	n, err := Start(ctx, cfg, st)
	if err != nil {
		st.Close()
		t.Fatalf("start %s: %v", id, err)
	}
	tn := &testNode{Node: n, st: st, dir: dir, addr: addr, id: id}
	t.Cleanup(tn.stop)
	return tn
}

func (tn *testNode) stop() {
	if tn.Node != nil {
		tn.Node.Close()
		tn.st.Close()
		tn.Node = nil
	}
}

// startCluster starts n nodes: the first bootstraps, the others join it.
// tweak, if set, changes node i's config before it starts.
func startCluster(t *testing.T, size int, tweak ...func(i int, cfg *Config)) []*testNode {
	t.Helper()
	addrs := make([]string, size)
	for i := range addrs {
		addrs[i] = harness.FreeAddr(t)
	}
	nodes := make([]*testNode, size)
	for i := range nodes {
		var tweaks []func(*Config)
		for _, tw := range tweak {
			tweaks = append(tweaks, func(cfg *Config) { tw(i, cfg) })
		}
		nodes[i] = startNode(t, fmt.Sprintf("n%d", i), t.TempDir(), addrs[i], i == 0, addrs[:1], tweaks...)
	}
	waitFor(t, "all members voters with a leader", func() error {
		st, err := nodes[0].Status(context.Background())
		if err != nil {
			return err
		}
		if st.Leader == "" || len(st.Members) != size {
			return fmt.Errorf("leader %q, %d members", st.Leader, len(st.Members))
		}
		return nil
	})
	return nodes
}

// waitFor polls cond for up to 20 s.
func waitFor(t *testing.T, what string, cond func() error) {
	t.Helper()
	harness.Eventually(t, what, 20*time.Second, cond)
}

func put(ctx context.Context, n *testNode, key, value string) (store.Result, error) {
	res, err := n.Propose(ctx, store.Command{Op: store.OpPut, Key: key, Value: []byte(value)})
	if err != nil {
		return store.Result{}, err
	}
	return res[0], res[0].Err
}

func leaderOf(t *testing.T, nodes []*testNode) *testNode {
	t.Helper()
	var l *testNode
	waitFor(t, "a leader", func() error {
		for _, n := range nodes {
			if n.Node != nil && n.IsLeader() {
				l = n
				return nil
			}
		}
		return errors.New("none")
	})
	return l
}

// asClient runs op as a client would: an answer that says the operation
// may not have happened (no quorum, outcome unknown: a leader change under
// load) is retried; the ops given here are safe to repeat. Any other error
// is returned.
func asClient(t *testing.T, what string, op func() error) error {
	t.Helper()
	var err error
	waitFor(t, what, func() error {
		if err = op(); errors.Is(err, store.ErrNoQuorum) || errors.Is(err, store.ErrOutcomeUnknown) {
			return err
		}
		return nil
	})
	return err
}

// peerModes are the ways the peer port authenticates; the cluster tests
// run under each. A mode returns the config tweak of every node of one
// test (by node id, so a restarted node gets its own files again).
var peerModes = map[string]func(t *testing.T) func(*Config){
	"token": func(*testing.T) func(*Config) { return func(*Config) {} },
	"mtls":  func(t *testing.T) func(*Config) { return newTestPKI(t).apply },
}

// forEachPeerMode runs test under every peer mode, as a subtest.
func forEachPeerMode(t *testing.T, test func(t *testing.T, mode func(*Config))) {
	for name, mode := range peerModes {
		t.Run(name, func(t *testing.T) { test(t, mode(t)) })
	}
}

// inMode is startCluster's tweak applying mode to every node.
func inMode(mode func(*Config)) func(int, *Config) { return func(_ int, cfg *Config) { mode(cfg) } }

func TestReplicatesAndForwards(t *testing.T) { forEachPeerMode(t, testReplicatesAndForwards) }

func testReplicatesAndForwards(t *testing.T, mode func(*Config)) {
	nodes := startCluster(t, 3, inMode(mode))
	ctx := context.Background()
	leader := leaderOf(t, nodes)
	for i, n := range nodes {
		// Writes through every node, leader or not.
		err := asClient(t, "put through "+n.id, func() error {
			_, err := put(ctx, n, fmt.Sprintf("k%d", i), fmt.Sprintf("v%d", i))
			return err
		})
		if err != nil {
			t.Fatalf("put through %s (leader %v): %v", n.id, n == leader, err)
		}
	}
	// CAS outcomes travel back from the leader.
	var res []store.Result
	err := asClient(t, "cas through a follower", func() (err error) {
		res, err = nodes[1].Propose(ctx, store.Command{Op: store.OpPut, Key: "k0", Value: []byte("x"), IfRevision: 999})
		return err
	})
	if err != nil || !errors.Is(res[0].Err, store.ErrPreconditionFailed) {
		t.Fatalf("cas through a follower: %v %v", res, err)
	}
	// A linearizable read on any node sees every acknowledged write.
	for _, n := range nodes {
		if err := asClient(t, "read barrier on "+n.id, func() error { _, err := n.ReadBarrier(ctx, Linearizable); return err }); err != nil {
			t.Fatalf("read barrier on %s: %v", n.id, err)
		}
		for i := range nodes {
			kv, err := n.st.Get(fmt.Sprintf("k%d", i), time.Now(), true)
			if err != nil || string(kv.Value) != fmt.Sprintf("v%d", i) {
				t.Errorf("%s: k%d = %q, %v", n.id, i, kv.Value, err)
			}
		}
	}
	if _, err := nodes[2].ReadBarrier(ctx, "eventual"); !errors.Is(err, ErrBadConsistency) {
		t.Errorf("unknown level: %v", err)
	}
}

func TestLeaderLossElectsAnother(t *testing.T) { forEachPeerMode(t, testLeaderLossElectsAnother) }

func testLeaderLossElectsAnother(t *testing.T, mode func(*Config)) {
	nodes := startCluster(t, 3, inMode(mode))
	ctx := context.Background()
	old := leaderOf(t, nodes)
	if _, err := put(ctx, old, "before", "1"); err != nil {
		t.Fatal(err)
	}
	old.stop()
	start := time.Now()
	var survivor *testNode
	for _, n := range nodes {
		if n.Node != nil {
			survivor = n
			break
		}
	}
	if _, err := put(ctx, survivor, "after", "2"); err != nil {
		t.Fatalf("write after the leader stopped: %v", err)
	}
	t.Logf("first write after the leader stopped: %v", time.Since(start))
	for _, n := range nodes {
		if n.Node == nil {
			continue
		}
		if _, err := n.ReadBarrier(ctx, Linearizable); err != nil {
			t.Fatal(err)
		}
		if _, err := n.st.Get("before", time.Now(), false); err != nil {
			t.Errorf("%s lost an acknowledged write: %v", n.id, err)
		}
	}
	// The old leader comes back with its state and catches up.
	back := startNode(t, old.id, old.dir, old.addr, false, []string{survivor.addr}, mode)
	nodes = append(nodes, back)
	waitFor(t, "the restarted node catches up", func() error {
		if _, err := back.st.Get("after", time.Now(), false); err != nil {
			return err
		}
		return nil
	})
}

func TestNoQuorum(t *testing.T) {
	nodes := startCluster(t, 3)
	leader := leaderOf(t, nodes)
	var follower *testNode
	for _, n := range nodes {
		if n != leader {
			if follower == nil {
				follower = n
			} else {
				n.stop()
			}
		}
	}
	leader.stop()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	_, err := put(ctx, follower, "k", "v")
	if !errors.Is(err, store.ErrNoQuorum) {
		t.Fatalf("write without a quorum: %v, want ErrNoQuorum", err)
	}
	if _, err := follower.ReadBarrier(ctx, Linearizable); !errors.Is(err, store.ErrNoQuorum) {
		t.Errorf("linearizable read without a quorum: %v", err)
	}
	if lc, err := follower.ReadBarrier(ctx, Stale); err != nil || lc <= 0 {
		t.Errorf("stale read: last contact %v, %v", lc, err)
	}
}

func TestWrongPeerTokenIsRefused(t *testing.T) {
	nodes := startCluster(t, 1)
	wrong := &peerAuth{token: []byte("not-the-peer-token-0123")}
	if conn, err := dial(nodes[0].addr, kindHTTP, wrong, time.Second); !errors.Is(err, errPeerAuth) {
		if conn != nil {
			conn.Close()
		}
		t.Fatalf("dial with a wrong token: %v, want errPeerAuth (the node's proof does not verify)", err)
	}
	conn, err := net.Dial("tcp", nodes[0].addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if err := answerChallenge(conn, kindHTTP, wrong.token); err != nil {
		t.Fatal(err)
	}
	fmt.Fprintf(conn, "GET /peer/v1/status HTTP/1.1\r\nHost: x\r\n\r\n")
	_ = conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	b, err := io.ReadAll(conn)
	if len(b) != 0 {
		t.Fatalf("a peer with a wrong token got an answer: %q (%v)", b, err)
	}
}

// TestFiveNodesLoseTwo: a five-node cluster keeps taking writes with two
// nodes down, the leader among them, and refuses them with three down.
func TestFiveNodesLoseTwo(t *testing.T) {
	nodes := startCluster(t, 5)
	ctx := context.Background()
	leader := leaderOf(t, nodes)
	if _, err := put(ctx, leader, "k", "1"); err != nil {
		t.Fatal(err)
	}
	leader.stop()
	var alive []*testNode
	for _, n := range nodes {
		if n.Node != nil {
			alive = append(alive, n)
		}
	}
	alive[0].stop()
	alive = alive[1:]
	for i, n := range alive {
		if _, err := put(ctx, n, fmt.Sprintf("after%d", i), "2"); err != nil {
			t.Fatalf("write through %s with two of five down: %v", n.id, err)
		}
	}
	for _, n := range alive {
		if _, err := n.ReadBarrier(ctx, Linearizable); err != nil {
			t.Fatal(err)
		}
		if _, err := n.st.Get("k", time.Now(), false); err != nil {
			t.Errorf("%s lost the write made before the failures: %v", n.id, err)
		}
	}
	alive[0].stop()
	short, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	// ErrOutcomeUnknown if a survivor was leader, took the write into its
	// log, and then found it had no quorum; either way, not acknowledged.
	if _, err := put(short, alive[1], "k", "3"); !errors.Is(err, store.ErrNoQuorum) && !errors.Is(err, store.ErrOutcomeUnknown) {
		t.Errorf("write with three of five down: %v, want ErrNoQuorum or ErrOutcomeUnknown", err)
	}
}
