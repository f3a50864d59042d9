package cluster

import (
	"sync/atomic"
	"testing"
	"time"

	"kvstore.dev/kvstore/test/harness"
)

func TestMain(m *testing.M) { harness.Main(m) }

// TestClusterKillLeaderUnderLoad kills -9 the leader of a three-process
// cluster while eight clients write through every node: a new leader must
// take writes within 5 s, and after the old leader restarts every
// acknowledged write must be readable, linearizably, on every node.
func TestClusterKillLeaderUnderLoad(t *testing.T) {
	cl := harness.StartCluster(t, harness.ClusterOptions{Size: 3})
	nodes := cl.Nodes
	clients := make([]*harness.Client, len(nodes))
	for i, n := range nodes {
		clients[i] = n.Client(t)
	}
	st, err := clients[1].ClusterStatus()
	if err != nil || len(st.Members) != 3 || st.LeaderID == "" {
		t.Fatalf("cluster status %+v, %v", st, err)
	}
	leader := cl.Node(st.LeaderID)

	var killed atomic.Bool
	w := harness.StartWriters(t, harness.WriterOptions{Workers: 8, Client: func(worker, seq int) *harness.Client {
		i := (worker + seq) % len(nodes)
		if killed.Load() && nodes[i] == leader {
			return nil // the killed node's clients would only fail
		}
		return clients[i]
	}})
	w.WaitCount(t, 300, 20*time.Second)
	leader.Kill(t)
	killedAt := time.Now()
	killed.Store(true)
	w.WaitMore(t, 300, 20*time.Second)
	w.Stop()
	first, _ := w.FirstAckAfter(killedAt)
	failover := first.Sub(killedAt)
	t.Logf("kill -9 of leader %s: first acknowledged write %v later; %d acknowledged, failed or unknown: %v", leader.ID, failover.Round(time.Millisecond), w.Count(), w.Failed())
	if failover > 5*time.Second {
		t.Errorf("no write acknowledged within 5s of the leader's death (%v)", failover)
	}

	// The old leader comes back with its data and catches up.
	leader.Restart(t, harness.NodeReadyTimeout)
	clients = clients[:0]
	for _, n := range nodes {
		clients = append(clients, n.Client(t))
	}
	for _, c := range clients {
		w.Verify(t, c, "linearizable")
	}
}
