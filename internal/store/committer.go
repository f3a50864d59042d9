package store

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
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

// CommitterOptions tune a Committer; zero fields take the defaults.
type CommitterOptions struct {
	Clock    func() time.Time // the clock that stamps every command's Now at commit; time.Now
	MaxBatch int              // commands per group commit; 1000
	// FlushInterval and FlushKeys say when buffered changes are written to
	// the store's bbolt file: every interval, or sooner once this many keys
	// wait. Defaults 100ms and 10000.
	FlushInterval time.Duration
	FlushKeys     int
	// MaxBufferedKeys makes writers wait for a flush beyond this many
	// buffered keys (and fail while flushes fail); 4 × FlushKeys.
	MaxBufferedKeys int
	Logger          *slog.Logger
	// OnAppend, if set, is called after each WAL group commit with the
	// batch's size and how long the fsynced append took.
	OnAppend func(entries int, d time.Duration)
}

// Committer is the single-node Proposer. It numbers commands as log
// entries and, for everything queued while the previous batch was being
// written, appends the batch to the WAL in one fsynced transaction (group
// commit), applies it to the store's buffered state, and answers every
// writer. A background flusher writes the buffered state to the store's
// bbolt file and truncates the WAL behind it. Without a WAL, each batch is
// flushed to bbolt before it is acknowledged. Safe for concurrent use; Close
// stops it.
type Committer struct {
	store *Store
	wal   *WAL
	opts  CommitterOptions
	log   *slog.Logger
	clock *Stamper // stamps each batch's commands (clock.go)

	queue       chan *proposal
	stop        chan struct{}
	done        chan struct{} // the commit loop has ended
	flusherDone chan struct{} // the flush loop has ended
	stopOnce    sync.Once

	kick      chan struct{} // asks the flusher to flush now
	flushed   chan struct{} // the flusher finished a flush
	mu        sync.Mutex
	flushErr  error  // last flush's error, nil once one succeeds
	broken    error  // set when the WAL and the store may disagree
	truncated uint64 // WAL entries up to here are gone
}

type proposal struct {
	cmds    []Command
	results []Result
	err     error
	done    chan struct{}
}

// DefaultMaxBatch is the default cap on commands per group commit.
const DefaultMaxBatch = 1000

// NewCommitter replays the WAL entries the store has not applied yet,
// flushes them, and starts committing. wal may be nil.
func NewCommitter(s *Store, wal *WAL, opts CommitterOptions) (*Committer, error) {
	if opts.Clock == nil {
		opts.Clock = time.Now
	}
	if opts.MaxBatch <= 0 {
		opts.MaxBatch = DefaultMaxBatch
	}
	if opts.FlushInterval <= 0 {
		opts.FlushInterval = 100 * time.Millisecond
	}
	if opts.FlushKeys <= 0 {
		opts.FlushKeys = 10_000
	}
	if opts.MaxBufferedKeys <= 0 {
		opts.MaxBufferedKeys = 4 * opts.FlushKeys
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	c := &Committer{
		store: s, wal: wal, opts: opts, log: opts.Logger, clock: NewStamper(opts.Clock),
		queue:       make(chan *proposal, opts.MaxBatch),
		stop:        make(chan struct{}),
		done:        make(chan struct{}),
		flusherDone: make(chan struct{}),
		kick:        make(chan struct{}, 1),
		flushed:     make(chan struct{}, 1),
	}
	if wal != nil {
		if err := c.recover(); err != nil {
			return nil, err
		}
		go c.flushLoop()
	} else {
		close(c.flusherDone)
	}
	go c.loop()
	return c, nil
}

// recover applies the WAL's tail: entries acknowledged before a crash but
// not yet flushed to bbolt.
func (c *Committer) recover() error {
	replayed := 0
	err := c.wal.Replay(c.store.AppliedIndex(), c.opts.MaxBatch, func(entries []Entry) error {
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
		// keeps them); writes wait for a flush to succeed.
		c.flushErr = err
		c.log.Error("flush after wal replay failed; serving reads, writes wait for it", "err", err)
	} else if err := c.wal.TruncateThrough(c.store.DurableIndex()); err != nil {
		c.log.Warn("wal truncation failed", "err", err)
	} else {
		c.truncated = c.store.DurableIndex()
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
func (c *Committer) Propose(ctx context.Context, cmds ...Command) ([]Result, error) {
	p := &proposal{cmds: cmds, done: make(chan struct{})}
	select {
	case c.queue <- p:
	case <-ctx.Done():
		return nil, ctx.Err()
	case <-c.stop:
		return nil, ErrClosed
	}
	select {
	case <-p.done:
	case <-c.done:
		// The loop ended; it finishes every proposal it took before that,
		// so one still open was never taken.
		select {
		case <-p.done:
		default:
			return nil, ErrClosed
		}
	}
	return p.results, p.err
}

// Healthy returns why writes cannot succeed now, or nil.
func (c *Committer) Healthy() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.broken != nil {
		return c.broken
	}
	return nil
}

// Close stops accepting proposals, commits what was already queued, waits
// for both loops to end, and flushes.
func (c *Committer) Close() {
	c.stopOnce.Do(func() {
		close(c.stop)
		<-c.done
		<-c.flusherDone
		c.finalFlush()
	})
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

func (c *Committer) commitEntries(batch []*proposal) ([]Result, error) {
	if err := c.Healthy(); err != nil {
		return nil, err
	}
	var entries []Entry
	next := c.store.AppliedIndex() + 1
	now := c.clock.Now() // the one clock reading of the batch, as the leader's pacer does
	for _, p := range batch {
		for _, cmd := range p.cmds {
			cmd.Now = now
			entries = append(entries, Entry{Index: next, Command: cmd})
			next++
		}
	}
	if c.wal == nil {
		return c.store.Apply(entries)
	}
	if err := c.waitForRoom(); err != nil {
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
			c.broken = fmt.Errorf("%w: wal and store disagree: %w", ErrClosed, errors.Join(err, terr))
			c.mu.Unlock()
			c.log.Error("committer stopped taking writes", "err", c.broken)
		}
		return nil, err
	}
	if keys, _ := c.store.Buffered(); keys >= c.opts.FlushKeys {
		c.signal(c.kick)
	}
	return results, nil
}

// waitForRoom holds writers back while too much waits to be flushed, and
// fails them while flushes fail (for example, the disk is full): each wait
// asks for a fresh flush attempt, so writes resume as soon as one succeeds.
func (c *Committer) waitForRoom() error {
	for {
		if keys, _ := c.store.Buffered(); keys < c.opts.MaxBufferedKeys {
			return nil
		}
		c.signal(c.kick)
		select {
		case <-c.flushed:
		case <-time.After(c.opts.FlushInterval):
		}
		c.mu.Lock()
		ferr := c.flushErr
		c.mu.Unlock()
		if keys, _ := c.store.Buffered(); ferr != nil && keys >= c.opts.MaxBufferedKeys {
			return ferr
		}
	}
}

func (c *Committer) signal(ch chan struct{}) {
	select {
	case ch <- struct{}{}:
	default:
	}
}

func (c *Committer) flushLoop() {
	t := time.NewTicker(c.opts.FlushInterval)
	defer t.Stop()
	defer close(c.flusherDone)
	for {
		select {
		case <-c.stop:
			return
		case <-t.C:
		case <-c.kick:
		}
		c.flush()
	}
}

// flush writes the buffered state to bbolt and, every so often, truncates
// the WAL behind it.
func (c *Committer) flush() {
	err := c.store.Flush()
	c.mu.Lock()
	if err != nil && c.flushErr == nil {
		c.log.Error("flush failed; writes wait for it", "err", err)
	}
	if err == nil && c.flushErr != nil {
		c.log.Info("flush recovered")
	}
	c.flushErr = err
	c.mu.Unlock()
	if err == nil {
		if d := c.store.DurableIndex(); d >= c.truncated+uint64(c.opts.FlushKeys) {
			if err := c.wal.TruncateThrough(d); err != nil {
				c.log.Warn("wal truncation failed", "err", err)
			} else {
				c.truncated = d
			}
		}
	}
	c.signal(c.flushed)
}

func (c *Committer) finalFlush() {
	if c.wal == nil {
		return
	}
	if err := c.store.Flush(); err != nil {
		c.log.Error("final flush failed; the wal keeps the writes", "err", err)
		return
	}
	if err := c.wal.TruncateThrough(c.store.DurableIndex()); err != nil {
		c.log.Warn("wal truncation failed", "err", err)
	}
}
