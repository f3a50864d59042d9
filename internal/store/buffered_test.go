package store

import (
	"context"
	"fmt"
	"reflect"
	"testing"
	"time"
)

// TestReadsSeeBufferedState checks Get and List through the unflushed
// layers: new keys, overwrites and tombstones over flushed data.
func TestReadsSeeBufferedState(t *testing.T) {
	s := mustOpenStore(t)
	for _, k := range []string{"a/1", "a/2", "a/3", "b/1"} {
		applyOne(t, s, put(k, "flushed-"+k)) // Apply flushes
	}
	buffered := []Command{
		put("a/2", "new-a/2"),
		put("a/0", "new-a/0"),
		{Op: OpDelete, Key: "a/3", Now: t0.UnixNano()},
		put("a/4", "new-a/4"),
	}
	for _, c := range buffered {
		if _, err := s.ApplyBuffered([]Entry{{Index: s.AppliedIndex() + 1, Command: c}}); err != nil {
			t.Fatal(err)
		}
	}
	check := func(when string) {
		t.Helper()
		res, err := s.List(ListOptions{Prefix: "a/", Limit: 100, Now: t0})
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, kv := range res.Items {
			got = append(got, kv.Key+"="+string(kv.Value))
		}
		want := []string{"a/0=new-a/0", "a/1=flushed-a/1", "a/2=new-a/2", "a/4=new-a/4"}
		if !reflect.DeepEqual(got, want) || res.Revision != 8 {
			t.Errorf("%s: list (-want +got):\n- %v\n+ %v (revision %d)", when, want, got, res.Revision)
		}
		page, _ := s.List(ListOptions{Prefix: "a/", After: "a/1", Limit: 1, Now: t0})
		if len(page.Items) != 1 || page.Items[0].Key != "a/2" || page.Next != "a/2" {
			t.Errorf("%s: page after a/1 = %+v", when, page)
		}
		if _, err := s.Get("a/3", t0, true); err == nil {
			t.Errorf("%s: deleted key a/3 still readable", when)
		}
		if kv, err := s.Get("a/2", t0, true); err != nil || string(kv.Value) != "new-a/2" || kv.Version != 2 {
			t.Errorf("%s: Get(a/2) = %+v, %v", when, kv, err)
		}
	}
	check("buffered")
	if keys, _ := s.Buffered(); keys != 4 {
		t.Errorf("buffered keys = %d, want 4", keys)
	}
	if err := s.Flush(); err != nil {
		t.Fatal(err)
	}
	check("flushed")
	check2 := reopen(t, s)
	s = check2
	check("reopened")
}

// TestFlushPointsDoNotChangeState applies one log with flushes at different
// points, concurrently with reads, and compares the final states.
func TestFlushPointsDoNotChangeState(t *testing.T) {
	log := randomLog(400)
	final := func(flushEvery int) ListResult {
		s := mustOpenStore(t)
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		go func() { // readers racing the flushes
			for ctx.Err() == nil {
				s.List(ListOptions{Prefix: "k/", Limit: 5, Now: t0})
			}
		}()
		for i, e := range log {
			if _, err := s.ApplyBuffered([]Entry{e}); err != nil {
				t.Fatal(err)
			}
			if flushEvery > 0 && i%flushEvery == 0 {
				if err := s.Flush(); err != nil {
					t.Fatal(err)
				}
			}
		}
		res, _ := s.List(ListOptions{Limit: 1000, Now: t0.Add(-time.Hour)})
		return res
	}
	want := final(1)
	for _, every := range []int{0, 7, 50} {
		if got := final(every); !reflect.DeepEqual(got, want) {
			t.Errorf("flush every %d entries: state differs from flushing every entry", every)
		}
	}
}

func randomLog(n int) []Entry {
	var log []Entry
	for i := range n {
		c := put(fmt.Sprintf("k/%d", i%37), fmt.Sprintf("v%d", i))
		c.Now = t0.Add(time.Duration(i) * time.Second).UnixNano()
		switch i % 7 {
		case 0:
			c.ExpiresAt = t0.Add(time.Duration(i+5) * time.Second).UnixNano()
		case 3:
			c = Command{Op: OpDelete, Key: c.Key, Now: c.Now}
		case 5:
			c.IfRevision = uint64(i)
		}
		if i%50 == 49 {
			c = Command{Op: OpDeletePrefix, Key: "k/1", Now: c.Now}
		}
		log = append(log, Entry{Index: uint64(i + 1), Command: c})
	}
	return log
}
