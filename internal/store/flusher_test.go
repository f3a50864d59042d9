package store

import (
	"context"
	"errors"
	"testing"
	"time"
)

// TestFlusherWaitForRoom: below the cap writers pass at once; past it they
// wait for a flush, which makes room; when flushes fail they get the
// flush's error, and once the flusher stops, ErrClosed.
func TestFlusherWaitForRoom(t *testing.T) {
	s := mustOpenStore(t)
	f := StartFlusher(s, FlushPolicy{Interval: time.Hour, MaxKeys: 2}, nil)
	defer f.Close()
	fill := func(n int, prefix string) {
		for i := range n {
			if _, err := s.ApplyBuffered([]Entry{{Index: s.AppliedIndex() + 1, Command: put(prefix+string(rune('a'+i)), "v")}}); err != nil {
				t.Fatal(err)
			}
		}
	}
	fill(HoldFactor*2-1, "a/")
	ctx := context.Background()
	if err := f.WaitForRoom(ctx); err != nil {
		t.Fatalf("below the cap: %v", err)
	}
	fill(1, "b/")
	if err := f.WaitForRoom(ctx); err != nil || s.DurableIndex() != s.AppliedIndex() {
		t.Fatalf("at the cap: err %v, durable %d of %d: want a flush first", err, s.DurableIndex(), s.AppliedIndex())
	}
	fill(HoldFactor*2, "c/")
	s.db.Close() // every flush fails from now on
	if err := f.WaitForRoom(ctx); err == nil || errors.Is(err, ErrClosed) {
		t.Fatalf("with failing flushes: err = %v, want the flush's error", err)
	}
	f.Close()
	if err := f.WaitForRoom(ctx); !errors.Is(err, ErrClosed) {
		t.Fatalf("after Close: err = %v, want ErrClosed", err)
	}
}
