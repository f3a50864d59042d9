package store

import (
	"context"
	"sync"
	"time"
)

// Proposer is how writers submit commands: a Committer on a single node, a
// replication layer in a cluster. Propose returns one Result per command,
// after the commands are durably applied, or an error when none of them was
// applied (or, for a replicated proposer, when the outcome is unknown).
type Proposer interface {
	Propose(ctx context.Context, cmds ...Command) ([]Result, error)
}

// Committer is the single-node Proposer. It numbers commands as log entries
// and applies everything queued while the previous batch was being written as
// one transaction: one fsync acknowledges every writer in the batch. It is
// safe for concurrent use; Close stops it.
type Committer struct {
	store    *Store
	clock    func() time.Time
	maxBatch int

	queue    chan *proposal
	stop     chan struct{}
	done     chan struct{}
	stopOnce sync.Once
}

type proposal struct {
	cmds    []Command
	results []Result
	err     error
	done    chan struct{}
}

// DefaultMaxBatch is the default cap on commands per transaction.
const DefaultMaxBatch = 1000

// NewCommitter starts a committer applying to s. clock stamps commands that
// carry no Now (nil means time.Now); maxBatch <= 0 means DefaultMaxBatch.
func NewCommitter(s *Store, clock func() time.Time, maxBatch int) *Committer {
	if clock == nil {
		clock = time.Now
	}
	if maxBatch <= 0 {
		maxBatch = DefaultMaxBatch
	}
	c := &Committer{
		store:    s,
		clock:    clock,
		maxBatch: maxBatch,
		queue:    make(chan *proposal, maxBatch),
		stop:     make(chan struct{}),
		done:     make(chan struct{}),
	}
	go c.loop()
	return c
}

// Propose queues cmds and waits until they are committed. Once queued, the
// proposal is waited for even if ctx ends, so that the caller learns the
// outcome of a write that may have been applied.
func (c *Committer) Propose(ctx context.Context, cmds ...Command) ([]Result, error) {
	now := c.clock().UnixNano()
	for i := range cmds {
		if cmds[i].Now == 0 {
			cmds[i].Now = now
		}
	}
	p := &proposal{cmds: cmds, done: make(chan struct{})}
	select {
	case c.queue <- p:
	case <-ctx.Done():
		return nil, ctx.Err()
	case <-c.stop:
		return nil, ErrClosed
	}
	<-p.done
	return p.results, p.err
}

// Close stops accepting proposals, commits what was already queued, and
// waits for the loop to end.
func (c *Committer) Close() {
	c.stopOnce.Do(func() { close(c.stop) })
	<-c.done
}

func (c *Committer) loop() {
	defer close(c.done)
	batch := make([]*proposal, 0, 64)
	for {
		var first *proposal
		select {
		case first = <-c.queue:
		case <-c.stop:
			// Proposals that won the race with stop are still committed.
			for {
				select {
				case p := <-c.queue:
					c.commit([]*proposal{p})
				default:
					return
				}
			}
		}
		batch = append(batch[:0], first)
		n := len(first.cmds)
	drain:
		for n < c.maxBatch {
			select {
			case p := <-c.queue:
				batch = append(batch, p)
				n += len(p.cmds)
			default:
				break drain
			}
		}
		c.commit(batch)
	}
}

func (c *Committer) commit(batch []*proposal) {
	var entries []Entry
	next := c.store.AppliedIndex() + 1
	for _, p := range batch {
		for _, cmd := range p.cmds {
			entries = append(entries, Entry{Index: next, Command: cmd})
			next++
		}
	}
	results, err := c.store.Apply(entries)
	off := 0
	for _, p := range batch {
		if err != nil {
			p.err = err
		} else {
			p.results = results[off : off+len(p.cmds)]
		}
		off += len(p.cmds)
		close(p.done)
	}
}
