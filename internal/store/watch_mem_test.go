package store

import (
	"fmt"
	"runtime"
	"testing"
)

// heapPerSubscription is the heap one idle subscription holds, measured over n.
func heapPerSubscription(tb testing.TB, h *Hub, n int) uint64 {
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	subs := make([]*Subscription, n)
	for i := range subs {
		_, s, err := h.Subscribe(fmt.Sprintf("p%d/", i), 0, false)
		if err != nil {
			tb.Fatal(err)
		}
		subs[i] = s
	}
	runtime.GC()
	runtime.ReadMemStats(&after)
	for _, s := range subs {
		s.Close()
	}
	return (after.HeapAlloc - min(after.HeapAlloc, before.HeapAlloc)) / uint64(n)
}

// TestIdleSubscriptionIsSmall: an idle watch holds no event buffer up front
// (it was 4096 events, 320 KiB). The bound is generous.
func TestIdleSubscriptionIsSmall(t *testing.T) {
	h := newHub(0, 16, 1<<20)
	if per := heapPerSubscription(t, h, 200); per > 4<<10 {
		t.Errorf("an idle subscription holds %d bytes of heap, want at most 4096", per)
	}
}

// TestSubscriptionBufferGrowsAndKeepsOrder: a burst larger than the first
// buffer is delivered whole, in order.
func TestSubscriptionBufferGrowsAndKeepsOrder(t *testing.T) {
	h := newHub(0, 16, 1<<20)
	_, sub, _ := h.Subscribe("", 0, false)
	defer sub.Close()
	for i := 1; i <= 1000; i++ {
		h.publish([]Event{{Type: EventPut, Key: "k", Revision: uint64(i)}})
	}
	for i := 1; i <= 1000; i++ {
		if e := <-sub.Events(); e.Revision != uint64(i) {
			t.Fatalf("event %d has revision %d", i, e.Revision)
		}
	}
}

func BenchmarkIdleSubscriptionHeap(b *testing.B) {
	h := newHub(0, 16, 1<<20)
	for b.Loop() {
		b.ReportMetric(float64(heapPerSubscription(b, h, 1000)), "heap-B/watch")
	}
}
