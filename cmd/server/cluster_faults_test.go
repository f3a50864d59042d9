package main

import (
	"context"
	"fmt"
	"net/http"
	"syscall"
	"testing"
	"time"

	"kvstore.dev/kvstore/internal/lincheck"
)

func (n *clusterNode) signal(t *testing.T, sig syscall.Signal) {
	t.Helper()
	if err := n.p.cmd.Process.Signal(sig); err != nil {
		t.Fatalf("%v to %s: %v", sig, n.id, err)
	}
}

func leaderNode(t *testing.T, nodes []*clusterNode, token string) *clusterNode {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		for _, n := range nodes {
			if n.p == nil || n.p.exited() {
				continue
			}
			st, err := getClusterStatus(newKVClient(t, n.p))
			if err != nil || st.LeaderID == "" {
				continue
			}
			for _, m := range nodes {
				if m.id == st.LeaderID {
					return m
				}
			}
		}
		<-time.After(50 * time.Millisecond)
	}
	t.Fatal("no leader within 20s")
	return nil
}

// TestClusterLinearizableUnderFaults records concurrent reads, writes
// (half of them with a TTL that runs out during the run), deletes and
// compare-and-swaps through all three nodes of a cluster while
// the leader is killed and restarted and a follower is frozen (SIGSTOP) and
// resumed, and checks the history for linearizability with porcupine. A
// violation fails the test and saves the history and its visualization.
func TestClusterLinearizableUnderFaults(t *testing.T) {
	bin := buildServer(t)
	token := newToken(t)
	nodes := startCluster(t, bin, token, 3)
	endpoints := make([]string, len(nodes))
	for i, n := range nodes {
		endpoints[i] = n.p.baseURL
	}

	faults := make(chan string, 8)
	go func() {
		defer close(faults)
		<-time.After(1500 * time.Millisecond)
		leader := leaderNode(t, nodes, token)
		leader.p.kill(t)
		faults <- "kill -9 " + leader.id
		<-time.After(2 * time.Second)
		leader.start(t, bin, token, "n0", nodes[0].peer)
		faults <- "restarted " + leader.id
		var follower *clusterNode
		cur := leaderNode(t, nodes, token)
		for _, n := range nodes {
			if n != cur {
				follower = n
				break
			}
		}
		follower.signal(t, syscall.SIGSTOP)
		faults <- "SIGSTOP " + follower.id
		<-time.After(1500 * time.Millisecond)
		follower.signal(t, syscall.SIGCONT)
		faults <- "SIGCONT " + follower.id
	}()

	h, err := lincheck.Run(context.Background(), lincheck.Config{
		Endpoints: endpoints, Token: token, Clients: 8, Keys: 8,
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
	bin := buildServer(t)
	token := newToken(t)
	nodes := startCluster(t, bin, token, 3)
	c := newKVClient(t, nodes[1].p)
	for i := range 50 {
		if res, err := c.put(fmt.Sprintf("k%02d", i), []byte(fmt.Sprintf("v%d", i))); err != nil || res.status >= 300 {
			t.Fatalf("put: %v %d", err, res.status)
		}
	}
	for _, n := range nodes {
		n.p.kill(t)
	}
	// Reverse order: the bootstrap node last, so the others must wait for
	// a quorum rather than find a leader at once.
	done := make(chan *clusterNode, len(nodes))
	for i := len(nodes) - 1; i >= 0; i-- {
		go func(n *clusterNode) {
			n.p = launchServerWith(t, bin, n.dir, token, n.api, []string{
				"--node-id", n.id, "--peer-listen", n.peer, "--peer-advertise", n.peer,
				"--bootstrap-node", "n0", "--join", nodes[0].peer,
			}, []string{"KVSTORE_PEER_TOKEN=" + peerToken})
			done <- n
		}(nodes[i])
	}
	for range nodes {
		n := <-done
		if err := n.p.waitReady(30 * time.Second); err != nil {
			t.Fatalf("%s after a full restart: %v\n%s", n.id, err, n.p.outputTail())
		}
	}
	for _, n := range nodes {
		c := newKVClient(t, n.p)
		for i := range 50 {
			res, err := c.getConsistent(fmt.Sprintf("k%02d", i), "linearizable")
			if err != nil || res.status != 200 || string(res.body) != fmt.Sprintf("v%d", i) {
				t.Fatalf("%s: k%02d after a full restart: %d %q %v", n.id, i, res.status, res.body, err)
			}
		}
	}
}
