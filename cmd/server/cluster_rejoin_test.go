package main

import (
	"fmt"
	"os"
	"testing"
	"time"
)

func memberSuffrage(st clusterStatus, id string) string {
	for _, m := range st.Members {
		if m.ID == id {
			return m.Suffrage
		}
	}
	return ""
}

// restartNonvoter starts n again on its data dir, joining through n0 as the
// operator's pods do (--join-as nonvoter).
func (n *clusterNode) restartNonvoter(t *testing.T, bin, token, join string) {
	t.Helper()
	n.p = launchServerWith(t, bin, n.dir, token, n.api, []string{
		"--node-id", n.id, "--peer-listen", n.peer, "--peer-advertise", n.peer,
		"--bootstrap-node", "n0", "--join", join, "--join-as", "nonvoter",
	}, []string{"KVSTORE_PEER_TOKEN=" + peerToken})
	n.p.name = n.id
}

// promote adds id as a voter, as the operator does once it has caught up.
func promote(t *testing.T, c *kvClient, n *clusterNode) {
	t.Helper()
	if code, err := c.admin("POST", "/api/v1/cluster/members", fmt.Sprintf(`{"id":%q,"address":%q,"voter":true}`, n.id, n.peer)); err != nil || code != 200 {
		t.Fatalf("promote %s: %d %v", n.id, code, err)
	}
}

// TestClusterScaleDownUpKeptState removes n2 and n1 from a three-node
// cluster while they run, stops them, and starts them again on their kept
// data dirs, as a StatefulSet scaled 3 → 1 → 3 does with retained volumes.
// Each must ask to be re-admitted (as a non-voter), catch up, and end as a
// ready voter once promoted; the writes made while they were out are there.
func TestClusterScaleDownUpKeptState(t *testing.T) {
	bin := buildServer(t)
	token := newToken(t)
	nodes := startCluster(t, bin, token, 3)
	n0 := newKVClient(t, nodes[0].p)
	for _, n := range []*clusterNode{nodes[2], nodes[1]} {
		if code, err := n0.admin("DELETE", "/api/v1/cluster/members/"+n.id, ""); err != nil || code != 200 {
			t.Fatalf("remove %s: %d %v", n.id, code, err)
		}
		n.p.terminate(t)
	}
	waitStatus(t, n0, "one member", func(st clusterStatus) bool { return len(st.Members) == 1 && st.LeaderID == "n0" })
	for i := 0; i < 20; i++ {
		if res, err := n0.put(fmt.Sprintf("while-out/%02d", i), []byte("v")); err != nil || res.status >= 300 {
			t.Fatalf("write while scaled down: %v %+v", err, res)
		}
	}
	for _, n := range nodes[1:] {
		n.restartNonvoter(t, bin, token, nodes[0].peer)
	}
	for _, n := range nodes[1:] {
		waitStatus(t, n0, n.id+" re-admitted as a non-voter", func(st clusterStatus) bool { return memberSuffrage(st, n.id) == "Nonvoter" })
		promote(t, n0, n)
	}
	waitStatus(t, n0, "three voters", func(st clusterStatus) bool {
		return len(st.Members) == 3 && memberSuffrage(st, "n1") == "Voter" && memberSuffrage(st, "n2") == "Voter"
	})
	for _, n := range nodes {
		if err := n.p.waitReady(30 * time.Second); err != nil {
			t.Fatalf("%s not ready: %v\n%s", n.id, err, n.p.outputTail())
		}
		c := newKVClient(t, n.p)
		if res, err := c.getConsistent("while-out/19", "linearizable"); err != nil || res.status != 200 {
			t.Fatalf("%s: read a write made while it was out: %d %v", n.id, res.status, err)
		}
	}
}

// TestClusterWipedMemberRejoinsFresh stops a voter, wipes its data dir and
// starts it again under the same node id: having forgotten its log and its
// votes, it must not come back as the same voter. The stale entry is
// removed, the server is added again as a non-voter, and only a promotion
// makes it a voter again.
func TestClusterWipedMemberRejoinsFresh(t *testing.T) {
	bin := buildServer(t)
	token := newToken(t)
	nodes := startCluster(t, bin, token, 3)
	n0 := newKVClient(t, nodes[0].p)
	for i := 0; i < 20; i++ {
		if res, err := n0.put(fmt.Sprintf("before-wipe/%02d", i), []byte("v")); err != nil || res.status >= 300 {
			t.Fatalf("write: %v %+v", err, res)
		}
	}
	n1 := nodes[1]
	n1.p.kill(t)
	if err := os.RemoveAll(n1.dir); err != nil {
		t.Fatal(err)
	}
	waitStatus(t, n0, "n1 still a voter while down", func(st clusterStatus) bool { return memberSuffrage(st, "n1") == "Voter" })
	n1.restartNonvoter(t, bin, token, nodes[0].peer)
	waitStatus(t, n0, "n1 re-added as a non-voter", func(st clusterStatus) bool {
		return memberSuffrage(st, "n1") == "Nonvoter" && len(st.Members) == 3
	})
	promote(t, n0, n1)
	waitStatus(t, n0, "n1 a voter again", func(st clusterStatus) bool { return memberSuffrage(st, "n1") == "Voter" && len(st.Members) == 3 })
	if err := n1.p.waitReady(30 * time.Second); err != nil {
		t.Fatalf("n1 not ready: %v\n%s", err, n1.p.outputTail())
	}
	c := newKVClient(t, n1.p)
	if res, err := c.getConsistent("before-wipe/19", "linearizable"); err != nil || res.status != 200 {
		t.Fatalf("n1: read a write from before the wipe: %d %v", res.status, err)
	}
}
