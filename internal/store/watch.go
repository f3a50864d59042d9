package store

import (
	"errors"
	"fmt"
	"strings"
	"sync"
)

// EventType is the kind of a change.
type EventType string

// The kinds of change a watcher sees.
const (
	EventPut    EventType = "put"
	EventDelete EventType = "delete"
	EventExpire EventType = "expire"
)

// Event is one committed change. Value is set for puts only; events are
// shared between watchers and must be treated as read-only.
type Event struct {
	Type        EventType
	Key         string
	Revision    uint64
	Value       []byte
	ContentType string
}

// ErrLagged ends a subscription whose reader fell too far behind; the reader
// may resume from the last revision it saw.
var ErrLagged = errors.New("kvstore: watcher fell behind")

// subscriptionBuffer is how many events a subscriber may have pending before
// it is dropped with ErrLagged.
const subscriptionBuffer = 4096

// initialPending is the first capacity of a subscriber's pending buffer,
// allocated at its first event; it doubles on demand up to
// subscriptionBuffer. A buffer that grew past keptPending is released once
// taken, so an idle watch costs little after a burst too.
const (
	initialPending = 16
	keptPending    = 256
)

// Hub fans committed changes out to subscribers and keeps a bounded history
// of recent changes so that a subscriber can resume. It is safe for
// concurrent use.
type Hub struct {
	mu        sync.Mutex
	history   ring
	histBytes int64
	maxBytes  int64
	// compacted is the highest revision whose event is no longer held: a
	// subscriber may resume from any revision >= compacted.
	compacted uint64
	subs      map[*Subscription]struct{}
	closed    bool
}

func newHub(rev uint64, maxEvents int, maxBytes int64) *Hub {
	return &Hub{compacted: rev, history: ring{buf: make([]Event, maxEvents)}, maxBytes: maxBytes, subs: map[*Subscription]struct{}{}}
}

// Subscription delivers the changes under one prefix, in revision order.
// Its owner must call Close.
type Subscription struct {
	hub    *Hub
	prefix string
	// pending holds the events not yet taken, in order; guarded by hub.mu.
	pending []Event
	ready   chan struct{} // capacity 1: a value while pending may be non-empty
	done    chan struct{}
	err     error // set before done is closed

	eventsOnce sync.Once
	events     chan Event
}

// Ready receives a value when events may be pending; Take them.
func (s *Subscription) Ready() <-chan struct{} { return s.ready }

// Take returns the pending events in revision order, and takes back buf
// (the slice a previous Take returned, once its events are sent) to reuse
// it. The returned events are read-only.
func (s *Subscription) Take(buf []Event) []Event {
	clear(buf)
	if cap(buf) > keptPending {
		buf = nil
	}
	s.hub.mu.Lock()
	out := s.pending
	s.pending = buf[:0:cap(buf)]
	s.hub.mu.Unlock()
	return out
}

// Events returns a channel of the live changes, fed by a goroutine that
// Takes them until the subscription ends. It is for callers that prefer a
// channel (tests); use either Events or Ready and Take, not both.
func (s *Subscription) Events() <-chan Event {
	s.eventsOnce.Do(func() {
		s.events = make(chan Event)
		go func() {
			var batch []Event
			for {
				select {
				case <-s.ready:
					batch = s.Take(batch)
					for _, e := range batch {
						select {
						case s.events <- e:
						case <-s.done:
							return
						}
					}
				case <-s.done:
					return
				}
			}
		}()
	})
	return s.events
}

// Done is closed when the hub ends the subscription; Err then says why.
func (s *Subscription) Done() <-chan struct{} { return s.done }

// Err returns why the hub ended the subscription (ErrLagged or ErrClosed),
// or nil while it is live.
func (s *Subscription) Err() error {
	select {
	case <-s.done:
		return s.err
	default:
		return nil
	}
}

// Close unsubscribes. It is safe to call more than once.
func (s *Subscription) Close() {
	s.hub.mu.Lock()
	defer s.hub.mu.Unlock()
	s.hub.drop(s, nil)
}

// Subscribe starts a subscription to changes of keys under prefix. When
// resume is true, the changes after revision since that the hub still holds
// are returned to be sent first; if some of them are no longer held the error
// is ErrCompacted.
func (h *Hub) Subscribe(prefix string, since uint64, resume bool) ([]Event, *Subscription, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return nil, nil, ErrClosed
	}
	var replay []Event
	if resume {
		if since < h.compacted {
			return nil, nil, fmt.Errorf("%w: revision %d is older than the oldest held change (%d)", ErrCompacted, since, h.compacted+1)
		}
		for i := range h.history.n {
			if e := h.history.at(i); e.Revision > since && strings.HasPrefix(e.Key, prefix) {
				replay = append(replay, *e)
			}
		}
	}
	s := &Subscription{hub: h, prefix: prefix, ready: make(chan struct{}, 1), done: make(chan struct{})}
	h.subs[s] = struct{}{}
	return replay, s, nil
}

func (h *Hub) publish(events []Event) {
	if len(events) == 0 {
		return
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, e := range events {
		if h.history.full() {
			h.evictOldest()
		}
		h.history.push(e)
		h.histBytes += eventSize(e)
		for h.histBytes > h.maxBytes && h.history.n > 1 {
			h.evictOldest()
		}
		for s := range h.subs {
			if !strings.HasPrefix(e.Key, s.prefix) {
				continue
			}
			if len(s.pending) >= subscriptionBuffer {
				h.drop(s, ErrLagged)
				continue
			}
			if s.pending == nil {
				s.pending = make([]Event, 0, initialPending)
			}
			s.pending = append(s.pending, e) // doubles: at most subscriptionBuffer
			select {
			case s.ready <- struct{}{}:
			default:
			}
		}
	}
}

// evictOldest forgets the oldest held event; h.mu must be held.
func (h *Hub) evictOldest() {
	old := h.history.pop()
	h.histBytes -= eventSize(old)
	h.compacted = old.Revision
}

// ring is a fixed-capacity FIFO of events: O(1) to add and evict, however
// long the history.
type ring struct {
	buf  []Event
	head int // index of the oldest event
	n    int
}

func (r *ring) full() bool { return r.n == len(r.buf) }

func (r *ring) at(i int) *Event { return &r.buf[(r.head+i)%len(r.buf)] }

func (r *ring) push(e Event) {
	r.buf[(r.head+r.n)%len(r.buf)] = e
	r.n++
}

func (r *ring) pop() Event {
	e := r.buf[r.head]
	r.buf[r.head] = Event{} // release the value's memory
	r.head = (r.head + 1) % len(r.buf)
	r.n--
	return e
}

// drop removes s; h.mu must be held.
func (h *Hub) drop(s *Subscription, err error) {
	if _, ok := h.subs[s]; !ok {
		return
	}
	delete(h.subs, s)
	s.pending = nil
	s.err = err
	close(s.done)
}

func (h *Hub) watchers() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.subs)
}

// close ends every subscription with ErrClosed.
func (h *Hub) close() {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.closed = true
	for s := range h.subs {
		h.drop(s, ErrClosed)
	}
}

func eventSize(e Event) int64 {
	return int64(len(e.Key) + len(e.Value) + len(e.ContentType) + 64)
}

// reset forgets the history after the store's state was replaced: every
// subscription ends with ErrCompacted (its client re-reads and watches from
// the new revision), and resuming from before rev is refused.
func (h *Hub) reset(rev uint64) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for s := range h.subs {
		h.drop(s, ErrCompacted)
	}
	for h.history.n > 0 {
		h.history.pop()
	}
	h.histBytes = 0
	h.compacted = rev
}
