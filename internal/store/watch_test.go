package store

import (
	"errors"
	"fmt"
	"reflect"
	"testing"
)

func keysOf(events []Event) []string {
	var out []string
	for _, e := range events {
		out = append(out, fmt.Sprintf("%s %s@%d", e.Type, e.Key, e.Revision))
	}
	return out
}

func TestHubReplayAndLive(t *testing.T) {
	s := mustOpenStore(t)
	applyOne(t, s, put("a/1", "x"))                                       // 1
	applyOne(t, s, put("b/1", "x"))                                       // 2
	applyOne(t, s, put("a/2", "x"))                                       // 3
	applyOne(t, s, Command{Op: OpDelete, Key: "a/1", Now: t0.UnixNano()}) // 4

	tests := map[string]struct {
		prefix string
		since  uint64
		want   []string
	}{
		"everything":       {"", 0, []string{"put a/1@1", "put b/1@2", "put a/2@3", "delete a/1@4"}},
		"prefix":           {"a/", 0, []string{"put a/1@1", "put a/2@3", "delete a/1@4"}},
		"after a revision": {"a/", 3, []string{"delete a/1@4"}},
		"up to date":       {"", 4, nil},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			replay, sub, err := s.Subscribe(tc.prefix, tc.since, true)
			if err != nil {
				t.Fatal(err)
			}
			defer sub.Close()
			if got := keysOf(replay); !reflect.DeepEqual(got, tc.want) {
				t.Errorf("replay (-want +got):\n- %v\n+ %v", tc.want, got)
			}
		})
	}

	_, sub, _ := s.Subscribe("a/", 0, false)
	defer sub.Close()
	applyOne(t, s, put("b/2", "x"))
	applyOne(t, s, put("a/3", "live"))
	e := <-sub.Events()
	if e.Key != "a/3" || e.Revision != 6 || string(e.Value) != "live" {
		t.Errorf("live event = %+v", e)
	}
}

func TestHubCompactsAndReportsIt(t *testing.T) {
	s, err := Open(t.TempDir()+"/kv.db", Options{WatchHistoryEvents: 5})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	for i := range 8 {
		applyOne(t, s, put(fmt.Sprintf("k%d", i), "x"))
	}
	// Revisions 4..8 are held: resuming after 3 works, after 2 does not.
	if replay, sub, err := s.Subscribe("", 3, true); err != nil || len(replay) != 5 {
		t.Errorf("Subscribe(since 3) = %d events, %v; want 5", len(replay), err)
	} else {
		sub.Close()
	}
	if _, _, err := s.Subscribe("", 2, true); !errors.Is(err, ErrCompacted) {
		t.Errorf("Subscribe(since 2) err = %v, want ErrCompacted", err)
	}
	// After a restart the history is empty: only the current revision resumes.
	s2 := reopen(t, s)
	if _, _, err := s2.Subscribe("", 7, true); !errors.Is(err, ErrCompacted) {
		t.Errorf("after reopen, Subscribe(since 7) err = %v, want ErrCompacted", err)
	}
	if _, sub, err := s2.Subscribe("", 8, true); err != nil {
		t.Errorf("after reopen, Subscribe(since 8) err = %v", err)
	} else {
		sub.Close()
	}
}

func TestHubDropsLaggingSubscriber(t *testing.T) {
	s := mustOpenStore(t)
	_, slow, _ := s.Subscribe("", 0, false)
	defer slow.Close()
	entries := make([]Entry, subscriptionBuffer+1)
	for i := range entries {
		entries[i] = Entry{Index: uint64(i + 1), Command: put(fmt.Sprintf("k%d", i), "x")}
	}
	if _, err := s.Apply(entries); err != nil {
		t.Fatal(err)
	}
	<-slow.Done()
	if !errors.Is(slow.Err(), ErrLagged) {
		t.Errorf("Err = %v, want ErrLagged", slow.Err())
	}
	if n := s.Status().Watchers; n != 0 {
		t.Errorf("watchers = %d after drop", n)
	}
}

func TestCloseEndsSubscriptions(t *testing.T) {
	s := mustOpenStore(t)
	_, sub, _ := s.Subscribe("", 0, false)
	s.Close()
	<-sub.Done()
	if !errors.Is(sub.Err(), ErrClosed) {
		t.Errorf("Err = %v, want ErrClosed", sub.Err())
	}
}

func TestHubRingOrderAndByteBound(t *testing.T) {
	h := newHub(0, 4, 1<<20)
	for i := 1; i <= 11; i++ {
		h.publish([]Event{{Type: EventPut, Key: fmt.Sprintf("k%d", i), Revision: uint64(i)}})
	}
	replay, sub, err := h.Subscribe("", 7, true)
	if err != nil {
		t.Fatal(err)
	}
	sub.Close()
	if got, want := keysOf(replay), []string{"put k8@8", "put k9@9", "put k10@10", "put k11@11"}; !reflect.DeepEqual(got, want) {
		t.Errorf("replay after wrap-around (-want +got):\n- %v\n+ %v", want, got)
	}
	// A byte bound smaller than the count bound evicts by size.
	hb := newHub(0, 100, 3*eventSize(Event{Key: "k", Value: make([]byte, 1000)}))
	for i := 1; i <= 10; i++ {
		hb.publish([]Event{{Type: EventPut, Key: "k", Value: make([]byte, 1000), Revision: uint64(i)}})
	}
	if hb.history.n != 3 || hb.compacted != 7 {
		t.Errorf("byte-bounded history holds %d events, compacted at %d; want 3 and 7", hb.history.n, hb.compacted)
	}
}
