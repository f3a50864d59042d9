package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// selfStatus is the part of GET /api/v1/cluster that names the answering
// node's own state and term.
type selfStatus struct {
	Self struct {
		ID    string `json:"id"`
		State string `json:"state"`
		Term  uint64 `json:"term"`
	} `json:"self"`
	LeaderID string `json:"leader_id"`
}

func getSelfStatus(c *kvClient) (selfStatus, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.baseURL+"/api/v1/cluster", nil)
	if err != nil {
		return selfStatus{}, err
	}
	req.Header.Set("Authorization", "Bearer "+c.token)
	resp, err := c.hc.Do(req)
	if err != nil {
		return selfStatus{}, err
	}
	defer resp.Body.Close()
	var st selfStatus
	if resp.StatusCode != http.StatusOK {
		return st, fmt.Errorf("GET /api/v1/cluster: %s", resp.Status)
	}
	return st, json.NewDecoder(resp.Body).Decode(&st)
}

// handOffLine is the log line a leader writes once it has handed its
// leadership to another voter and heard from it as the new leader.
type handOffLine struct {
	Msg  string `json:"msg"`
	To   string `json:"to"`
	Term uint64 `json:"term"`
}

func findHandOff(output string) (handOffLine, bool) {
	sc := bufio.NewScanner(strings.NewReader(output))
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for sc.Scan() {
		var l handOffLine
		if json.Unmarshal(sc.Bytes(), &l) == nil && l.Msg == "leadership transferred" {
			return l, true
		}
	}
	return handOffLine{}, false
}

// TestClusterLeaderHandOffOnSIGTERM sends SIGTERM to the leader of a
// three-process cluster while four clients keep writing through the two
// other nodes. The leader must hand its leadership to another voter before
// it stops: its log names the new leader and term, the new leader still
// leads in exactly that term (old term + 1: one election, won at once, no
// timeout in between), and not one write through the other nodes fails.
func TestClusterLeaderHandOffOnSIGTERM(t *testing.T) {
	bin := buildServer(t)
	token := newToken(t)
	nodes := startCluster(t, bin, token, 3)
	leader := leaderNode(t, nodes, token)
	var others []*clusterNode
	for _, n := range nodes {
		if n != leader {
			others = append(others, n)
		}
	}
	before, err := getSelfStatus(newKVClient(t, leader.p))
	if err != nil || before.Self.State != "Leader" {
		t.Fatalf("%s status before SIGTERM: %+v, %v", leader.id, before, err)
	}

	var (
		acked  atomic.Int64
		mu     sync.Mutex
		failed []string
		stop   = make(chan struct{})
		wg     sync.WaitGroup
	)
	for w := range 4 {
		c := newKVClient(t, others[w%len(others)].p)
		wg.Go(func() {
			for seq := 0; ; seq++ {
				select {
				case <-stop:
					return
				default:
				}
				res, err := c.put(fmt.Sprintf("handoff/w%d/%06d", w, seq), []byte("v"))
				if err != nil || (res.status != http.StatusOK && res.status != http.StatusCreated) {
					mu.Lock()
					failed = append(failed, fmt.Sprintf("PUT through %s: status %d %s, err %v", others[w%len(others)].id, res.status, res.body, err))
					mu.Unlock()
				} else {
					acked.Add(1)
				}
			}
		})
	}
	waitAcked := func(n int64) {
		t.Helper()
		deadline := time.Now().Add(30 * time.Second)
		for acked.Load() < n {
			if time.Now().After(deadline) {
				close(stop)
				wg.Wait()
				t.Fatalf("fewer than %d acknowledged writes after 30s (%d)", n, acked.Load())
			}
			<-time.After(10 * time.Millisecond)
		}
	}
	waitAcked(200)
	leader.p.terminate(t) // SIGTERM, and wait for exit status 0
	waitAcked(acked.Load() + 200)
	close(stop)
	wg.Wait()

	line, ok := findHandOff(leader.p.output.String())
	if !ok {
		leader.p.outputShown = true
		t.Fatalf("%s stopped without logging a leadership hand-off; output (tail):\n%s", leader.id, leader.p.outputTail())
	}
	var to *clusterNode
	for _, n := range others {
		if n.id == line.To {
			to = n
		}
	}
	if to == nil {
		t.Fatalf("%s handed off to %q, not one of the other nodes", leader.id, line.To)
	}
	if want := before.Self.Term + 1; line.Term != want {
		t.Errorf("hand-off logged term %d, want %d (the old leader's term %d + 1)", line.Term, want, before.Self.Term)
	}
	after, err := getSelfStatus(newKVClient(t, to.p))
	if err != nil {
		t.Fatalf("%s status: %v", to.id, err)
	}
	if after.Self.State != "Leader" || after.LeaderID != to.id || after.Self.Term != line.Term {
		t.Errorf("%s after the hand-off: state %s, leader %q, term %d; want Leader, %q, term %d (no election since)",
			to.id, after.Self.State, after.LeaderID, after.Self.Term, to.id, line.Term)
	}
	mu.Lock()
	defer mu.Unlock()
	t.Logf("hand-off %s -> %s in term %d; %d writes acknowledged, %d failed", leader.id, to.id, line.Term, acked.Load(), len(failed))
	reportProblems(t, "writes through the other nodes during the hand-off", failed)
}
