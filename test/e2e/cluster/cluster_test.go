package cluster

import (
	"fmt"
	"sync"
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

	type ack struct{ key, value string }
	var (
		mu         sync.Mutex
		acked      []ack
		unknown    atomic.Int64
		killedAt   atomic.Int64 // unix nanos
		firstAfter atomic.Int64 // unix nanos of the first ack after the kill
		stop       = make(chan struct{})
		wg         sync.WaitGroup
	)
	for w := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for seq := 0; ; seq++ {
				select {
				case <-stop:
					return
				default:
				}
				c := clients[(w+seq)%len(clients)]
				if nodes[(w+seq)%len(nodes)] == leader && killedAt.Load() != 0 {
					continue // the killed node's clients would only fail
				}
				key, value := fmt.Sprintf("w%d/%06d", w, seq), fmt.Sprintf("v-%d-%d", w, seq)
				res := c.Put(key, []byte(value))
				if res.Status != 200 && res.Status != 201 {
					unknown.Add(1) // 503 no_quorum, 504 outcome_unknown, or a cut connection
					continue
				}
				mu.Lock()
				acked = append(acked, ack{key, value})
				mu.Unlock()
				if k := killedAt.Load(); k != 0 && firstAfter.Load() == 0 {
					firstAfter.CompareAndSwap(0, time.Now().UnixNano())
				}
			}
		}()
	}
	waitAcks := func(n int) {
		harness.Eventually(t, fmt.Sprintf("%d acknowledged writes", n), 20*time.Second, func() error {
			mu.Lock()
			defer mu.Unlock()
			if len(acked) < n {
				return fmt.Errorf("%d", len(acked))
			}
			return nil
		})
	}
	waitAcks(300)
	leader.Kill(t)
	killedAt.Store(time.Now().UnixNano())
	mu.Lock()
	before := len(acked)
	mu.Unlock()
	waitAcks(before + 300)
	close(stop)
	wg.Wait()
	failover := time.Duration(firstAfter.Load() - killedAt.Load())
	t.Logf("kill -9 of leader %s: first acknowledged write %v later; %d acknowledged, %d failed or unknown", leader.ID, failover.Round(time.Millisecond), len(acked), unknown.Load())
	if failover > 5*time.Second {
		t.Errorf("no write acknowledged within 5s of the leader's death (%v)", failover)
	}

	// The old leader comes back with its data and catches up.
	leader.Restart(t, harness.NodeReadyTimeout)
	clients = clients[:0]
	for _, n := range nodes {
		clients = append(clients, n.Client(t))
	}
	for i, c := range clients {
		missing := 0
		for _, a := range acked {
			res := c.Get(a.key, "linearizable")
			if res.Err != nil || res.Status != 200 || string(res.Body) != a.value {
				if missing < 5 {
					t.Errorf("%s: acknowledged %s=%s reads %d %q (%v)", nodes[i].ID, a.key, a.value, res.Status, res.Body, res.Err)
				}
				missing++
			}
		}
		if missing > 0 {
			t.Errorf("%s: %d of %d acknowledged writes missing", nodes[i].ID, missing, len(acked))
		}
	}
}
