package main

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

func (c *kvClient) admin(method, path string, body string) (int, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, c.baseURL+path, bytes.NewBufferString(body))
	if err != nil {
		return 0, err
	}
	req.Header.Set("Authorization", "Bearer "+c.token)
	req.Header.Set("Content-Type", "application/json")
	resp, err := c.hc.Do(req)
	if err != nil {
		return 0, err
	}
	resp.Body.Close()
	return resp.StatusCode, nil
}

func waitStatus(t *testing.T, c *kvClient, what string, ok func(clusterStatus) bool) clusterStatus {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	var st clusterStatus
	var err error
	for time.Now().Before(deadline) {
		if st, err = getClusterStatus(c); err == nil && ok(st) {
			return st
		}
		<-time.After(50 * time.Millisecond)
	}
	t.Fatalf("%s: last status %+v (%v)", what, st, err)
	return st
}

// TestClusterMembershipUnderLoad adds a fourth node as a non-voter,
// promotes it, removes another member, and restarts the removed member with
// its old state, all while clients write: the removed node is re-admitted
// as a non-voter without a change of leader, and no acknowledged write is
// lost.
func TestClusterMembershipUnderLoad(t *testing.T) {
	bin := buildServer(t)
	token := newToken(t)
	nodes := startCluster(t, bin, token, 3)
	n0 := newKVClient(t, nodes[0].p)

	var (
		mu    sync.Mutex
		acked = map[string]string{}
		stop  = make(chan struct{})
		wg    sync.WaitGroup
	)
	writers := []*kvClient{n0, newKVClient(t, nodes[2].p)}
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
				if res, err := c.put(k, []byte(v)); err == nil && res.status < 300 {
					mu.Lock()
					acked[k] = v
					mu.Unlock()
				}
			}
		}()
	}

	// A fourth node joins as a non-voter and is promoted.
	n3 := &clusterNode{id: "n3", api: freeAddr(t), peer: freeAddr(t), dir: filepath.Join(t.TempDir(), "data")}
	n3.p = launchServerWith(t, bin, n3.dir, token, n3.api, []string{
		"--node-id", "n3", "--peer-listen", n3.peer, "--peer-advertise", n3.peer, "--bootstrap-node", "n0",
		"--join", nodes[1].peer, "--join-as", "nonvoter",
	}, []string{"KVSTORE_PEER_TOKEN=" + peerToken})
	if err := n3.p.waitReady(30 * time.Second); err != nil {
		t.Fatalf("n3: %v\n%s", err, n3.p.outputTail())
	}
	suffrage := func(st clusterStatus, id string) string {
		for _, m := range st.Members {
			if m.ID == id {
				return m.Suffrage
			}
		}
		return ""
	}
	waitStatus(t, n0, "n3 joins as a non-voter", func(st clusterStatus) bool { return suffrage(st, "n3") == "Nonvoter" })
	if code, err := n0.admin("POST", "/api/v1/cluster/members", fmt.Sprintf(`{"id":"n3","address":%q,"voter":true}`, n3.peer)); err != nil || code != 200 {
		t.Fatalf("promote n3: %d %v", code, err)
	}
	waitStatus(t, n0, "n3 promoted", func(st clusterStatus) bool { return suffrage(st, "n3") == "Voter" && len(st.Members) == 4 })

	// n1 is removed while it runs, then comes back with its old state.
	if code, err := n0.admin("DELETE", "/api/v1/cluster/members/n1", ""); err != nil || code != 200 {
		t.Fatalf("remove n1: %d %v", code, err)
	}
	waitStatus(t, n0, "n1 removed", func(st clusterStatus) bool { return suffrage(st, "n1") == "" && len(st.Members) == 3 })
	if code, _ := n0.admin("DELETE", "/api/v1/cluster/members/n1", ""); code != 404 && code != 500 && code != 400 {
		t.Logf("removing n1 again: %d", code)
	}
	nodes[1].p.kill(t)
	leaderBefore := waitStatus(t, n0, "a leader", func(st clusterStatus) bool { return st.LeaderID != "" }).LeaderID
	nodes[1].p = launchServerWith(t, bin, nodes[1].dir, token, nodes[1].api, []string{
		"--node-id", "n1", "--peer-listen", nodes[1].peer, "--peer-advertise", nodes[1].peer, "--bootstrap-node", "n0",
		"--join", nodes[0].peer, "--join-as", "nonvoter",
	}, []string{"KVSTORE_PEER_TOKEN=" + peerToken})
	// The removed node asks to be re-admitted, as a non-voter; it comes
	// back without disturbing the leader.
	st := waitStatus(t, n0, "n1 re-admitted as a non-voter", func(st clusterStatus) bool { return suffrage(st, "n1") == "Nonvoter" })
	if st.LeaderID != leaderBefore {
		t.Errorf("the leader changed from %s to %s while the removed node came back", leaderBefore, st.LeaderID)
	}

	// The writers go on until enough writes spanned the changes.
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); <-time.After(50 * time.Millisecond) {
		mu.Lock()
		n := len(acked)
		mu.Unlock()
		if n >= 50 {
			break
		}
	}
	close(stop)
	wg.Wait()
	mu.Lock()
	defer mu.Unlock()
	if len(acked) < 50 {
		t.Fatalf("only %d writes acknowledged", len(acked))
	}
	for _, c := range []*kvClient{n0, newKVClient(t, n3.p)} {
		for k, v := range acked {
			res, err := c.getConsistent(k, "linearizable")
			if err != nil || res.status != 200 || string(res.body) != v {
				t.Fatalf("%s: acknowledged %s=%s reads %d %q %v", c.baseURL, k, v, res.status, res.body, err)
			}
		}
	}
	t.Logf("%d writes acknowledged during the membership changes", len(acked))
}
