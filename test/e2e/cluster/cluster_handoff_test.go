package cluster

import (
	"bufio"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"kvstore.dev/kvstore/test/harness"
	"kvstore.dev/kvstore/wire"
)

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
	cl := harness.StartCluster(t, harness.ClusterOptions{Size: 3})
	leader := cl.Leader(t)
	others := cl.Others(leader)
	before, err := leader.Client(t).ClusterStatus()
	if err != nil || before.Self.State != wire.StateLeader {
		t.Fatalf("%s status before SIGTERM: %+v, %v", leader.ID, before, err)
	}

	var (
		acked  atomic.Int64
		mu     sync.Mutex
		failed []string
		stop   = make(chan struct{})
		wg     sync.WaitGroup
	)
	for w := range 4 {
		c := others[w%len(others)].Client(t)
		wg.Go(func() {
			for seq := 0; ; seq++ {
				select {
				case <-stop:
					return
				default:
				}
				res := c.Put(fmt.Sprintf("handoff/w%d/%06d", w, seq), []byte("v"))
				if res.Err != nil || (res.Status != http.StatusOK && res.Status != http.StatusCreated) {
					mu.Lock()
					failed = append(failed, fmt.Sprintf("PUT through %s: status %d %s, err %v", others[w%len(others)].ID, res.Status, res.Body, res.Err))
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
	leader.Terminate(t) // SIGTERM, and wait for exit status 0
	waitAcked(acked.Load() + 200)
	close(stop)
	wg.Wait()

	line, ok := findHandOff(leader.Output())
	if !ok {
		leader.Fatalf(t, "%s stopped without logging a leadership hand-off", leader.ID)
	}
	to := cl.Node(line.To)
	if to == nil || to == leader {
		t.Fatalf("%s handed off to %q, not one of the other nodes", leader.ID, line.To)
	}
	if want := before.Self.Term + 1; line.Term != want {
		t.Errorf("hand-off logged term %d, want %d (the old leader's term %d + 1)", line.Term, want, before.Self.Term)
	}
	after, err := to.Client(t).ClusterStatus()
	if err != nil {
		t.Fatalf("%s status: %v", to.ID, err)
	}
	if after.Self.State != wire.StateLeader || after.LeaderID != to.ID || after.Self.Term != line.Term {
		t.Errorf("%s after the hand-off: state %s, leader %q, term %d; want Leader, %q, term %d (no election since)",
			to.ID, after.Self.State, after.LeaderID, after.Self.Term, to.ID, line.Term)
	}
	mu.Lock()
	defer mu.Unlock()
	t.Logf("hand-off %s -> %s in term %d; %d writes acknowledged, %d failed", leader.ID, to.ID, line.Term, acked.Load(), len(failed))
	harness.ReportProblems(t, "writes through the other nodes during the hand-off", failed)
}
