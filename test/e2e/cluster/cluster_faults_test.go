package cluster

import (
	"context"
	"fmt"
	"net/http"
	"syscall"
	"testing"
	"time"

	"kvstore.dev/kvstore/internal/lincheck"
	"kvstore.dev/kvstore/test/harness"
)

// TestClusterLinearizableUnderFaults records concurrent reads, writes
// (half of them with a TTL that runs out during the run), deletes and
// compare-and-swaps through all three nodes of a cluster while
// the leader is killed and restarted and a follower is frozen (SIGSTOP) and
// resumed, and checks the history for linearizability with porcupine. A
// violation fails the test and saves the history and its visualization.
func TestClusterLinearizableUnderFaults(t *testing.T) {
	cl := harness.StartCluster(t, harness.ClusterOptions{Size: 3})
	endpoints := make([]string, len(cl.Nodes))
	for i, n := range cl.Nodes {
		endpoints[i] = n.URL
	}

	faults := make(chan string, 8)
	go func() {
		defer close(faults)
		<-time.After(1500 * time.Millisecond)
		leader := cl.Leader(t)
		leader.Kill(t)
		faults <- "kill -9 " + leader.ID
		<-time.After(2 * time.Second)
		leader.Restart(t, harness.NodeReadyTimeout)
		faults <- "restarted " + leader.ID
		follower := cl.Others(cl.Leader(t))[0]
		follower.Signal(t, syscall.SIGSTOP)
		faults <- "SIGSTOP " + follower.ID
		<-time.After(1500 * time.Millisecond)
		follower.Signal(t, syscall.SIGCONT)
		faults <- "SIGCONT " + follower.ID
	}()

	h, err := lincheck.Run(context.Background(), lincheck.Config{
		Endpoints: endpoints, Token: cl.Token, Clients: 8, Keys: 8,
		Duration: 8 * time.Second, Seed: time.Now().UnixNano(), RequestTimeout: 3 * time.Second,
		Consistency: "linearizable",
		TTL:         5 * time.Millisecond, // half the writes: such a key expires before the next write to it
		Client:      &http.Client{Transport: &http.Transport{Proxy: nil, MaxIdleConnsPerHost: 16}},
	})
	for f := range faults {
		t.Log("fault:", f)
	}
	if err != nil {
		t.Fatalf("recording: %v (%d operations)", err, len(h))
	}
	st := h.Stats()
	t.Logf("history: %+v", st)
	lincheck.Verify(t, h, time.Minute)
}

// TestClusterRestartAll stops every node at once and starts them again:
// the cluster re-forms from its Raft state, with its data.
func TestClusterRestartAll(t *testing.T) {
	cl := harness.StartCluster(t, harness.ClusterOptions{Size: 3})
	nodes := cl.Nodes
	c := nodes[1].Client(t)
	for i := range 50 {
		if res := c.Put(fmt.Sprintf("k%02d", i), []byte(fmt.Sprintf("v%d", i))); res.Err != nil || res.Status >= 300 {
			t.Fatalf("put: %v %d", res.Err, res.Status)
		}
	}
	for _, n := range nodes {
		n.Kill(t)
	}
	// Reverse order: the bootstrap node last, so the others must wait for
	// a quorum rather than find a leader at once.
	for i := len(nodes) - 1; i >= 0; i-- {
		nodes[i].Start(t)
	}
	for _, n := range nodes {
		if err := n.WaitReady(harness.NodeReadyTimeout); err != nil {
			n.Fatalf(t, "%s after a full restart: %v", n.ID, err)
		}
	}
	for _, n := range nodes {
		c := n.Client(t)
		for i := range 50 {
			res := c.Get(fmt.Sprintf("k%02d", i), "linearizable")
			if res.Err != nil || res.Status != 200 || string(res.Body) != fmt.Sprintf("v%d", i) {
				t.Fatalf("%s: k%02d after a full restart: %d %q %v", n.ID, i, res.Status, res.Body, res.Err)
			}
		}
	}
}
