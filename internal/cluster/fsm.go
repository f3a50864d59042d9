package cluster

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/raft"

	"kvstore.dev/kvstore/internal/store"
)

// encodeCommands encodes a proposal as one log entry's data: a count, then
// each command's binary encoding with its length.
func encodeCommands(cmds []store.Command) ([]byte, error) {
	b := binary.AppendUvarint(nil, uint64(len(cmds)))
	for _, c := range cmds {
		enc, err := c.MarshalBinary()
		if err != nil {
			return nil, err
		}
		b = binary.AppendUvarint(b, uint64(len(enc)))
		b = append(b, enc...)
	}
	return b, nil
}

// stampCommands sets the Now of every command in data (encodeCommands'
// format) to now, in place: the leader's pacer stamps an entry this way
// just before it goes into the log.
func stampCommands(data []byte, now int64) error {
	n, k := binary.Uvarint(data)
	if k <= 0 || n > uint64(len(data)) {
		return errors.New("bad command count")
	}
	b := data[k:]
	for i := range n {
		l, k := binary.Uvarint(b)
		if k <= 0 || l > uint64(len(b)-k) {
			return fmt.Errorf("command %d: bad length", i)
		}
		if err := store.StampEncoded(b[k:k+int(l)], now); err != nil {
			return fmt.Errorf("command %d: %w", i, err)
		}
		b = b[k+int(l):]
	}
	if len(b) != 0 {
		return errors.New("trailing bytes after the commands")
	}
	return nil
}

func decodeCommands(b []byte) ([]store.Command, error) {
	n, k := binary.Uvarint(b)
	if k <= 0 || n > uint64(len(b)) {
		return nil, errors.New("bad command count")
	}
	b = b[k:]
	cmds := make([]store.Command, n)
	for i := range cmds {
		l, k := binary.Uvarint(b)
		if k <= 0 || l > uint64(len(b)-k) {
			return nil, fmt.Errorf("command %d: bad length", i)
		}
		if err := cmds[i].UnmarshalBinary(b[k : k+int(l)]); err != nil {
			return nil, fmt.Errorf("command %d: %w", i, err)
		}
		b = b[k+int(l):]
	}
	return cmds, nil
}

// applyResponse is what the FSM returns for one log entry.
type applyResponse struct {
	results []store.Result
	err     error
}

// fsm is the store as Raft's state machine. Raft calls it from one
// goroutine; applied is signalled after every batch for read barriers.
type fsm struct {
	st         *store.Store
	flusher    *store.Flusher // told after every batch (nil in tests)
	onSnapshot func(time.Duration)
	// clock is this node's write-path clock: the pacer stamps entries with
	// it while this node leads; every applied entry's stamp raises its
	// floor, so a new leader never stamps earlier than the entries before.
	clock *store.Stamper

	// last is the index of the last log entry this state machine has
	// processed. Raft's own AppliedIndex moves when entries are handed to
	// the state machine, before they are applied, so reads wait on this.
	last atomic.Uint64

	mu      sync.Mutex
	changed chan struct{} // closed and replaced after every apply
}

func newFSM(st *store.Store, clock *store.Stamper) *fsm {
	return &fsm{st: st, clock: clock, changed: make(chan struct{})}
}

// waitChan returns a channel closed at the next apply.
func (f *fsm) waitChan() <-chan struct{} {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.changed
}

func (f *fsm) notify() {
	f.mu.Lock()
	close(f.changed)
	f.changed = make(chan struct{})
	f.mu.Unlock()
}

// Apply implements raft.FSM.
func (f *fsm) Apply(l *raft.Log) any { return f.ApplyBatch([]*raft.Log{l})[0] }

// ApplyBatch implements raft.BatchingFSM: the command entries of logs are
// applied in one ApplyBuffered call. Entries the store already holds (at or
// below its applied index: replay after a restart) are skipped whole. Of an
// entry's commands only the last carries the entry's index, so the store's
// per-entry skip does not drop the others.
func (f *fsm) ApplyBatch(logs []*raft.Log) []any {
	out := make([]any, len(logs))
	applied := f.st.AppliedIndex()
	var entries []store.Entry
	type span struct{ log, from, n int }
	var spans []span
	for i, l := range logs {
		if l.Type != raft.LogCommand || l.Index <= applied {
			out[i] = &applyResponse{}
			continue
		}
		cmds, err := decodeCommands(l.Data)
		if err != nil {
			out[i] = &applyResponse{err: fmt.Errorf("log entry %d: %w", l.Index, err)}
			continue
		}
		spans = append(spans, span{i, len(entries), len(cmds)})
		if len(cmds) > 0 {
			f.clock.Observe(cmds[0].Now) // one stamp per entry
		}
		for j, c := range cmds {
			e := store.Entry{Command: c}
			if j == len(cmds)-1 {
				e.Index = l.Index
			}
			entries = append(entries, e)
		}
	}
	if len(entries) > 0 {
		results, err := f.st.ApplyBuffered(entries)
		for _, s := range spans {
			if err != nil {
				out[s.log] = &applyResponse{err: err}
			} else {
				out[s.log] = &applyResponse{results: results[s.from : s.from+s.n]}
			}
		}
		if err != nil {
			// The state machine could not apply a committed entry (a disk
			// error): continuing would diverge from the other nodes.
			panic(fmt.Sprintf("kvstore: cannot apply committed log entries: %v", err))
		}
		if f.flusher != nil {
			f.flusher.Applied()
		}
	}
	if n := len(logs); n > 0 && logs[n-1].Index > f.last.Load() {
		f.last.Store(logs[n-1].Index)
	}
	f.notify()
	return out
}

// Snapshot implements raft.FSM: it flushes and opens a read transaction now
// (no apply runs concurrently), and streams it later in Persist.
func (f *fsm) Snapshot() (raft.FSMSnapshot, error) {
	sn, err := f.st.OpenSnapshot()
	if err != nil {
		return nil, err
	}
	return &fsmSnapshot{sn: sn, start: time.Now(), done: f.onSnapshot}, nil
}

// Restore implements raft.FSM: the store's file is replaced by the
// snapshot's.
func (f *fsm) Restore(rc io.ReadCloser) error {
	defer rc.Close()
	st, err := f.st.ReplaceFrom(rc)
	if err != nil {
		return err
	}
	if st.AppliedIndex > f.last.Load() {
		f.last.Store(st.AppliedIndex)
	}
	f.notify()
	return nil
}

type fsmSnapshot struct {
	sn    *store.Snapshot
	start time.Time
	done  func(time.Duration)
}

func (s *fsmSnapshot) Persist(sink raft.SnapshotSink) error {
	if _, err := s.sn.WriteTo(sink); err != nil {
		_ = sink.Cancel()
		return fmt.Errorf("persist snapshot: %w", err)
	}
	if err := sink.Close(); err != nil {
		return err
	}
	if s.done != nil {
		s.done(time.Since(s.start))
	}
	return nil
}

func (s *fsmSnapshot) Release() { _ = s.sn.Close() }
