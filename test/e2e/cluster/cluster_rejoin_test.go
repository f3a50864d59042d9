package cluster

import (
	"fmt"
	"os"
	"testing"

	"kvstore.dev/kvstore/test/harness"
	"kvstore.dev/kvstore/wire"
)

// nonvoter is how a server restarts on its data dir as the operator's pods
// do: asking to be re-admitted as a non-voter.
var nonvoter = []string{"--join-as", "nonvoter"}

// promote adds n as a voter, as the operator does once it has caught up.
func promote(t *testing.T, c *harness.Client, n *harness.Node) {
	t.Helper()
	if err := c.AddMember(n.ID, n.Peer, true); err != nil {
		t.Fatalf("promote %s: %v", n.ID, err)
	}
}

// TestClusterScaleDownUpKeptState removes n2 and n1 from a three-node
// cluster while they run, stops them, and starts them again on their kept
// data dirs, as a StatefulSet scaled 3 → 1 → 3 does with retained volumes.
// Each must ask to be re-admitted (as a non-voter), catch up, and end as a
// ready voter once promoted; the writes made while they were out are there.
func TestClusterScaleDownUpKeptState(t *testing.T) {
	cl := harness.StartCluster(t, harness.ClusterOptions{Size: 3})
	nodes := cl.Nodes
	n0 := nodes[0].Client(t)
	for _, n := range []*harness.Node{nodes[2], nodes[1]} {
		if err := n0.RemoveMember(n.ID); err != nil {
			t.Fatalf("remove %s: %v", n.ID, err)
		}
		n.Terminate(t)
	}
	harness.WaitStatus(t, n0, "one member", func(st wire.ClusterStatus) bool { return len(st.Members) == 1 && st.LeaderID == "n0" })
	for i := 0; i < 20; i++ {
		if res := n0.Put(fmt.Sprintf("while-out/%02d", i), []byte("v")); res.Err != nil || res.Status >= 300 {
			t.Fatalf("write while scaled down: %v %s", res, res.Body)
		}
	}
	for _, n := range nodes[1:] {
		n.Start(t, nonvoter...)
	}
	for _, n := range nodes[1:] {
		harness.WaitStatus(t, n0, n.ID+" re-admitted as a non-voter", func(st wire.ClusterStatus) bool {
			return harness.Suffrage(st, n.ID) == wire.SuffrageNonvoter
		})
		promote(t, n0, n)
	}
	harness.WaitStatus(t, n0, "three voters", func(st wire.ClusterStatus) bool {
		return len(st.Members) == 3 && harness.Suffrage(st, "n1") == wire.SuffrageVoter && harness.Suffrage(st, "n2") == wire.SuffrageVoter
	})
	for _, n := range nodes {
		if err := n.WaitReady(harness.NodeReadyTimeout); err != nil {
			n.Fatalf(t, "%s not ready: %v", n.ID, err)
		}
		if res := n.Client(t).Get("while-out/19", "linearizable"); res.Err != nil || res.Status != 200 {
			t.Fatalf("%s: read a write made while it was out: %d %v", n.ID, res.Status, res.Err)
		}
	}
}

// TestClusterWipedMemberRejoinsFresh stops a voter, wipes its data dir and
// starts it again under the same node id: having forgotten its log and its
// votes, it must not come back as the same voter. The stale entry is
// removed, the server is added again as a non-voter, and only a promotion
// makes it a voter again.
func TestClusterWipedMemberRejoinsFresh(t *testing.T) {
	cl := harness.StartCluster(t, harness.ClusterOptions{Size: 3})
	n0 := cl.Nodes[0].Client(t)
	for i := 0; i < 20; i++ {
		if res := n0.Put(fmt.Sprintf("before-wipe/%02d", i), []byte("v")); res.Err != nil || res.Status >= 300 {
			t.Fatalf("write: %v %s", res, res.Body)
		}
	}
	n1 := cl.Nodes[1]
	n1.Kill(t)
	if err := os.RemoveAll(n1.DataDir); err != nil {
		t.Fatal(err)
	}
	harness.WaitStatus(t, n0, "n1 still a voter while down", func(st wire.ClusterStatus) bool {
		return harness.Suffrage(st, "n1") == wire.SuffrageVoter
	})
	n1.Start(t, nonvoter...)
	harness.WaitStatus(t, n0, "n1 re-added as a non-voter", func(st wire.ClusterStatus) bool {
		return harness.Suffrage(st, "n1") == wire.SuffrageNonvoter && len(st.Members) == 3
	})
	promote(t, n0, n1)
	harness.WaitStatus(t, n0, "n1 a voter again", func(st wire.ClusterStatus) bool {
		return harness.Suffrage(st, "n1") == wire.SuffrageVoter && len(st.Members) == 3
	})
	if err := n1.WaitReady(harness.NodeReadyTimeout); err != nil {
		n1.Fatalf(t, "n1 not ready: %v", err)
	}
	if res := n1.Client(t).Get("before-wipe/19", "linearizable"); res.Err != nil || res.Status != 200 {
		t.Fatalf("n1: read a write from before the wipe: %d %v", res.Status, res.Err)
	}
}
