package cluster

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"time"

	"github.com/hashicorp/raft"

	"kvstore.dev/kvstore/internal/store"
)

// The leader's pacer turns every proposal it receives (its own clients'
// writes and the batches followers forward) into as few log entries as it
// can: one entry is in Raft at a time, and whatever arrives meanwhile goes
// into the next one. Each log write costs every node a bbolt commit (two
// fsyncs) and a replication round, and Raft handles one log write at a
// time on each node anyway, so many small entries in flight only queue
// behind each other: one large entry per round is cheaper for every node
// and no slower for the writes in it (docs/benchmarks.md, three-node run:
// about +20% throughput at 64 clients over letting every proposal append
// its own entry; two entries in flight measured slower than one).
const pacerInFlight = 1

const (
	pacerMaxCmds  = 4096    // commands per entry
	pacerMaxBytes = 8 << 20 // encoded bytes per entry (a larger proposal goes alone)
)

// pacer feeds the log. apply is raft.Raft.Apply (a fake in tests). It is
// also where a cluster's writes get their clock: each entry's commands,
// the leader's own and the ones forwarded to it alike, are stamped with
// one reading of clock as the entry is built (store.Stamper, clock.go in
// internal/store), so every node applies them with the leader's Now.
type pacer struct {
	ch      chan *pacerReq
	slots   chan struct{} // one token per entry in flight; hold takes them all
	stop    <-chan struct{}
	apply   func(data []byte, timeout time.Duration) raft.ApplyFuture
	timeout time.Duration
	clock   *store.Stamper
	// room, if set, holds the next entry back while the store's buffer is
	// past its cap (store.Flusher.WaitForRoom): the writes in it wait for
	// a flush, or fail with the flush's error.
	room func(context.Context) error
	// logFull, if set, reports whether the log store's last write failed
	// for want of disk space (logStore.full).
	logFull func() bool
}

type pacerReq struct {
	data []byte // encodeCommands' format without the count
	n    int    // commands in data
	done chan pacerRes
}

type pacerRes struct {
	results []store.Result
	err     error
}

func newPacer(stop <-chan struct{}, timeout time.Duration, clock *store.Stamper, apply func([]byte, time.Duration) raft.ApplyFuture) *pacer {
	return &pacer{ch: make(chan *pacerReq, 4*pacerMaxCmds), slots: make(chan struct{}, pacerInFlight), stop: stop, apply: apply, timeout: timeout, clock: clock}
}

// propose appends data (encodeCommands' format) to the log, as leader, in
// the next entry, and waits for its results. Errors are those of
// applyOutcome, or the caller's context or the node ending.
func (p *pacer) propose(ctx context.Context, data []byte) ([]store.Result, error) {
	req, err := p.enqueue(ctx, data)
	if err != nil {
		return nil, err
	}
	return p.wait(ctx, req)
}

func (p *pacer) enqueue(ctx context.Context, data []byte) (*pacerReq, error) {
	count, k := binary.Uvarint(data)
	if k <= 0 || count > uint64(len(data)) {
		return nil, errors.New("propose: bad command count")
	}
	req := &pacerReq{data: data[k:], n: int(count), done: make(chan pacerRes, 1)}
	select {
	case p.ch <- req:
		return req, nil
	case <-ctx.Done():
		return nil, fmt.Errorf("propose: %w before the write reached the log: %w", ctx.Err(), store.ErrNoQuorum)
	case <-p.stop:
		return nil, store.ErrClosed
	}
}

func (p *pacer) wait(ctx context.Context, req *pacerReq) ([]store.Result, error) {
	select {
	case r := <-req.done:
		return r.results, r.err
	case <-ctx.Done():
		return nil, fmt.Errorf("propose: %w while the write was in the log: %w", ctx.Err(), store.ErrOutcomeUnknown)
	case <-p.stop:
		return nil, fmt.Errorf("propose: node closed while the write was queued or in the log: %w", store.ErrOutcomeUnknown)
	}
}

// loop waits for a proposal, then for room in the store's buffer, then for
// a slot, then takes everything
// queued meanwhile (up to the entry limits), appends it as one entry and
// hands its outcome to every proposal in it once applied here, which frees
// the slot. An idle loop holds no slot, so hold gets one at once.
func (p *pacer) loop() {
	slots := p.slots
	var carry *pacerReq // taken from the channel but it did not fit
	for {
		var batch []*pacerReq
		if carry != nil {
			batch, carry = append(batch, carry), nil
		} else {
			select {
			case r := <-p.ch:
				batch = append(batch, r)
			case <-p.stop:
				return
			}
		}
		if p.room != nil {
			if err := p.room(context.Background()); err != nil {
				for _, r := range batch {
					r.done <- pacerRes{err: fmt.Errorf("propose: %w", err)}
				}
				continue
			}
		}
		select {
		case slots <- struct{}{}:
		case <-p.stop:
			return
		}
		cmds, size := batch[0].n, len(batch[0].data)
	drain:
		for cmds < pacerMaxCmds && size < pacerMaxBytes {
			select {
			case r := <-p.ch:
				if cmds+r.n > pacerMaxCmds || size+len(r.data) > pacerMaxBytes {
					carry = r
					break drain
				}
				batch = append(batch, r)
				cmds += r.n
				size += len(r.data)
			default:
				break drain
			}
		}
		data := binary.AppendUvarint(make([]byte, 0, size+binary.MaxVarintLen64), uint64(cmds))
		for _, r := range batch {
			data = append(data, r.data...)
		}
		if err := stampCommands(data, p.clock.Now()); err != nil {
			<-slots
			for _, r := range batch {
				r.done <- pacerRes{err: fmt.Errorf("propose: stamp the entry's clock: %w", err)}
			}
			continue
		}
		f := p.apply(data, p.timeout)
		go func() {
			results, err := applyOutcome(f, p.timeout, p.logFull)
			<-slots
			if err == nil && len(results) != cmds {
				err = fmt.Errorf("propose: the state machine answered %d results for %d commands: %w", len(results), cmds, store.ErrOutcomeUnknown)
			}
			for _, r := range batch {
				if err != nil {
					r.done <- pacerRes{err: err}
					continue
				}
				r.done <- pacerRes{results: results[:r.n:r.n]}
				results = results[r.n:]
			}
		}()
	}
}

// applyOutcome waits for an entry to be applied here and maps Raft's
// errors: not leader (retried elsewhere), not taken in time (not applied),
// shut down, lost leadership (may have been applied), or the leader's own
// log store refusing the entry on a full disk (logFull: not stored, so not
// applied; the one entry in flight is the one refused).
func applyOutcome(f raft.ApplyFuture, timeout time.Duration, logFull func() bool) ([]store.Result, error) {
	switch err := f.Error(); {
	case err == nil:
	case errors.Is(err, raft.ErrNotLeader), errors.Is(err, raft.ErrLeadershipTransferInProgress):
		return nil, errNotLeader
	case errors.Is(err, raft.ErrEnqueueTimeout):
		return nil, fmt.Errorf("propose: the log did not take the write in %v: %w", timeout, store.ErrNoQuorum)
	case errors.Is(err, raft.ErrRaftShutdown):
		return nil, fmt.Errorf("propose: %w", store.ErrClosed)
	case errors.Is(err, raft.ErrLeadershipLost), errors.Is(err, raft.ErrAbortedByRestore):
		return nil, fmt.Errorf("propose: leadership lost while the write was in the log (%v): %w", err, store.ErrOutcomeUnknown)
	case logFull != nil && logFull():
		return nil, fmt.Errorf("propose: the raft log cannot store the write: %v: %w", err, store.ErrNoSpace)
	default:
		return nil, fmt.Errorf("propose: %w: %w", err, store.ErrOutcomeUnknown)
	}
	resp, ok := f.Response().(*applyResponse)
	if !ok {
		return nil, fmt.Errorf("propose: unexpected state machine response %T", f.Response())
	}
	return resp.results, resp.err
}

// hold stops the pacer from appending entries: it returns once the entry
// in flight (if any) has been applied here, and until release is called
// proposals wait in the queue. A leadership hand-off holds the pacer so
// that no client write is in the log uncommitted when leadership moves;
// the writes queued meanwhile are refused as not-leader afterwards and
// retried through the new leader.
func (p *pacer) hold(ctx context.Context) (release func(), err error) {
	taken := 0
	release = func() {
		for range taken {
			<-p.slots
		}
	}
	for taken < pacerInFlight {
		select {
		case p.slots <- struct{}{}:
			taken++
		case <-ctx.Done():
			release()
			return nil, fmt.Errorf("hold the pacer: %w", ctx.Err())
		case <-p.stop:
			release()
			return nil, store.ErrClosed
		}
	}
	return release, nil
}
