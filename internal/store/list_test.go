package store

import (
	"fmt"
	"strings"
	"testing"
)

// TestListPageByteCap: a page stops before its values exceed MaxBytes
// (always holding at least one item), says so with Next, and following
// Next returns every key exactly once.
func TestListPageByteCap(t *testing.T) {
	s := mustOpenStore(t)
	const n, size = 10, 1000
	for i := range n {
		applyOne(t, s, put(fmt.Sprintf("k/%02d", i), strings.Repeat("v", size)))
	}
	if err := s.Flush(); err != nil {
		t.Fatal(err)
	}
	applyOne(t, s, put("k/05", strings.Repeat("w", size))) // one key in the memtable
	tests := map[string]struct {
		maxBytes  int64
		wantPages int
	}{
		"three values a page":    {3*size + 100, 4},
		"one value a page":       {size, 10},
		"smaller than one value": {10, 10},
		"no cap":                 {0, 1},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			seen := map[string]int{}
			pages, after := 0, ""
			for {
				res, err := s.List(ListOptions{Prefix: "k/", After: after, Limit: 1000, MaxBytes: tc.maxBytes, Now: t0})
				if err != nil {
					t.Fatal(err)
				}
				pages++
				var bytes int64
				for _, kv := range res.Items {
					seen[kv.Key]++
					bytes += int64(len(kv.Key) + len(kv.Value) + len(kv.ContentType))
				}
				if tc.maxBytes > 0 && len(res.Items) > 1 && bytes > tc.maxBytes {
					t.Errorf("page %d holds %d bytes, over the cap %d", pages, bytes, tc.maxBytes)
				}
				if res.Next == "" || pages > 2*n {
					break
				}
				after = res.Next
			}
			if pages != tc.wantPages {
				t.Errorf("pages = %d, want %d", pages, tc.wantPages)
			}
			if len(seen) != n {
				t.Errorf("saw %d keys, want %d", len(seen), n)
			}
			for k, c := range seen {
				if c != 1 {
					t.Errorf("key %s seen %d times", k, c)
				}
			}
		})
	}
}

// TestListCopiesOutsideTheWriterLock: while List copies values, the lock
// that applying a batch needs (memMu, exclusively) is free, a write goes
// through, and the page is still the one of the list's start.
func TestListCopiesOutsideTheWriterLock(t *testing.T) {
	s := mustOpenStore(t)
	for i := range 4 {
		applyOne(t, s, put(fmt.Sprintf("k/%d", i), "old"))
	}
	if err := s.Flush(); err != nil {
		t.Fatal(err)
	}
	applyOne(t, s, put("k/0", "mem")) // a memtable entry too
	rev := s.Revision()
	calls := 0
	testHookListCopy = func() {
		calls++
		if !s.memMu.TryLock() {
			t.Error("memMu is held while List copies a value")
			return
		}
		s.memMu.Unlock()
		if calls == 1 {
			applyOne(t, s, put("k/3", "new")) // a writer during the list
		}
	}
	t.Cleanup(func() { testHookListCopy = nil })
	res, err := s.List(ListOptions{Prefix: "k/", Limit: 10, Now: t0})
	if err != nil {
		t.Fatal(err)
	}
	if calls == 0 {
		t.Fatal("the copy hook was never called")
	}
	if res.Revision != rev || len(res.Items) != 4 || string(res.Items[0].Value) != "mem" || string(res.Items[3].Value) != "old" {
		t.Errorf("page at revision %d (want %d): %+v", res.Revision, rev, res.Items)
	}
}
