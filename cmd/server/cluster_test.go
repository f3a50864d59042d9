package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

const peerToken = "cluster-peer-token-0123456789"

// clusterNode is one server process of a loopback cluster.
type clusterNode struct {
	id, api, peer, dir string
	p                  *serverProc
}

func (n *clusterNode) start(t *testing.T, bin, token string, bootstrap, join string) {
	t.Helper()
	n.p = launchServerWith(t, bin, n.dir, token, n.api, []string{
		"--node-id", n.id, "--peer-listen", n.peer, "--peer-advertise", n.peer,
		"--bootstrap-node", bootstrap, "--join", join,
	}, []string{"KVSTORE_PEER_TOKEN=" + peerToken})
	n.p.name = n.id
	if err := n.p.waitReady(30 * time.Second); err != nil {
		n.p.outputShown = true
		t.Fatalf("%s: %v\n%s", n.id, err, n.p.outputTail())
	}
}

// startCluster runs size server processes on loopback: n0 bootstraps, the
// others join it.
func startCluster(t *testing.T, bin, token string, size int) []*clusterNode {
	t.Helper()
	nodes := make([]*clusterNode, size)
	for i := range nodes {
		nodes[i] = &clusterNode{id: fmt.Sprintf("n%d", i), api: freeAddr(t), peer: freeAddr(t), dir: filepath.Join(t.TempDir(), "data")}
	}
	for _, n := range nodes {
		n.start(t, bin, token, "n0", nodes[0].peer)
	}
	return nodes
}

type clusterStatus struct {
	LeaderID string `json:"leader_id"`
	Members  []struct {
		ID       string `json:"id"`
		Suffrage string `json:"suffrage"`
	} `json:"members"`
}

func getClusterStatus(c *kvClient) (clusterStatus, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, c.baseURL+"/api/v1/cluster", nil)
	req.Header.Set("Authorization", "Bearer "+c.token)
	resp, err := c.hc.Do(req)
	if err != nil {
		return clusterStatus{}, err
	}
	defer resp.Body.Close()
	var st clusterStatus
	if resp.StatusCode != 200 {
		return st, fmt.Errorf("GET /api/v1/cluster: %s", resp.Status)
	}
	return st, json.NewDecoder(resp.Body).Decode(&st)
}

// TestClusterKillLeaderUnderLoad kills -9 the leader of a three-process
// cluster while eight clients write through every node: a new leader must
// take writes within 5 s, and after the old leader restarts every
// acknowledged write must be readable, linearizably, on every node.
func TestClusterKillLeaderUnderLoad(t *testing.T) {
	bin := buildServer(t)
	token := newToken(t)
	nodes := startCluster(t, bin, token, 3)
	clients := make([]*kvClient, len(nodes))
	for i, n := range nodes {
		clients[i] = newKVClient(t, n.p)
	}
	st, err := getClusterStatus(clients[1])
	if err != nil || len(st.Members) != 3 || st.LeaderID == "" {
		t.Fatalf("cluster status %+v, %v", st, err)
	}
	var leader *clusterNode
	for _, n := range nodes {
		if n.id == st.LeaderID {
			leader = n
		}
	}

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
				res, err := c.put(key, []byte(value))
				if err != nil || (res.status != 200 && res.status != 201) {
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
		deadline := time.Now().Add(20 * time.Second)
		for time.Now().Before(deadline) {
			mu.Lock()
			got := len(acked)
			mu.Unlock()
			if got >= n {
				return
			}
			<-time.After(10 * time.Millisecond)
		}
		t.Fatalf("fewer than %d acknowledged writes after 20s", n)
	}
	waitAcks(300)
	leader.p.kill(t)
	killedAt.Store(time.Now().UnixNano())
	mu.Lock()
	before := len(acked)
	mu.Unlock()
	waitAcks(before + 300)
	close(stop)
	wg.Wait()
	failover := time.Duration(firstAfter.Load() - killedAt.Load())
	t.Logf("kill -9 of leader %s: first acknowledged write %v later; %d acknowledged, %d failed or unknown", leader.id, failover.Round(time.Millisecond), len(acked), unknown.Load())
	if failover > 5*time.Second {
		t.Errorf("no write acknowledged within 5s of the leader's death (%v)", failover)
	}

	// The old leader comes back with its data and catches up.
	leader.start(t, bin, token, "n0", nodes[0].peer)
	clients = clients[:0]
	for _, n := range nodes {
		clients = append(clients, newKVClient(t, n.p))
	}
	for i, c := range clients {
		missing := 0
		for _, a := range acked {
			res, err := c.getConsistent(a.key, "linearizable")
			if err != nil || res.status != 200 || string(res.body) != a.value {
				if missing < 5 {
					t.Errorf("%s: acknowledged %s=%s reads %d %q (%v)", nodes[i].id, a.key, a.value, res.status, res.body, err)
				}
				missing++
			}
		}
		if missing > 0 {
			t.Errorf("%s: %d of %d acknowledged writes missing", nodes[i].id, missing, len(acked))
		}
	}
}

// getConsistent reads key with a consistency level.
func (c *kvClient) getConsistent(key, level string) (getResult, error) {
	ctx, cancel := context.WithTimeout(context.Background(), requestTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.keyURL(key)+"?consistency="+level, nil)
	if err != nil {
		return getResult{}, err
	}
	req.Header.Set("Authorization", "Bearer "+c.token)
	resp, err := c.hc.Do(req)
	if err != nil {
		return getResult{}, err
	}
	defer resp.Body.Close()
	var body []byte
	buf := make([]byte, 4096)
	for {
		n, err := resp.Body.Read(buf)
		body = append(body, buf[:n]...)
		if err != nil {
			break
		}
	}
	return getResult{status: resp.StatusCode, body: body}, nil
}
