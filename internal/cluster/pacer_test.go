package cluster

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/raft"

	"kvstore.dev/kvstore/internal/store"
)

// fakeFuture is an entry held by fakeLog until the test releases it.
type fakeFuture struct {
	release chan struct{}
	err     error
	resp    any
}

func (f *fakeFuture) Error() error  { <-f.release; return f.err }
func (f *fakeFuture) Response() any { return f.resp }
func (f *fakeFuture) Index() uint64 { return 0 }

// fakeLog stands in for raft.Raft.Apply: it records each entry's commands,
// answers one result per command (the command's key as the value, so a
// test can check that every proposal got its own), holds every entry until
// the test releases it, and tracks the entries in flight.
type fakeLog struct {
	mu          sync.Mutex
	entries     [][]store.Command
	inFlight    int
	maxInFlight int
	appended    chan *fakeFuture
	fail        error // every entry fails with it
	short       bool  // answer one result too few
}

// pacerOnFakeLog returns a pacer over a new fakeLog, with clock (a
// store.NewStamper(nil) when nil), stopped when t ends. Its loop is not
// running yet (go p.loop()), so that a test may queue proposals first.
func pacerOnFakeLog(t *testing.T, clock *store.Stamper) (*pacer, *fakeLog) {
	stop := make(chan struct{})
	t.Cleanup(func() { close(stop) })
	if clock == nil {
		clock = store.NewStamper(nil)
	}
	log := &fakeLog{appended: make(chan *fakeFuture, 100)}
	return newPacer(stop, time.Second, clock, log.apply), log
}

func (l *fakeLog) apply(data []byte, _ time.Duration) raft.ApplyFuture {
	cmds, err := decodeCommands(data)
	if err != nil {
		panic(err)
	}
	res := make([]store.Result, len(cmds))
	for i, c := range cmds {
		res[i] = store.Result{KV: store.KeyValue{Key: c.Key, Value: []byte(c.Key)}}
	}
	if l.short {
		res = res[1:]
	}
	l.mu.Lock()
	l.entries = append(l.entries, cmds)
	l.inFlight++
	l.maxInFlight = max(l.maxInFlight, l.inFlight)
	l.mu.Unlock()
	f := &fakeFuture{release: make(chan struct{}), err: l.fail, resp: &applyResponse{results: res}}
	l.appended <- f
	return f
}

// releaseNext waits for the next entry to be appended and lets it finish.
func (l *fakeLog) releaseNext(t *testing.T) {
	t.Helper()
	select {
	case f := <-l.appended:
		l.mu.Lock()
		l.inFlight--
		l.mu.Unlock()
		close(f.release)
	case <-time.After(10 * time.Second):
		t.Fatal("no entry was appended")
	}
}

type proposal struct {
	keys    []string
	req     *pacerReq
	results []store.Result
	err     error
}

func puts(prefix string, n int) *proposal {
	pr := &proposal{}
	for i := range n {
		pr.keys = append(pr.keys, fmt.Sprintf("%s-%d", prefix, i))
	}
	return pr
}

// enqueue queues proposals in order without waiting for them.
func enqueue(t *testing.T, p *pacer, ctx context.Context, props ...*proposal) {
	t.Helper()
	for _, pr := range props {
		cmds := make([]store.Command, len(pr.keys))
		for i, k := range pr.keys {
			cmds[i] = store.Command{Op: store.OpPut, Key: k, Value: []byte("v"), Now: int64(i + 1)} // a proposer's clock, replaced
		}
		data, err := encodeCommands(cmds)
		if err != nil {
			t.Fatal(err)
		}
		if pr.req, err = p.enqueue(ctx, data); err != nil {
			t.Fatal(err)
		}
	}
}

// waitAll waits for the outcome of every proposal.
func waitAll(p *pacer, ctx context.Context, props ...*proposal) {
	for _, pr := range props {
		pr.results, pr.err = p.wait(ctx, pr.req)
	}
}

func checkResults(t *testing.T, props ...*proposal) {
	t.Helper()
	for _, pr := range props {
		if pr.err != nil {
			t.Fatalf("proposal %v: %v", pr.keys[0], pr.err)
		}
		if len(pr.results) != len(pr.keys) {
			t.Fatalf("proposal %v: %d results for %d commands", pr.keys[0], len(pr.results), len(pr.keys))
		}
		for i, r := range pr.results {
			if string(r.KV.Value) != pr.keys[i] {
				t.Errorf("proposal %v: result %d is for %q", pr.keys[0], i, r.KV.Value)
			}
		}
	}
}

func TestPacerBatchesWhileAnEntryIsInFlight(t *testing.T) {
	p, log := pacerOnFakeLog(t, nil)
	go p.loop()
	ctx := context.Background()

	first := puts("a", 1)
	enqueue(t, p, ctx, first)
	// Wait for the first entry; the next ten proposals queue behind it
	// while it is held.
	f := <-log.appended
	var rest []*proposal
	for i := range 10 {
		rest = append(rest, puts(fmt.Sprintf("b%d", i), 1+i%3))
	}
	enqueue(t, p, ctx, rest...)
	// Correct code never appends a second entry here; the bounded wait
	// only gives a wrong one the chance to show it.
	select {
	case <-log.appended:
		t.Fatal("a second entry was appended while the first was in flight")
	case <-time.After(100 * time.Millisecond):
	}
	log.appended <- f // give it back to releaseNext
	log.releaseNext(t)
	log.releaseNext(t)
	waitAll(p, ctx, append([]*proposal{first}, rest...)...)

	checkResults(t, append([]*proposal{first}, rest...)...)
	if len(log.entries) != 2 {
		t.Fatalf("entries = %d, want 2 (one alone, then the ten queued behind it together)", len(log.entries))
	}
	if log.maxInFlight != 1 {
		t.Errorf("entries in flight at once = %d, want 1", log.maxInFlight)
	}
	if got := len(log.entries[1]); got != 19 {
		t.Errorf("second entry has %d commands, want 19", got)
	}
}

func TestPacerEntryLimits(t *testing.T) {
	p, log := pacerOnFakeLog(t, nil)
	ctx := context.Background()

	// Queued before the loop starts: three proposals of which no two fit
	// in one entry, then a small one that fits after the third.
	props := []*proposal{puts("x", pacerMaxCmds/2+1), puts("y", pacerMaxCmds/2+1), puts("z", pacerMaxCmds/2+1), puts("w", 3)}
	enqueue(t, p, ctx, props...)
	go p.loop()
	for range 3 {
		log.releaseNext(t)
	}
	waitAll(p, ctx, props...)
	checkResults(t, props...)
	var sizes []int
	for _, e := range log.entries {
		sizes = append(sizes, len(e))
	}
	if want := []int{pacerMaxCmds/2 + 1, pacerMaxCmds/2 + 1, pacerMaxCmds/2 + 4}; fmt.Sprint(sizes) != fmt.Sprint(want) {
		t.Errorf("entry sizes = %v, want %v", sizes, want)
	}
}

func TestPacerErrors(t *testing.T) {
	for _, tc := range []struct {
		name  string
		setup func(*fakeLog, *pacer)
		want  error
	}{
		{"not leader: retried elsewhere", func(l *fakeLog, _ *pacer) { l.fail = raft.ErrNotLeader }, errNotLeader},
		{"not taken in time: not applied", func(l *fakeLog, _ *pacer) { l.fail = raft.ErrEnqueueTimeout }, store.ErrNoQuorum},
		{"leadership lost: may be applied", func(l *fakeLog, _ *pacer) { l.fail = raft.ErrLeadershipLost }, store.ErrOutcomeUnknown},
		{"shut down", func(l *fakeLog, _ *pacer) { l.fail = raft.ErrRaftShutdown }, store.ErrClosed},
		{"results missing", func(l *fakeLog, _ *pacer) { l.short = true }, store.ErrOutcomeUnknown},
		{"log store error: may be applied", func(l *fakeLog, p *pacer) {
			l.fail, p.logFull = errors.New("disk error"), func() bool { return false }
		}, store.ErrOutcomeUnknown},
		{"log store full: not applied", func(l *fakeLog, p *pacer) {
			l.fail, p.logFull = errors.New("no space left on device"), func() bool { return true }
		}, store.ErrNoSpace},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, log := pacerOnFakeLog(t, nil)
			tc.setup(log, p)
			ctx := context.Background()
			props := []*proposal{puts("a", 1), puts("b", 2)}
			enqueue(t, p, ctx, props...)
			go p.loop()
			log.releaseNext(t) // both in one entry
			waitAll(p, ctx, props...)
			for _, pr := range props {
				if !errors.Is(pr.err, tc.want) {
					t.Errorf("proposal %v: err = %v, want %v", pr.keys, pr.err, tc.want)
				}
			}
		})
	}
}

func TestPacerCallerGivesUp(t *testing.T) {
	p, log := pacerOnFakeLog(t, nil)
	go p.loop()
	ctx, cancel := context.WithCancel(context.Background())
	pr := puts("a", 1)
	enqueue(t, p, ctx, pr)
	f := <-log.appended
	cancel() // the write is in the log: its outcome is unknown
	waitAll(p, ctx, pr)
	if !errors.Is(pr.err, store.ErrOutcomeUnknown) {
		t.Fatalf("err = %v, want outcome unknown", pr.err)
	}
	close(f.release)

	if _, err := p.propose(context.Background(), []byte{0xff}); err == nil {
		t.Fatal("a proposal with a bad count was accepted")
	}
}

// TestPacerStampsEachEntry: every command of an entry carries one reading
// of the pacer's clock, replacing whatever Now its proposer set (a
// follower forwarding, or a local client), and the stamps never go back.
func TestPacerStampsEachEntry(t *testing.T) {
	now := time.Unix(1000, 0)
	p, log := pacerOnFakeLog(t, store.NewStamper(func() time.Time { return now }))
	ctx := context.Background()
	props := []*proposal{puts("local", 2), puts("forwarded", 3)}
	enqueue(t, p, ctx, props...)
	go p.loop()
	log.releaseNext(t)
	waitAll(p, ctx, props...)
	now = time.Unix(900, 0) // the clock steps back
	late := puts("late", 1)
	enqueue(t, p, ctx, late)
	log.releaseNext(t)
	waitAll(p, ctx, late)
	checkResults(t, append(props, late)...)
	if len(log.entries) != 2 {
		t.Fatalf("%d entries, want 2", len(log.entries))
	}
	for i, e := range log.entries {
		for _, c := range e {
			if c.Now != time.Unix(1000, 0).UnixNano() {
				t.Errorf("entry %d: %s stamped %d, want %d", i, c.Key, c.Now, time.Unix(1000, 0).UnixNano())
			}
		}
	}
}

// TestPacerHold: hold returns only once the entry in flight is applied;
// while held, proposals queue and nothing is appended; after release they
// go into the log as usual.
func TestPacerHold(t *testing.T) {
	p, log := pacerOnFakeLog(t, nil)
	go p.loop()
	ctx := context.Background()

	first := puts("a", 1)
	enqueue(t, p, ctx, first)
	f := <-log.appended
	type held struct {
		release func()
		err     error
	}
	holdDone := make(chan held, 1)
	go func() {
		release, err := p.hold(ctx)
		holdDone <- held{release, err}
	}()
	// Correct code never returns from hold here; the bounded wait only
	// gives a wrong one the chance to show it.
	select {
	case <-holdDone:
		t.Fatal("hold returned while an entry was in flight")
	case <-time.After(100 * time.Millisecond):
	}
	log.appended <- f
	log.releaseNext(t)
	h := <-holdDone
	if h.err != nil {
		t.Fatalf("hold: %v", h.err)
	}
	waitAll(p, ctx, first)

	second := puts("b", 2)
	enqueue(t, p, ctx, second)
	select {
	case <-log.appended:
		t.Fatal("an entry was appended while the pacer was held")
	case <-time.After(100 * time.Millisecond):
	}
	h.release()
	log.releaseNext(t)
	waitAll(p, ctx, second)
	checkResults(t, first, second)
	if len(log.entries) != 2 {
		t.Errorf("entries = %d, want 2", len(log.entries))
	}

	// A hold that cannot get the slot gives up with its context.
	third := puts("c", 1)
	enqueue(t, p, ctx, third)
	<-log.appended
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := p.hold(cctx); !errors.Is(err, context.Canceled) {
		t.Errorf("hold with a cancelled context while an entry is in flight: %v, want context.Canceled", err)
	}
}

// TestPacerBackpressure: while the store's buffer is past the flush
// policy's cap, the leader's pacer holds the next entry back until a flush
// completes; once the flusher has stopped, such writes fail with
// store.ErrClosed instead of growing the buffer.
func TestPacerBackpressure(t *testing.T) {
	var hold atomic.Bool
	flushing, resume := make(chan struct{}), make(chan struct{})
	st, err := store.Open(filepath.Join(t.TempDir(), store.DBFile), store.Options{OnFlush: func(store.FlushStats) {
		if hold.Load() {
			flushing <- struct{}{}
			<-resume
		}
	}})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	fl := store.StartFlusher(st, store.FlushPolicy{Interval: time.Hour, MaxKeys: 1}, nil)
	defer fl.Close()
	fill := func() { // HoldFactor keys: the buffer is at the cap
		for i := range store.HoldFactor {
			e := store.Entry{Index: st.AppliedIndex() + 1, Command: store.Command{Op: store.OpPut, Key: fmt.Sprint("buffered-", i), Now: 1}}
			if _, err := st.ApplyBuffered([]store.Entry{e}); err != nil {
				t.Fatal(err)
			}
		}
	}
	p, log := pacerOnFakeLog(t, nil)
	p.room = fl.WaitForRoom
	go p.loop()
	ctx := context.Background()

	fill()
	hold.Store(true)
	pr := puts("a", 1)
	enqueue(t, p, ctx, pr)
	<-flushing // the pacer asked for a flush and waits for it to complete
	select {
	case <-log.appended:
		t.Fatal("an entry was appended while the buffer was past its cap")
	default:
	}
	resume <- struct{}{}
	log.releaseNext(t)
	waitAll(p, ctx, pr)
	checkResults(t, pr)

	hold.Store(false)
	fl.Close()
	fill()
	pr = puts("b", 1)
	enqueue(t, p, ctx, pr)
	waitAll(p, ctx, pr)
	if !errors.Is(pr.err, store.ErrClosed) {
		t.Fatalf("write past the cap with the flusher stopped: err = %v, want ErrClosed", pr.err)
	}
	if len(log.entries) != 1 {
		t.Fatalf("%d entries appended, want 1", len(log.entries))
	}
}
