package store

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// TestCommitterGroupsConcurrentWriters checks that concurrent proposals are
// all applied exactly once, with distinct revisions, and that they share
// transactions (fewer commits than writes).
func TestCommitterGroupsConcurrentWriters(t *testing.T) {
	var mu sync.Mutex
	commits := 0
	s, err := Open(t.TempDir()+"/kv.db", Options{OnFlush: func(FlushStats) { mu.Lock(); commits++; mu.Unlock() }})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	c := mustCommitter(t, s, nil, CommitterOptions{})

	const writers, each = 32, 50
	revs := make(chan uint64, writers*each)
	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			for i := range each {
				r := propose(t, c, put(fmt.Sprintf("w%d/%d", w, i), "v"))
				if r.Err != nil || !r.Created {
					t.Errorf("result %+v", r)
				}
				revs <- r.KV.ModRevision
			}
		})
	}
	wg.Wait()
	close(revs)
	seen := map[uint64]bool{}
	for r := range revs {
		if seen[r] {
			t.Errorf("revision %d acknowledged twice", r)
		}
		seen[r] = true
	}
	if st := s.Status(); st.Keys != writers*each || st.Revision != writers*each || st.AppliedIndex != writers*each {
		t.Errorf("status %+v, want %d keys, revision and applied index", st, writers*each)
	}
	mu.Lock()
	defer mu.Unlock()
	if commits >= writers*each {
		t.Errorf("%d commits for %d writes: no group commit", commits, writers*each)
	}
	t.Logf("%d writes in %d commits", writers*each, commits)
}

func TestCommitterAfterClose(t *testing.T) {
	s := mustOpenStore(t)
	c := mustCommitter(t, s, nil, CommitterOptions{})
	propose(t, c, put("a", "1"))
	c.Close()
	if _, err := c.Propose(context.Background(), put("b", "1")); !errors.Is(err, ErrClosed) {
		t.Errorf("Propose after Close: err = %v, want ErrClosed", err)
	}
}

// TestCommitterStampsNow: the committer's clock decides expiry, whatever
// Now the proposer set.
func TestCommitterStampsNow(t *testing.T) {
	s := mustOpenStore(t)
	c := mustCommitter(t, s, nil, CommitterOptions{Clock: func() time.Time { return t0 }})
	cmd := put("a", "1")
	cmd.Now = t0.Add(-time.Hour).UnixNano()         // a proposer's clock, replaced
	cmd.ExpiresAt = t0.Add(-time.Second).UnixNano() // already expired at the committer's clock
	propose(t, c, cmd)
	cmd.IfAbsent = true
	cmd.ExpiresAt = 0
	if r := propose(t, c, cmd); r.Err != nil || !r.Created {
		t.Errorf("create-only over a key expired at the committer's clock: %+v", r)
	}
}

func TestSweeperExpiresThroughProposer(t *testing.T) {
	s := mustOpenStore(t)
	c := mustCommitter(t, s, nil, CommitterOptions{})
	for i := range 25 {
		cmd := put(fmt.Sprintf("t/%02d", i), "v")
		cmd.ExpiresAt = t0.Add(time.Duration(i) * time.Second).UnixNano()
		propose(t, c, cmd)
	}
	propose(t, c, put("forever", "v"))
	_, sub, _ := s.Subscribe("", 0, false)
	defer sub.Close()

	w := &Sweeper{Store: s, Proposer: c}
	n, err := w.SweepOnce(context.Background(), t0.Add(9*time.Second), 4)
	if err != nil || n != 4 {
		t.Fatalf("SweepOnce = %d, %v; want 4", n, err)
	}
	n, err = w.SweepOnce(context.Background(), t0.Add(9*time.Second), 100)
	if err != nil || n != 6 {
		t.Fatalf("second SweepOnce = %d, %v; want the other 6 expired by then", n, err)
	}
	for i := range 10 {
		e := <-sub.Events()
		if want := fmt.Sprintf("t/%02d", i); e.Type != EventExpire || e.Key != want {
			t.Errorf("event %d = %s %q, want expire %q", i, e.Type, e.Key, want)
		}
	}
	if st := s.Status(); st.Keys != 16 || st.ExpiredTotal != 10 {
		t.Errorf("status %+v, want 16 keys and 10 expired", st)
	}
}

type proposerFunc func(ctx context.Context, cmds ...Command) ([]Result, error)

func (f proposerFunc) Propose(ctx context.Context, cmds ...Command) ([]Result, error) {
	return f(ctx, cmds...)
}

// TestSweeperOnlyWhenActive: in a cluster only the leader's sweeper
// proposes expiries; the others ask Active and skip.
func TestSweeperOnlyWhenActive(t *testing.T) {
	s := mustOpenStore(t)
	c := mustCommitter(t, s, nil, CommitterOptions{})
	cmd := put("t/x", "v")
	cmd.ExpiresAt = t0.UnixNano()
	propose(t, c, cmd)

	var active atomic.Bool
	asked := make(chan struct{}, 1)
	proposed := make(chan struct{}, 1)
	w := &Sweeper{
		Store: s, Interval: time.Millisecond, Clock: func() time.Time { return t0.Add(time.Hour) },
		Proposer: proposerFunc(func(ctx context.Context, cmds ...Command) ([]Result, error) {
			select {
			case proposed <- struct{}{}:
			default:
			}
			return c.Propose(ctx, cmds...)
		}),
		Active: func() bool {
			select {
			case asked <- struct{}{}:
			default:
			}
			return active.Load()
		},
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { w.Run(ctx); close(done) }()
	defer func() { cancel(); <-done }()
	for range 5 {
		<-asked
	}
	select {
	case <-proposed:
		t.Fatal("an inactive sweeper (a follower's) proposed an expiry")
	default:
	}
	active.Store(true)
	<-proposed // the leader's sweeper does propose
}
