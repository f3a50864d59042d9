package store

import (
	"encoding/binary"
	"sync"
	"time"
)

// The write path's clock. Every command is stamped with Now in one place,
// by whoever puts it in the log: the leader's pacer when it builds a log
// entry (for its own clients' writes and the ones its followers forward
// alike; a single node is its own leader).
// The applier never reads a clock: it compares expiries with the command's
// Now, so replaying an entry on any node, at any time, decides the same.
// Whatever Now a proposer sets is replaced.

// Stamper hands out the stamps of the write path: the clock's reading in
// Unix nanoseconds, but never earlier than a stamp it handed out before or
// a stamp it was told was applied (Observe), so that the log's clock does
// not run backwards when the wall clock steps back or leadership moves to
// a node whose clock is behind. Safe for concurrent use.
type Stamper struct {
	clock func() time.Time

	mu   sync.Mutex
	last int64
}

// NewStamper returns a Stamper reading clock (time.Now when nil).
func NewStamper(clock func() time.Time) *Stamper {
	if clock == nil {
		clock = time.Now
	}
	return &Stamper{clock: clock}
}

// Now returns the next stamp.
func (s *Stamper) Now() int64 {
	now := s.clock().UnixNano()
	s.mu.Lock()
	defer s.mu.Unlock()
	if now < s.last {
		now = s.last
	}
	s.last = now
	return now
}

// Observe raises the floor of later stamps to now, a stamp seen in the log.
func (s *Stamper) Observe(now int64) {
	s.mu.Lock()
	if now > s.last {
		s.last = now
	}
	s.mu.Unlock()
}

// Stamp sets every command's Now to one new stamp and returns it.
func (s *Stamper) Stamp(cmds []Command) int64 {
	now := s.Now()
	for i := range cmds {
		cmds[i].Now = now
	}
	return now
}

// nowOffset is where MarshalBinary puts Now.
const nowOffset = 19

// StampEncoded sets Now in enc, a command encoded by MarshalBinary, in
// place: the leader stamps the commands of a log entry without decoding
// them again.
func StampEncoded(enc []byte, now int64) error {
	if len(enc) < nowOffset+8 || enc[0] != commandVersion {
		return errBadCommand
	}
	binary.BigEndian.PutUint64(enc[nowOffset:], uint64(now))
	return nil
}
