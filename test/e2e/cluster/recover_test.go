package cluster

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"kvstore.dev/kvstore/internal/lincheck"
	"kvstore.dev/kvstore/test/harness"
	"kvstore.dev/kvstore/wire"
)

// TestRecoverLostQuorum loses two of three servers for good (kill -9 and
// their data deleted), checks the survivor can no longer write, recovers
// it with `kvstore recover` as a one-server cluster, lets two fresh
// members join it, and then checks that every acknowledged key is on all
// three and that a concurrent history through them is linearizable.
func TestRecoverLostQuorum(t *testing.T) {
	bin := harness.Binary(t, "server")
	cl := harness.StartCluster(t, harness.ClusterOptions{Bin: bin, Size: 3})
	c := cl.Nodes[0].Client(t)
	const keys = 40
	for i := range keys {
		if res := c.Put(fmt.Sprintf("k%02d", i), []byte(fmt.Sprintf("v%d", i))); res.Err != nil || res.Status >= 300 {
			t.Fatalf("put: %v %d", res.Err, res.Status)
		}
	}
	survivor := cl.Nodes[0]
	for _, n := range cl.Nodes[1:] {
		n.Kill(t)
		if err := os.RemoveAll(n.DataDir); err != nil {
			t.Fatal(err)
		}
	}
	// Without a quorum the survivor takes no write.
	harness.Eventually(t, "the survivor refuses writes", 30*time.Second, func() error {
		res := survivor.Client(t).WithTimeout(3*time.Second).Put("after-loss", []byte("x"))
		if res.Err == nil && res.Status < 300 {
			return fmt.Errorf("a write was acknowledged without a quorum")
		}
		return nil
	})

	survivor.Terminate(t)
	out, err := exec.Command(bin, "recover", "--data-dir", survivor.DataDir, "--node-id", survivor.ID).CombinedOutput()
	if err != nil {
		t.Fatalf("kvstore recover: %v\n%s", err, out)
	}
	t.Logf("kvstore recover:\n%s", out)
	if !strings.Contains(string(out), survivor.ID) {
		t.Errorf("recover's output does not name %s", survivor.ID)
	}
	survivor.Restart(t, harness.NodeReadyTimeout)
	sc := survivor.Client(t)
	harness.WaitStatus(t, sc, "the survivor leads alone", func(st wire.ClusterStatus) bool {
		return st.LeaderID == survivor.ID && len(st.Members) == 1
	})
	if res := sc.Put("after-recovery", []byte("y")); res.Err != nil || res.Status >= 300 {
		t.Fatalf("put after recovery: %v %d %s", res.Err, res.Status, res.Body)
	}

	// Two fresh members join through the survivor.
	fresh := []*harness.Node{cl.NewNode(t, "n3", survivor.Peer, harness.ProcessOptions{}), cl.NewNode(t, "n4", survivor.Peer, harness.ProcessOptions{})}
	for _, n := range fresh {
		n.Restart(t, harness.NodeReadyTimeout)
	}
	harness.WaitStatus(t, sc, "three voters again", func(st wire.ClusterStatus) bool {
		voters := 0
		for _, m := range st.Members {
			if m.Suffrage == wire.SuffrageVoter && m.Status != nil && m.Status.AppliedIndex >= st.Members[0].Status.AppliedIndex {
				voters++
			}
		}
		return st.LeaderID != "" && len(st.Members) == 3 && voters >= 2
	})
	live := []*harness.Node{survivor, fresh[0], fresh[1]}
	for _, n := range live {
		nc := n.Client(t)
		for i := range keys {
			k := fmt.Sprintf("k%02d", i)
			harness.Eventually(t, n.ID+" has "+k, 20*time.Second, func() error {
				res := nc.Get(k, wire.ConsistencyStale)
				if res.Err != nil || res.Status != http.StatusOK || string(res.Body) != fmt.Sprintf("v%d", i) {
					return fmt.Errorf("%s: %v %d %q", k, res.Err, res.Status, res.Body)
				}
				return nil
			})
		}
	}

	endpoints := make([]string, len(live))
	for i, n := range live {
		endpoints[i] = n.URL
	}
	h, err := lincheck.Run(context.Background(), lincheck.Config{
		Endpoints: endpoints, Token: cl.Token, Clients: 6, Keys: 6,
		Duration: 4 * time.Second, Seed: time.Now().UnixNano(), RequestTimeout: 3 * time.Second,
		Consistency: "linearizable",
		Client:      &http.Client{Transport: &http.Transport{Proxy: nil, MaxIdleConnsPerHost: 16}},
	})
	if err != nil {
		t.Fatalf("recording: %v (%d operations)", err, len(h))
	}
	t.Logf("history after recovery: %+v", h.Stats())
	lincheck.Verify(t, h, time.Minute)
}
