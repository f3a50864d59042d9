package cluster

import (
	"fmt"
	"net/http"
	"sync"
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

	var (
		mu    sync.Mutex
		acked = map[string]string{}
		stop  = make(chan struct{})
		wg    sync.WaitGroup
	)
	writers := []*harness.Client{n0, nodes[2].Client(t)}
	for w, c := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for seq := 0; ; seq++ {
				select {
				case <-stop:
					return
				default:
				}
				k, v := fmt.Sprintf("m%d/%05d", w, seq), fmt.Sprintf("%d-%d", w, seq)
				if res := c.Put(k, []byte(v)); res.Err == nil && res.Status < 300 {
					mu.Lock()
					acked[k] = v
					mu.Unlock()
				}
			}
		}()
	}

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
	_, _ = harness.Poll(30*time.Second, func() error {
		mu.Lock()
		defer mu.Unlock()
		if len(acked) < 50 {
			return fmt.Errorf("%d acknowledged", len(acked))
		}
		return nil
	})
	close(stop)
	wg.Wait()
	mu.Lock()
	defer mu.Unlock()
	if len(acked) < 50 {
		t.Fatalf("only %d writes acknowledged", len(acked))
	}
	for _, c := range []*harness.Client{n0, n3.Client(t)} {
		for k, v := range acked {
			res := c.Get(k, "linearizable")
			if res.Err != nil || res.Status != 200 || string(res.Body) != v {
				t.Fatalf("%s: acknowledged %s=%s reads %d %q %v", c.URL, k, v, res.Status, res.Body, res.Err)
			}
		}
	}
	t.Logf("%d writes acknowledged during the membership changes", len(acked))
}
