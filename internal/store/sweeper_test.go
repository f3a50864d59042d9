package store

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// applyProposer is the simplest write path, for the sweeper's tests: it
// numbers and stamps the commands (with the wall clock, as the leader
// does) and applies them at once.
type applyProposer struct {
	s  *Store
	mu sync.Mutex
}

func (p *applyProposer) Propose(_ context.Context, cmds ...Command) ([]Result, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	entries := make([]Entry, len(cmds))
	now := time.Now().UnixNano()
	for i, c := range cmds {
		c.Now = now
		entries[i] = Entry{Index: p.s.AppliedIndex() + uint64(i) + 1, Command: c}
	}
	return p.s.Apply(entries)
}

func TestSweeperExpiresThroughProposer(t *testing.T) {
	s := mustOpenStore(t)
	c := &applyProposer{s: s}
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
	c := &applyProposer{s: s}
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
