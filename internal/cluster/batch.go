package cluster

import (
	"context"
	"fmt"

	"kvstore.dev/kvstore/internal/store"
)

// A follower batches the proposals it forwards: those that arrive while
// earlier batches are on their way go together in one peer request to the
// leader (whose pacer puts them in one log entry with whatever else it
// has). Each proposal gets its own results back; the commands of a batch
// are applied in order, each with its own outcome. A batch's target is the
// leader's peer address.
const (
	forwardWorkers  = 4       // batches in flight at once
	forwardMaxBatch = 1024    // commands per batch
	forwardMaxBytes = 8 << 20 // value bytes per batch (a larger proposal goes alone)
)

func valueBytes(cmds []store.Command) (n int) {
	for _, c := range cmds {
		n += len(c.Value) + len(c.Key)
	}
	return n
}

type forwardReq struct {
	ctx    context.Context
	leader string
	cmds   []store.Command
	done   chan forwardRes // buffered: the worker never blocks on it
}

type forwardRes struct {
	results []store.Result
	err     error
}

// startForwarders starts the workers that send batched proposals; they
// end with stop.
func (c *peerClient) startForwarders() {
	c.forwardCh = make(chan *forwardReq, forwardMaxBatch)
	for range forwardWorkers {
		go c.forwardLoop()
	}
}

// forwardBatched queues cmds for the leader and waits for their results.
func (c *peerClient) forwardBatched(ctx context.Context, leader string, cmds []store.Command) ([]store.Result, error) {
	req := &forwardReq{ctx: ctx, leader: leader, cmds: cmds, done: make(chan forwardRes, 1)}
	select {
	case c.forwardCh <- req:
	case <-ctx.Done():
		return nil, fmt.Errorf("forward: %w before sending: %w", ctx.Err(), store.ErrNoQuorum)
	case <-c.stop:
		return nil, store.ErrClosed
	}
	select {
	case r := <-req.done:
		return r.results, r.err
	case <-ctx.Done():
		return nil, fmt.Errorf("forward: %w while the write was on its way: %w", ctx.Err(), store.ErrOutcomeUnknown)
	}
}

func (c *peerClient) forwardLoop() {
	for {
		var first *forwardReq
		select {
		case first = <-c.forwardCh:
		case <-c.stop:
			return
		}
		batch := []*forwardReq{first}
		count, size := len(first.cmds), valueBytes(first.cmds)
	drain:
		for count < forwardMaxBatch && size < forwardMaxBytes {
			select {
			case r := <-c.forwardCh:
				if r.leader != first.leader {
					// Sent on its own: the leader changed meanwhile.
					go c.sendBatch([]*forwardReq{r})
					continue
				}
				batch = append(batch, r)
				count += len(r.cmds)
				size += valueBytes(r.cmds)
			default:
				break drain
			}
		}
		c.sendBatch(batch)
	}
}

// sendBatch forwards a batch as one proposal and splits the results.
func (c *peerClient) sendBatch(batch []*forwardReq) {
	var cmds []store.Command
	live := batch[:0]
	for _, r := range batch {
		if r.ctx.Err() != nil { // its caller gave up before it was sent
			r.done <- forwardRes{err: fmt.Errorf("forward: %w before sending: %w", r.ctx.Err(), store.ErrNoQuorum)}
			continue
		}
		live = append(live, r)
		cmds = append(cmds, r.cmds...)
	}
	if len(live) == 0 {
		return
	}
	data, err := encodeCommands(cmds)
	if err == nil {
		var results []store.Result
		results, err = c.forward(live[0].leader, data)
		if err == nil && len(results) != len(cmds) {
			err = fmt.Errorf("forward: the leader answered %d results for %d commands: %w", len(results), len(cmds), store.ErrOutcomeUnknown)
		}
		if err == nil {
			for _, r := range live {
				r.done <- forwardRes{results: results[:len(r.cmds):len(r.cmds)]}
				results = results[len(r.cmds):]
			}
			return
		}
	}
	for _, r := range live {
		r.done <- forwardRes{err: err}
	}
}
