package harness

import (
	"fmt"
	"sort"
	"sync"
	"testing"
	"time"
)

// WriterOptions configures StartWriters.
type WriterOptions struct {
	Workers int    // goroutines writing; 0 means 4
	Prefix  string // of every key: "<Prefix>w<worker>/<seq>"; "" means "ack/"
	// Client picks the client of one write; nil skips that write (a
	// node the test has killed, say).
	Client func(worker, seq int) *Client
}

// Ack is one acknowledged write.
type Ack struct {
	Key, Value string
	At         time.Time
}

// Writers write continuously and record which writes were acknowledged (a
// 2xx answer) and how the others failed, so a test can check at the end
// that no acknowledged write was lost, as a client of the store would.
type Writers struct {
	stop chan struct{}
	wg   sync.WaitGroup
	once sync.Once

	mu     sync.Mutex
	acks   []Ack
	failed map[string]int // by problem code, "status <n>", or "transport"
}

// StartWriters starts o.Workers writers; they stop at Stop or when the
// test ends.
func StartWriters(t testing.TB, o WriterOptions) *Writers {
	if o.Workers == 0 {
		o.Workers = 4
	}
	if o.Prefix == "" {
		o.Prefix = "ack/"
	}
	w := &Writers{stop: make(chan struct{}), failed: map[string]int{}}
	for i := range o.Workers {
		w.wg.Add(1)
		go func() {
			defer w.wg.Done()
			for seq := 0; ; seq++ {
				select {
				case <-w.stop:
					return
				default:
				}
				c := o.Client(i, seq)
				if c == nil {
					select {
					case <-w.stop:
						return
					case <-time.After(time.Millisecond):
					}
					continue
				}
				key, value := fmt.Sprintf("%sw%d/%07d", o.Prefix, i, seq), fmt.Sprintf("v-%d-%d", i, seq)
				w.record(key, value, c.Put(key, []byte(value)))
			}
		}()
	}
	t.Cleanup(w.Stop)
	return w
}

func (w *Writers) record(key, value string, r Reply) {
	w.mu.Lock()
	defer w.mu.Unlock()
	switch {
	case r.OK():
		w.acks = append(w.acks, Ack{key, value, time.Now()})
	case r.Err != nil:
		w.failed["transport"]++
	case r.Code() != "":
		w.failed[r.Code()]++
	default:
		w.failed[fmt.Sprintf("status %d", r.Status)]++
	}
}

// Stop stops the writers and waits for the writes in flight.
func (w *Writers) Stop() {
	w.once.Do(func() { close(w.stop) })
	w.wg.Wait()
}

// Acks returns a copy of the acknowledged writes so far.
func (w *Writers) Acks() []Ack {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]Ack(nil), w.acks...)
}

// Count is the number of acknowledged writes so far.
func (w *Writers) Count() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.acks)
}

// Failed returns how many writes failed, by problem code ("no_quorum",
// "outcome_unknown", ...), "status <n>" for an answer without a problem
// body, or "transport" when no answer arrived.
func (w *Writers) Failed() map[string]int {
	w.mu.Lock()
	defer w.mu.Unlock()
	out := make(map[string]int, len(w.failed))
	for k, v := range w.failed {
		out[k] = v
	}
	return out
}

// FirstAckAfter is the time of the first write acknowledged after t, and
// whether there is one.
func (w *Writers) FirstAckAfter(t time.Time) (time.Time, bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	i := sort.Search(len(w.acks), func(i int) bool { return w.acks[i].At.After(t) })
	if i == len(w.acks) {
		return time.Time{}, false
	}
	return w.acks[i].At, true
}

// WaitCount waits until n writes are acknowledged, or fails the test.
func (w *Writers) WaitCount(t testing.TB, n int, timeout time.Duration) {
	t.Helper()
	Eventually(t, fmt.Sprintf("%d acknowledged writes", n), timeout, func() error {
		if got := w.Count(); got < n {
			return fmt.Errorf("%d acknowledged; failed %v", got, w.Failed())
		}
		return nil
	})
}

// WaitMore waits until n more writes than now are acknowledged.
func (w *Writers) WaitMore(t testing.TB, n int, timeout time.Duration) {
	t.Helper()
	w.WaitCount(t, w.Count()+n, timeout)
}

// Verify reads every acknowledged write through c at level and fails the
// test for each one that is missing or holds another value.
func (w *Writers) Verify(t testing.TB, c *Client, level string) {
	t.Helper()
	acks := w.Acks()
	var problems []string
	for _, a := range acks {
		res := c.Get(a.Key, level)
		if !res.OK() || string(res.Body) != a.Value {
			problems = append(problems, fmt.Sprintf("acknowledged %s=%s reads %s", a.Key, a.Value, res))
		}
	}
	ReportProblems(t, fmt.Sprintf("%s: %d acknowledged writes", c.URL, len(acks)), problems)
}
