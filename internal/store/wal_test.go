package store

import (
	"context"
	"fmt"
	"os"
	"reflect"
	"testing"
	"time"
)

// crash stops c and closes s and w the way a killed process would: nothing
// buffered is flushed.
func crash(c *Committer, s *Store, w *WAL) {
	c.stopOnce.Do(func() {
		close(c.stop)
		<-c.done
		<-c.flusherDone
	})
	s.hub.close()
	s.db.Close()
	w.Close()
}

// TestWALRecoversUnflushedWrites acknowledges writes that are never flushed
// to the store's file, "crashes", and checks that reopening replays them.
func TestWALRecoversUnflushedWrites(t *testing.T) {
	dir := t.TempDir()
	s := mustOpenAt(t, dir+"/"+DBFile)
	w := mustOpenWAL(t, dir)
	c := mustCommitter(t, s, w, CommitterOptions{FlushInterval: time.Hour, FlushKeys: 1 << 30})
	for i := range 50 {
		propose(t, c, put(fmt.Sprintf("k%02d", i), fmt.Sprint(i)))
	}
	propose(t, c, Command{Op: OpDelete, Key: "k07"})
	propose(t, c, Command{Op: OpDeletePrefix, Key: "k4"})
	if keys, _ := s.Buffered(); keys == 0 || s.DurableIndex() != 0 {
		t.Fatalf("nothing buffered (keys %d, durable %d): the test would not test recovery", keys, s.DurableIndex())
	}
	want, _ := s.List(ListOptions{Limit: 100, Now: t0})
	crash(c, s, w)

	s2 := mustOpenAt(t, dir+"/"+DBFile)
	if s2.AppliedIndex() != 0 {
		t.Fatalf("store file already has index %d", s2.AppliedIndex())
	}
	mustCommitter(t, s2, mustOpenWAL(t, dir), CommitterOptions{})
	got, _ := s2.List(ListOptions{Limit: 100, Now: t0})
	if !reflect.DeepEqual(got, want) {
		t.Errorf("after replay (-want +got):\n- %+v\n+ %+v", want, got)
	}
	if st := s2.Status(); st.AppliedIndex != 52 || st.Keys != 39 || s2.DurableIndex() != 52 {
		t.Errorf("status after replay %+v, durable %d", st, s2.DurableIndex())
	}
}

func appendN(t *testing.T, w *WAL, from, n int) {
	t.Helper()
	var entries []Entry
	for i := from; i < from+n; i++ {
		entries = append(entries, Entry{Index: uint64(i), Command: put(fmt.Sprint(i), "value-"+fmt.Sprint(i))})
	}
	if err := w.Append(entries); err != nil {
		t.Fatal(err)
	}
}

func replayed(t *testing.T, w *WAL, after uint64) []uint64 {
	t.Helper()
	var got []uint64
	err := w.Replay(after, 3, func(es []Entry) error {
		for _, e := range es {
			if string(e.Command.Value) != fmt.Sprintf("value-%d", e.Index) {
				t.Errorf("entry %d holds %q", e.Index, e.Command.Value)
			}
			got = append(got, e.Index)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return got
}

func seq(from, to uint64) []uint64 {
	var out []uint64
	for i := from; i <= to; i++ {
		out = append(out, i)
	}
	return out
}

func TestWALSegmentsAndTruncation(t *testing.T) {
	old := segmentBytes
	segmentBytes = 200 // a few entries per segment
	defer func() { segmentBytes = old }()
	dir := t.TempDir() + "/wal"
	w, err := OpenWAL(dir)
	if err != nil {
		t.Fatal(err)
	}
	for i := 1; i <= 30; i += 3 {
		appendN(t, w, i, 3)
	}
	if len(w.segments) < 4 {
		t.Fatalf("only %d segments: rotation not exercised", len(w.segments))
	}
	if got := replayed(t, w, 0); !reflect.DeepEqual(got, seq(1, 30)) {
		t.Fatalf("replay = %v", got)
	}
	if got := replayed(t, w, 17); !reflect.DeepEqual(got, seq(18, 30)) {
		t.Fatalf("replay after 17 = %v", got)
	}
	if err := w.TruncateThrough(17); err != nil {
		t.Fatal(err)
	}
	if got := replayed(t, w, 17); !reflect.DeepEqual(got, seq(18, 30)) {
		t.Fatalf("after truncation, replay after 17 = %v", got)
	}
	if err := w.TruncateAfter(27); err != nil {
		t.Fatal(err)
	}
	if err := w.TruncateAfter(20); err == nil {
		t.Error("TruncateAfter beyond the latest append succeeded")
	}
	w.Close()
	w, err = OpenWAL(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	if got := replayed(t, w, 17); !reflect.DeepEqual(got, seq(18, 27)) {
		t.Fatalf("after reopen = %v", got)
	}
	if err := w.Append([]Entry{{Index: 40, Command: put("x", "y")}}); err == nil {
		t.Error("append with a gap succeeded")
	}
	appendN(t, w, 28, 2)
	if got := replayed(t, w, 25); !reflect.DeepEqual(got, seq(26, 29)) {
		t.Fatalf("after appending again = %v", got)
	}
}

// TestWALTornTail damages the end of the last segment the ways a crash can
// and checks that reopening keeps every complete record before it and
// appends cleanly after.
func TestWALTornTail(t *testing.T) {
	tests := map[string]func(path string, size int64){
		"half a header": func(path string, size int64) { appendBytes(path, []byte{0, 0, 0}) },
		"half a record": func(path string, size int64) {
			os.Truncate(path, size-5)
		},
		"garbage": func(path string, size int64) { appendBytes(path, []byte("\x00\x00\x00\x10garbagegarbagegarbage")) },
		"flipped bit in the last record": func(path string, size int64) {
			f, _ := os.OpenFile(path, os.O_RDWR, 0)
			b := make([]byte, 1)
			f.ReadAt(b, size-3)
			b[0] ^= 0x40
			f.WriteAt(b, size-3)
			f.Close()
		},
	}
	for name, damage := range tests {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir() + "/wal"
			w, _ := OpenWAL(dir)
			appendN(t, w, 1, 5)
			appendN(t, w, 6, 1)
			path := w.segPath(w.segments[0])
			w.Close()
			fi, _ := os.Stat(path)
			damage(path, fi.Size())
			w, err := OpenWAL(dir)
			if err != nil {
				t.Fatal(err)
			}
			defer w.Close()
			want := seq(1, 6)
			if name != "half a header" && name != "garbage" {
				want = seq(1, 5) // the last record itself was damaged
			}
			if got := replayed(t, w, 0); !reflect.DeepEqual(got, want) {
				t.Fatalf("after damage: %v, want %v", got, want)
			}
			appendN(t, w, len(want)+1, 2)
			if got := replayed(t, w, 0); !reflect.DeepEqual(got, seq(1, uint64(len(want)+2))) {
				t.Fatalf("after appending: %v", got)
			}
		})
	}
}

func appendBytes(path string, b []byte) {
	f, _ := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
	f.Write(b)
	f.Close()
}

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
