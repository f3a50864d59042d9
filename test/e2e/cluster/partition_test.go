package cluster

import (
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"kvstore.dev/kvstore/test/harness"
	"kvstore.dev/kvstore/wire"
)

// ledger records what the cluster answered to writes: acknowledged writes
// must survive, refused ones (503 no_quorum: not applied) must not appear,
// and writes whose outcome is unknown (504, or no answer) are not judged.
type ledger struct {
	mu      sync.Mutex
	acked   map[string]string
	refused []string
	unknown []string
}

func (l *ledger) record(key, value string, r harness.Reply) {
	l.mu.Lock()
	defer l.mu.Unlock()
	switch {
	case r.OK():
		l.acked[key] = value
	case r.Status == 503 && r.Code() == wire.CodeNoQuorum:
		l.refused = append(l.refused, key)
	default:
		l.unknown = append(l.unknown, key)
	}
}

// TestPartitionLeaderCutOff cuts the Raft leader of a three-container
// cluster off the peer network with `docker network disconnect`: the
// isolated node must refuse writes and linearizable reads, the other two
// must elect a leader and keep taking writes, and once the network is
// connected again the old leader must rejoin and every acknowledged write
// must read back linearizably on all three nodes.
func TestPartitionLeaderCutOff(t *testing.T) {
	harness.RequireDocker(t, "Docker partition test")
	harness.BuildImages(t)
	begin := time.Now()
	c := startCluster(t, 3)
	run := randHex(3)
	led := &ledger{acked: map[string]string{}}

	st, err := c.status(c.nodes[0])
	if err != nil {
		t.Fatal(err)
	}
	iso := c.byID(st.LeaderID)
	if iso == nil {
		t.Fatalf("leader %q is not one of the nodes", st.LeaderID)
	}
	var majority []*node
	for _, n := range c.nodes {
		if n != iso {
			majority = append(majority, n)
		}
	}

	// A: writes through every node (followers forward to the leader), all
	// acknowledged by a healthy cluster.
	for i := range 30 {
		key, value := fmt.Sprintf("part/a/%02d", i), fmt.Sprintf("a-%s-%d", run, i)
		r := c.put(c.nodes[i%3], key, value, 10*time.Second)
		if !r.OK() {
			t.Fatalf("PUT %s through %s on a healthy cluster: %v %s", key, c.nodes[i%3].id, r, r.Body)
		}
		led.record(key, value, r)
	}
	probeKey, probeValue := "part/a/00", fmt.Sprintf("a-%s-0", run)

	// Partition: the leader loses the peer network; the test still reaches
	// it over the client network.
	t.Logf("cutting off the leader %s (%s) from %s", iso.id, iso.container, c.peerNet)
	cut := time.Now()
	mustDocker(t, "network", "disconnect", c.peerNet, iso.container)

	var probes sync.WaitGroup
	probes.Go(func() { probeMinority(t, c, iso, led, run, cut, probeKey, probeValue) })
	for _, n := range majority {
		probes.Go(func() { probeInFlight(t, c, n, probeKey, probeValue) })
	}

	// Majority: from the cut on, a write every 200ms through the two
	// remaining nodes in turn until one is acknowledged: the failover time
	// is the earliest acknowledgement. Every attempt is a new key (one that
	// ends in 504 or no answer stays unknown) and must be answered within
	// the bound like any request sent at the cut.
	var (
		mu       sync.Mutex
		attempts []string
		failover time.Duration
		sent     sync.WaitGroup
		once     sync.Once
	)
	acked := make(chan struct{})
	pace := time.NewTicker(200 * time.Millisecond) // pacing between attempts
	for i := 0; time.Since(cut) < 20*time.Second; i++ {
		n := majority[i%2]
		key, value := fmt.Sprintf("part/b/failover-%02d", i), "failover-"+run
		sent.Go(func() {
			r := c.put(n, key, value, answerBound+5*time.Second)
			at := time.Since(cut)
			led.record(key, value, r)
			checkAnswered(t, "PUT "+key+" through "+n.id+" during the failover", r, writeAnswer)
			mu.Lock()
			defer mu.Unlock()
			attempts = append(attempts, fmt.Sprintf("%s via %s: %v (answered %s after the cut)", key, n.id, r, at.Round(time.Millisecond)))
			if r.OK() && (failover == 0 || at < failover) {
				failover = at
			}
			if r.OK() {
				once.Do(func() { close(acked) })
			}
		})
		select {
		case <-acked:
		case <-pace.C:
			continue
		}
		break
	}
	pace.Stop()
	sent.Wait()
	slices.Sort(attempts)
	t.Logf("failover write attempts:\n\t%s", strings.Join(attempts, "\n\t"))
	if failover == 0 {
		probes.Wait()
		t.Fatalf("the majority acknowledged no write within 20s of the cut")
	}
	t.Logf("FAILOVER: first acknowledged write on the majority %s after the cut (%d attempts)", failover.Round(time.Millisecond), len(attempts))
	if failover > 10*time.Second {
		t.Errorf("failover took %s, want a new leader serving writes within 10s", failover)
	}
	var newLeader string
	harness.Eventually(t, "the majority agrees on a new leader", 10*time.Second, func() error {
		ids := map[string]bool{}
		for _, n := range majority {
			st, err := c.status(n)
			if err != nil {
				return err
			}
			ids[st.LeaderID] = true
			newLeader = st.LeaderID
		}
		if len(ids) != 1 || newLeader == iso.id || newLeader == "" {
			return fmt.Errorf("leaders %v", ids)
		}
		return nil
	})
	t.Logf("new leader: %s", newLeader)

	// B: the majority keeps serving, through the leader and the follower.
	for i := range 30 {
		n := majority[i%2]
		key, value := fmt.Sprintf("part/b/%02d", i), fmt.Sprintf("b-%s-%d", run, i)
		r := c.put(n, key, value, 10*time.Second)
		led.record(key, value, r)
		if !r.OK() {
			t.Errorf("PUT %s through %s on the majority: %v %s", key, n.id, r, r.Body)
		}
	}
	for _, n := range majority {
		if r := c.get(n, probeKey, "linearizable", 10*time.Second); !r.OK() || string(r.Body) != probeValue {
			t.Errorf("linearizable GET %s on %s during the partition: %v %q", probeKey, n.id, r, r.Body)
		}
	}
	probes.Wait()

	// Heal: the old leader must rejoin as a follower of the new leader.
	healed := time.Now()
	mustDocker(t, "network", "connect", "--alias", iso.id, c.peerNet, iso.container)
	rejoin := harness.Eventually(t, iso.id+" rejoins as a follower of "+newLeader, 30*time.Second, func() error {
		st, err := c.status(iso)
		if err != nil {
			return err
		}
		if st.Self.State != wire.StateFollower || st.LeaderID != newLeader {
			return fmt.Errorf("%s is %s, leader %q", iso.id, st.Self.State, st.LeaderID)
		}
		if code, err := c.readyz(iso); code != 200 {
			return fmt.Errorf("/readyz %d %v", code, err)
		}
		lst, err := c.status(c.byID(newLeader))
		if err != nil {
			return err
		}
		for _, m := range lst.Members {
			if m.ID == iso.id && (m.Status == nil || m.Status.AppliedIndex < lst.Self.CommitIndex) {
				return fmt.Errorf("leader sees %s: %+v %s", iso.id, m.Status, m.Error)
			}
		}
		return nil
	})
	t.Logf("HEAL: %s rejoined and caught up %s after the network came back (partition lasted %s)",
		iso.id, rejoin.Round(time.Millisecond), healed.Sub(cut).Round(time.Millisecond))
	key, value := "part/c/after-heal", "c-"+run
	r := c.put(iso, key, value, 10*time.Second)
	led.record(key, value, r)
	if !r.OK() {
		t.Errorf("PUT %s through the healed %s: %v %s", key, iso.id, r, r.Body)
	}

	// Convergence: every acknowledged write, linearizably, on every node;
	// no refused write anywhere.
	keys := make([]string, 0, len(led.acked))
	for k := range led.acked {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, n := range c.nodes {
		var lost []string
		for _, k := range keys {
			if r := c.get(n, k, "linearizable", 10*time.Second); !r.OK() || string(r.Body) != led.acked[k] {
				lost = append(lost, fmt.Sprintf("%s: %v %q, want %q", k, r, r.Body, led.acked[k]))
			}
		}
		if len(lost) > 0 {
			t.Errorf("LOST acknowledged writes on %s (%d of %d):\n\t%s", n.id, len(lost), len(keys), strings.Join(lost, "\n\t"))
		}
		for _, k := range led.refused {
			if r := c.get(n, k, "linearizable", 10*time.Second); r.Status != 404 {
				t.Errorf("write %s was refused with 503 no_quorum, yet %s answers %v %q", k, n.id, r, r.Body)
			}
		}
	}
	t.Logf("checked %d acknowledged writes on %d nodes; %d refused writes absent; %d writes of unknown outcome not judged %v",
		len(keys), len(c.nodes), len(led.refused), len(led.unknown), led.unknown)
	t.Logf("cluster test took %s (without the image build)", time.Since(begin).Round(time.Millisecond))
}

// answerBound is how long any request may wait for an answer: the
// server's apply timeout (10s, the longest it waits for a leader or the
// log) plus slack. A client without a deadline must not hang for as long as
// a partition lasts.
const answerBound = 15 * time.Second

// Answers allowed for a write and for a linearizable read that need the
// leader while it may be gone: acknowledged, refused before reaching any
// log, or (writes) of unknown outcome.
var (
	writeAnswer = map[string]bool{"2xx": true, "503 no_quorum": true, "504 outcome_unknown": true}
	readAnswer  = map[string]bool{"2xx": true, "503 no_quorum": true}
)

// checkAnswered reports a request that got no answer within answerBound or
// an answer outside allowed.
func checkAnswered(t *testing.T, what string, r harness.Reply, allowed map[string]bool) {
	got := fmt.Sprintf("%d %s", r.Status, r.Code())
	if r.OK() {
		got = "2xx"
	}
	if r.Err != nil || r.Took > answerBound || !allowed[got] {
		t.Errorf("%s: %v %.200s; want one of %v within %s", what, r, r.Body, slices.Sorted(maps.Keys(allowed)), answerBound)
	}
}

// probeInFlight sends linearizable reads through a majority node at the
// moment of the cut, when that node may still take the cut-off node for
// the leader: each must be served (with the acknowledged value) or refused
// with 503 no_quorum within answerBound.
func probeInFlight(t *testing.T, c *testCluster, n *node, probeKey, probeValue string) {
	var wg sync.WaitGroup
	for range 2 {
		wg.Go(func() {
			r := c.get(n, probeKey, "linearizable", answerBound+5*time.Second)
			t.Logf("majority: linearizable GET %s through %s at the cut: %v", probeKey, n.id, r)
			checkAnswered(t, "linearizable GET "+probeKey+" through "+n.id+" at the cut", r, readAnswer)
			if r.OK() && string(r.Body) != probeValue {
				t.Errorf("linearizable GET %s through %s: %q, want %q", probeKey, n.id, r.Body, probeValue)
			}
		})
	}
	wg.Wait()
}

// probeMinority checks the isolated node while the majority is being
// checked: it runs in its own goroutine, so it reports with t.Errorf.
func probeMinority(t *testing.T, c *testCluster, iso *node, led *ledger, run string, cut time.Time, probeKey, probeValue string) {
	// A write right after the cut may still reach the old leader's log
	// (504 outcome_unknown once it steps down) or be refused (503); it must
	// never be acknowledged.
	key := "part/minority/early"
	r := c.put(iso, key, "m-"+run, answerBound+5*time.Second)
	led.record(key, "m-"+run, r)
	t.Logf("minority: PUT %s right after the cut: %v", key, r)
	if r.OK() {
		t.Errorf("minority: the isolated %s ACKNOWLEDGED PUT %s: %v %s", iso.id, key, r, r.Body)
	}
	checkAnswered(t, "minority: PUT "+key+" on the isolated "+iso.id, r, writeAnswer)

	stepDown, err := harness.Poll(15*time.Second, func() error {
		st, err := c.status(iso)
		if err != nil {
			return err
		}
		if code, _ := c.readyz(iso); st.Self.State == wire.StateLeader || st.LeaderID != "" || code != 503 {
			return fmt.Errorf("state %s, leader %q, /readyz %d", st.Self.State, st.LeaderID, code)
		}
		return nil
	})
	if err != nil {
		t.Errorf("minority: %s still believes in a leader 15s after the cut: %v", iso.id, err)
		return
	}
	t.Logf("minority: %s stepped down, knows no leader and is not ready %s after the cut (%s)",
		iso.id, time.Since(cut).Round(time.Millisecond), stepDown.Round(time.Millisecond))

	// Once it knows no leader, a write is not in any log: 503 no_quorum
	// with Retry-After, within answerBound. Reads that
	// need the leader fail the same way; a stale read is served locally.
	var wg sync.WaitGroup
	wg.Go(func() {
		key := "part/minority/late"
		r := c.put(iso, key, "m-"+run, answerBound+5*time.Second)
		led.record(key, "m-"+run, r)
		t.Logf("minority: PUT %s: %v", key, r)
		checkAnswered(t, "minority: PUT "+key+" on "+iso.id, r, map[string]bool{"503 no_quorum": true})
		if r.Status == 503 && r.Header.Get("Retry-After") == "" {
			t.Errorf("minority: PUT %s on %s: 503 without Retry-After", key, iso.id)
		}
	})
	for _, level := range []string{"linearizable", "leader"} {
		wg.Go(func() {
			r := c.get(iso, probeKey, level, answerBound+5*time.Second)
			t.Logf("minority: GET %s?consistency=%s: %v", probeKey, level, r)
			checkAnswered(t, "minority: "+level+" GET on "+iso.id, r, map[string]bool{"503 no_quorum": true})
		})
	}
	wg.Go(func() {
		r := c.get(iso, probeKey, "stale", 5*time.Second)
		t.Logf("minority: GET %s?consistency=stale: %v, X-KV-Last-Contact %q", probeKey, r, r.Header.Get("X-KV-Last-Contact"))
		if !r.OK() || string(r.Body) != probeValue || r.Header.Get("X-KV-Last-Contact") == "" {
			t.Errorf("minority: stale GET on %s: %v %q, want 200 %q with X-KV-Last-Contact", iso.id, r, r.Body, probeValue)
		}
	})
	wg.Wait()
}
