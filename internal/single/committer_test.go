package single

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"sync"
	"testing"
	"time"

	"kvstore.dev/kvstore/internal/store"
)

// TestCommitterGroupsConcurrentWriters checks that concurrent proposals are
// all applied exactly once, with distinct revisions, and that they share
// transactions (fewer commits than writes).
func TestCommitterGroupsConcurrentWriters(t *testing.T) {
	var mu sync.Mutex
	commits := 0
	s, err := store.Open(t.TempDir()+"/kv.db", store.Options{OnFlush: func(store.FlushStats) { mu.Lock(); commits++; mu.Unlock() }})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	c := mustCommitter(t, s, nil, Options{})

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
	c := mustCommitter(t, s, nil, Options{})
	propose(t, c, put("a", "1"))
	c.Close()
	if _, err := c.Propose(context.Background(), put("b", "1")); !errors.Is(err, store.ErrClosed) {
		t.Errorf("Propose after Close: err = %v, want ErrClosed", err)
	}
}

// TestCommitterStampsNow: the committer's clock decides expiry, whatever
// Now the proposer set.
func TestCommitterStampsNow(t *testing.T) {
	s := mustOpenStore(t)
	c := mustCommitter(t, s, nil, Options{Clock: func() time.Time { return t0 }})
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

// TestWALRecoversUnflushedWrites acknowledges writes that are never flushed
// to the store's file, "crashes" (copies the data directory as a killed
// process leaves it: nothing buffered flushed), and checks that opening
// the copy replays them.
func TestWALRecoversUnflushedWrites(t *testing.T) {
	dir := t.TempDir()
	s := mustOpenAt(t, dir+"/"+store.DBFile)
	c := mustCommitter(t, s, mustOpenWAL(t, dir), Options{Flush: store.FlushPolicy{Interval: time.Hour, MaxKeys: 1 << 30}})
	for i := range 50 {
		propose(t, c, put(fmt.Sprintf("k%02d", i), fmt.Sprint(i)))
	}
	propose(t, c, store.Command{Op: store.OpDelete, Key: "k07"})
	propose(t, c, store.Command{Op: store.OpDeletePrefix, Key: "k4"})
	if keys, _ := s.Buffered(); keys == 0 || s.DurableIndex() != 0 {
		t.Fatalf("nothing buffered (keys %d, durable %d): the test would not test recovery", keys, s.DurableIndex())
	}
	want, _ := s.List(store.ListOptions{Limit: 100, Now: t0})
	crashed := crashCopy(t, dir)

	s2 := mustOpenAt(t, crashed+"/"+store.DBFile)
	if s2.AppliedIndex() != 0 {
		t.Fatalf("store file already has index %d", s2.AppliedIndex())
	}
	mustCommitter(t, s2, mustOpenWAL(t, crashed), Options{})
	got, _ := s2.List(store.ListOptions{Limit: 100, Now: t0})
	if !reflect.DeepEqual(got, want) {
		t.Errorf("after replay (-want +got):\n- %+v\n+ %+v", want, got)
	}
	if st := s2.Status(); st.AppliedIndex != 52 || st.Keys != 39 || s2.DurableIndex() != 52 {
		t.Errorf("status after replay %+v, durable %d", st, s2.DurableIndex())
	}
}
