package cluster

import (
	"net/http"
	"testing"
	"time"

	"kvstore.dev/kvstore/test/harness"
	"kvstore.dev/kvstore/wire"
)

// TestClusterMembershipUnderLoad adds a fourth node as a non-voter,
// promotes it, removes another member, and restarts the removed member with
// its old state, all while clients write: the removed node is re-admitted
// as a non-voter without a change of leader, and no acknowledged write is
// lost.
func TestClusterMembershipUnderLoad(t *testing.T) {
	cl := harness.StartCluster(t, harness.ClusterOptions{Size: 3})
	nodes := cl.Nodes
	n0 := nodes[0].Client(t)

	writers := []*harness.Client{n0, nodes[2].Client(t)}
	w := harness.StartWriters(t, harness.WriterOptions{Workers: 2, Prefix: "m/", Client: func(worker, _ int) *harness.Client { return writers[worker] }})

	// A fourth node joins as a non-voter and is promoted.
	n3 := cl.NewNode(t, "n3", nodes[1].Peer, harness.ProcessOptions{Args: []string{"--join-as", "nonvoter"}})
	n3.Restart(t, harness.NodeReadyTimeout)
	harness.WaitStatus(t, n0, "n3 joins as a non-voter", func(st wire.ClusterStatus) bool { return harness.Suffrage(st, "n3") == wire.SuffrageNonvoter })
	if err := n0.AddMember("n3", n3.Peer, true); err != nil {
		t.Fatalf("promote n3: %v", err)
	}
	harness.WaitStatus(t, n0, "n3 promoted", func(st wire.ClusterStatus) bool {
		return harness.Suffrage(st, "n3") == wire.SuffrageVoter && len(st.Members) == 4
	})

	// n1 is removed while it runs, then comes back with its old state.
	if err := n0.RemoveMember("n1"); err != nil {
		t.Fatalf("remove n1: %v", err)
	}
	harness.WaitStatus(t, n0, "n1 removed", func(st wire.ClusterStatus) bool { return harness.Suffrage(st, "n1") == "" && len(st.Members) == 3 })
	if r := n0.Do(http.MethodDelete, wire.MemberPath("n1"), nil); r.Status != 404 && r.Status != 500 && r.Status != 400 {
		t.Logf("removing n1 again: %d", r.Status)
	}
	nodes[1].Kill(t)
	leaderBefore := harness.WaitStatus(t, n0, "a leader", func(st wire.ClusterStatus) bool { return st.LeaderID != "" }).LeaderID
	nodes[1].Start(t, "--join-as", "nonvoter")
	// The removed node asks to be re-admitted, as a non-voter; it comes
	// back without disturbing the leader.
	st := harness.WaitStatus(t, n0, "n1 re-admitted as a non-voter", func(st wire.ClusterStatus) bool {
		return harness.Suffrage(st, "n1") == wire.SuffrageNonvoter
	})
	if st.LeaderID != leaderBefore {
		t.Errorf("the leader changed from %s to %s while the removed node came back", leaderBefore, st.LeaderID)
	}

	// The writers go on until enough writes spanned the changes.
	w.WaitCount(t, 50, 30*time.Second)
	w.Stop()
	for _, c := range []*harness.Client{n0, n3.Client(t)} {
		w.Verify(t, c, "linearizable")
	}
	t.Logf("%d writes acknowledged during the membership changes", w.Count())
}
