// Package single is the write path of a server without Raft: a
// [Committer] numbers the commands proposed to it as log entries, appends
// them to a write-ahead log (internal/wal) with one fdatasync per batch
// (group commit), applies them to the store's buffered state and answers
// the writers; the store's Flusher writes that state to bbolt and the WAL
// is truncated behind it. On start the WAL's entries after the store's
// applied index are replayed.
//
// The Committer implements backend.WritePath as a cluster of one: it is
// its own leader, every read is already linearizable, and membership
// changes are refused as not clustered.
package single

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"kvstore.dev/kvstore/internal/errcode"
	"kvstore.dev/kvstore/internal/store"
	"kvstore.dev/kvstore/internal/wal"
	"kvstore.dev/kvstore/wire"
)

// Options tune a Committer; zero fields take the defaults.
type Options struct {
	Clock    func() time.Time // the clock that stamps every command's Now at commit; time.Now
	MaxBatch int              // commands per group commit; 1000
	// Flush says when buffered changes are written to the store's bbolt
	// file, and past which buffer writers wait (store.FlushPolicy; zero
	// fields take store.DefaultFlushPolicy(false)).
	Flush  store.FlushPolicy
	Logger *slog.Logger
	// OnAppend, if set, is called after each WAL group commit with the
	// batch's size and how long the fsynced append took.
	OnAppend func(entries int, d time.Duration)
}

// Committer is the single-node write path. It numbers commands as log
// entries and, for everything queued while the previous batch was being
// written, appends the batch to the WAL in one fsynced write (group
// commit), applies it to the store's buffered state, and answers every
// writer. Its store.Flusher writes the buffered state to the store's bbolt
// file; the WAL is truncated behind it. Without a WAL, each batch is
// flushed to bbolt before it is acknowledged. Safe for concurrent use;
// Close stops it.
type Committer struct {
	store   *store.Store
	wal     *wal.Log
	opts    Options
	log     *slog.Logger
	clock   *store.Stamper // stamps each batch's commands
	flusher *store.Flusher // nil without a WAL

	queue    chan *proposal
	stop     chan struct{}
	done     chan struct{} // the commit loop has ended
	stopOnce sync.Once

	mu        sync.Mutex
	broken    error  // set when the WAL and the store may disagree
	truncated uint64 // WAL entries up to here are gone; the flusher's
}

type proposal struct {
	cmds    []store.Command
	results []store.Result
	err     error
	done    chan struct{}
}

// DefaultMaxBatch is the default cap on commands per group commit.
const DefaultMaxBatch = 1000

// New replays the WAL entries the store has not applied yet, flushes
// them, and starts committing. w may be nil; the committer closes it (once
// New has succeeded).
func New(s *store.Store, w *wal.Log, opts Options) (*Committer, error) {
	if opts.Clock == nil {
		opts.Clock = time.Now
	}
	if opts.MaxBatch <= 0 {
		opts.MaxBatch = DefaultMaxBatch
	}
	opts.Flush = opts.Flush.WithDefaults(store.DefaultFlushPolicy(false))
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	c := &Committer{
		store: s, wal: w, opts: opts, log: opts.Logger, clock: store.NewStamper(opts.Clock),
		queue: make(chan *proposal, opts.MaxBatch),
		stop:  make(chan struct{}),
		done:  make(chan struct{}),
	}
	if w != nil {
		if err := c.recover(); err != nil {
			return nil, err
		}
		c.flusher = store.StartFlusher(s, opts.Flush, opts.Logger, func() { c.truncate(uint64(opts.Flush.MaxKeys)) })
	}
	go c.loop()
	return c, nil
}

// recover applies the WAL's tail: entries acknowledged before a crash but
// not yet flushed to bbolt.
func (c *Committer) recover() error {
	replayed := 0
	err := c.wal.Replay(c.store.AppliedIndex(), c.opts.MaxBatch, func(entries []store.Entry) error {
		replayed += len(entries)
		for _, e := range entries {
			c.clock.Observe(e.Command.Now)
		}
		_, err := c.store.ApplyBuffered(entries)
		return err
	})
	if err != nil {
		return fmt.Errorf("replay wal: %w", err)
	}
	if err := c.store.Flush(); err != nil {
		// Still serve reads (the replayed entries are buffered and the WAL
		// keeps them); past the flush policy's cap writes wait for a flush
		// to succeed.
		c.log.Error("flush after wal replay failed; serving reads, writes wait for it", "err", err)
	} else {
		c.truncate(0)
	}
	if replayed > 0 {
		c.log.Info("replayed write-ahead log", "entries", replayed, "applied_index", c.store.AppliedIndex())
	}
	return nil
}

// Propose queues cmds and waits until they are committed. Once queued, the
// proposal is waited for even if ctx ends, so that the caller learns the
// outcome of a write that may have been applied. The commands are stamped
// with the committer's clock when their batch is numbered; any Now they
// carry is replaced, and cmds is not modified.
func (c *Committer) Propose(ctx context.Context, cmds ...store.Command) ([]store.Result, error) {
	p := &proposal{cmds: cmds, done: make(chan struct{})}
	select {
	case c.queue <- p:
	case <-ctx.Done():
		return nil, ctx.Err()
	case <-c.stop:
		return nil, store.ErrClosed
	}
	select {
	case <-p.done:
	case <-c.done:
		// The loop ended; it finishes every proposal it took before that,
		// so one still open was never taken.
		select {
		case <-p.done:
		default:
			return nil, store.ErrClosed
		}
	}
	return p.results, p.err
}

// Ready returns why writes cannot succeed now, or nil.
func (c *Committer) Ready() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.broken
}

// ReadBarrier returns at once: a single node's reads are linearizable.
func (c *Committer) ReadBarrier(context.Context, string) (time.Duration, error) { return 0, nil }

// ClusterStatus describes a cluster of one: this node, its own leader.
func (c *Committer) ClusterStatus(context.Context) (wire.ClusterStatus, error) {
	applied := c.store.AppliedIndex()
	self := wire.NodeStatus{State: wire.StateLeader, CommitIndex: applied, AppliedIndex: applied}
	return wire.ClusterStatus{Self: self, Members: []wire.Member{{Suffrage: wire.SuffrageVoter, Leader: true, Status: &self}}}, nil
}

var errNotClustered = fmt.Errorf("this server runs without cluster mode: %w", errcode.ErrNotClustered)

// AddMember refuses: a single node has no cluster to change.
func (c *Committer) AddMember(context.Context, wire.AddMemberRequest) error { return errNotClustered }

// RemoveMember refuses, as AddMember.
func (c *Committer) RemoveMember(context.Context, string) error { return errNotClustered }

// HandOff does nothing: there is no one to hand off to.
func (c *Committer) HandOff(context.Context) error { return nil }

// Sweeps is true: a single node expires its own keys.
func (c *Committer) Sweeps() bool { return true }

// Close stops accepting proposals, commits what was already queued, stops
// the flusher, flushes and closes the WAL. The store stays open.
func (c *Committer) Close() error {
	var err error
	c.stopOnce.Do(func() {
		close(c.stop)
		<-c.done
		if c.wal == nil {
			return
		}
		c.flusher.Close()
		c.finalFlush()
		err = c.wal.Close()
	})
	return err
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
		for n < c.opts.MaxBatch {
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
	results, err := c.commitEntries(batch)
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

func (c *Committer) commitEntries(batch []*proposal) ([]store.Result, error) {
	if err := c.Ready(); err != nil {
		return nil, err
	}
	var entries []store.Entry
	next := c.store.AppliedIndex() + 1
	now := c.clock.Now() // the one clock reading of the batch, as the leader's pacer does
	for _, p := range batch {
		for _, cmd := range p.cmds {
			cmd.Now = now
			entries = append(entries, store.Entry{Index: next, Command: cmd})
			next++
		}
	}
	if c.wal == nil {
		return c.store.Apply(entries)
	}
	if err := c.flusher.WaitForRoom(context.Background()); err != nil {
		return nil, err
	}
	start := time.Now()
	if err := c.wal.Append(entries); err != nil {
		return nil, err
	}
	if c.opts.OnAppend != nil {
		c.opts.OnAppend(len(entries), time.Since(start))
	}
	results, err := c.store.ApplyBuffered(entries)
	if err != nil {
		// The WAL holds entries the store refused: forget them, or a replay
		// would apply them. If even that fails, stop taking writes.
		if terr := c.wal.TruncateAfter(c.store.AppliedIndex()); terr != nil {
			c.mu.Lock()
			c.broken = fmt.Errorf("%w: wal and store disagree: %w", store.ErrClosed, errors.Join(err, terr))
			c.mu.Unlock()
			c.log.Error("committer stopped taking writes", "err", c.broken)
		}
		return nil, err
	}
	c.flusher.Applied()
	return results, nil
}

// truncate forgets the WAL entries the store has made durable, once at
// least every entries more are (the flusher passes MaxKeys).
func (c *Committer) truncate(every uint64) {
	if d := c.store.DurableIndex(); d >= c.truncated+every {
		if err := c.wal.TruncateThrough(d); err != nil {
			c.log.Warn("wal truncation failed", "err", err)
		} else {
			c.truncated = d
		}
	}
}

func (c *Committer) finalFlush() {
	if err := c.store.Flush(); err != nil {
		c.log.Error("final flush failed; the wal keeps the writes", "err", err)
		return
	}
	c.truncate(0)
}
