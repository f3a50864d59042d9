package cluster

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"kvstore.dev/kvstore/test/harness"
	"kvstore.dev/kvstore/wire"
)

// TestRecoverThroughAPI is the operator's path of issue 14: the recover
// call is refused on a healthy cluster; two of three servers are lost for
// good (kill -9, data deleted); POST /api/v1/cluster/recover on the
// survivor makes it exit non-zero; started again with its usual flags (as
// the kubelet restarts a container) it is the leader of a one-server
// cluster with every key, takes writes, refuses the same request again,
// and two fresh servers join it.
func TestRecoverThroughAPI(t *testing.T) {
	cl := harness.StartCluster(t, harness.ClusterOptions{Size: 3})
	survivor := cl.Nodes[0]
	sc := survivor.Client(t)
	const keys = 30
	for i := range keys {
		if res := sc.Put(fmt.Sprintf("k%02d", i), []byte(fmt.Sprintf("v%d", i))); !res.OK() {
			t.Fatalf("put: %v", res)
		}
	}
	recoverCall := func(c *harness.Client, node, id string) harness.Reply {
		body, _ := json.Marshal(wire.RecoverRequest{NodeID: node, RequestID: id})
		return c.Do(http.MethodPost, wire.PathRecover, body, "Content-Type", "application/json")
	}

	// Never on a healthy cluster, never for another server.
	for name, tc := range map[string]struct {
		node string
		code string
	}{
		"healthy":       {survivor.ID, wire.CodeRecoveryRefused},
		"another node":  {cl.Nodes[1].ID, wire.CodeRecoveryRefused},
		"no node given": {"", wire.CodeInvalidArgument},
	} {
		if res := recoverCall(sc, tc.node, "req-"+name); res.Code() != tc.code {
			t.Errorf("%s: recover = %v %s, want %s", name, res, res.Body, tc.code)
		}
	}
	if survivor.Exited() {
		t.Fatal("a refused recovery stopped the server")
	}

	for _, n := range cl.Nodes[1:] {
		n.Kill(t)
		if err := os.RemoveAll(n.DataDir); err != nil {
			t.Fatal(err)
		}
	}
	harness.WaitStatus(t, sc, "the survivor sees no leader", func(st wire.ClusterStatus) bool { return st.LeaderID == "" })

	res := recoverCall(sc, survivor.ID, "req-1")
	if res.Status != http.StatusAccepted {
		t.Fatalf("recover = %v %s, want 202", res, res.Body)
	}
	var accepted wire.RecoverResponse
	if err := json.Unmarshal(res.Body, &accepted); err != nil || accepted.NodeID != survivor.ID || accepted.RequestID != "req-1" || accepted.LastLogIndex == 0 {
		t.Fatalf("recover answered %s (%v)", res.Body, err)
	}
	select {
	case <-survivor.Done():
	case <-time.After(30 * time.Second):
		survivor.Fatalf(t, "the survivor did not exit after accepting the recovery")
	}
	if survivor.WaitErr() == nil {
		t.Error("the survivor exited 0 after accepting a recovery; want non-zero so that it is restarted")
	}
	if _, err := os.Stat(filepath.Join(survivor.DataDir, "recover-request.json")); err != nil {
		t.Errorf("no recovery request in the data dir: %v", err)
	}

	survivor.Restart(t, harness.NodeReadyTimeout)
	sc = survivor.Client(t)
	harness.WaitStatus(t, sc, "the survivor leads alone", func(st wire.ClusterStatus) bool {
		return st.LeaderID == survivor.ID && len(st.Members) == 1
	})
	if out := survivor.Output(); !strings.Contains(out, "RECOVERED") || !strings.Contains(out, "req-1") {
		t.Errorf("the survivor's log does not say what it recovered:\n%s", out)
	}
	var done struct {
		RequestID    string `json:"request_id"`
		Finished     bool   `json:"finished"`
		LastLogIndex uint64 `json:"last_log_index"`
		Error        string `json:"error"`
	}
	b, err := os.ReadFile(filepath.Join(survivor.DataDir, "recover-done.json"))
	if err == nil {
		err = json.Unmarshal(b, &done)
	}
	if err != nil || done.RequestID != "req-1" || !done.Finished || done.Error != "" || done.LastLogIndex < accepted.LastLogIndex {
		t.Errorf("recover-done.json: %s (%v), want req-1 finished without error at index >= %d", b, err, accepted.LastLogIndex)
	}
	if _, err := os.Stat(filepath.Join(survivor.DataDir, "recover-request.json")); !os.IsNotExist(err) {
		t.Errorf("the request is still pending after it was carried out: %v", err)
	}
	if res := sc.Put("after-recovery", []byte("y")); !res.OK() {
		t.Fatalf("put after recovery: %v %s", res, res.Body)
	}
	if res := recoverCall(sc, survivor.ID, "req-1"); res.Code() != wire.CodeRecoveryRefused {
		t.Errorf("the same request again = %v %s, want recovery_refused", res, res.Body)
	}

	fresh := []*harness.Node{cl.NewNode(t, "n3", survivor.Peer, harness.ProcessOptions{}), cl.NewNode(t, "n4", survivor.Peer, harness.ProcessOptions{})}
	for _, n := range fresh {
		n.Restart(t, harness.NodeReadyTimeout)
	}
	harness.WaitStatus(t, sc, "three voters again", func(st wire.ClusterStatus) bool {
		voters := 0
		for _, m := range st.Members {
			if m.Suffrage == wire.SuffrageVoter {
				voters++
			}
		}
		return st.LeaderID == survivor.ID && voters == 3
	})
	for _, n := range append(fresh, survivor) {
		nc := n.Client(t)
		for _, k := range []string{"k00", fmt.Sprintf("k%02d", keys-1), "after-recovery"} {
			harness.Eventually(t, n.ID+" has "+k, 20*time.Second, func() error {
				if res := nc.Get(k, wire.ConsistencyStale); res.Status != http.StatusOK {
					return fmt.Errorf("%s: %v", k, res)
				}
				return nil
			})
		}
	}
}
