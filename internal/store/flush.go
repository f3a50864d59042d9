package store

import (
	"context"
	"fmt"
	"log/slog"
	"sort"
	"sync"
	"time"
)

// Flush writes the unflushed layers to bbolt in one transaction (fsynced),
// with the counters and applied index as of the last entry they hold. New
// entries keep being applied while a flush runs; they go to a fresh active
// layer. If the write fails (for example ErrNoSpace) nothing is lost: the
// layer stays readable and the next Flush retries it. Flushes are
// serialized; a flush with nothing to write does nothing.
func (s *Store) Flush() error {
	s.flushMu.Lock()
	defer s.flushMu.Unlock()

	s.memMu.Lock()
	if s.flushing == nil {
		if len(s.active.entries) == 0 && s.active.meta == (counters{}) {
			s.memMu.Unlock()
			return nil
		}
		s.flushing, s.active = s.active, newMemtable()
	}
	m := s.flushing
	s.memMu.Unlock()

	start := time.Now()
	tx, err := s.db.Begin(true)
	if err != nil {
		return fmt.Errorf("flush: begin: %w", classify(err))
	}
	kvb, ttl, meta := tx.Bucket(bucketKV), tx.Bucket(bucketTTL), tx.Bucket(bucketMeta)
	kvb.FillPercent, ttl.FillPercent = fillPercent, fillPercent
	keys := make([]string, 0, len(m.entries))
	for k := range m.entries {
		keys = append(keys, k)
	}
	sort.Strings(keys) // in-order inserts fill pages and touch each once
	err = func() error {
		for _, key := range keys {
			e := m.entries[key]
			k := []byte(key)
			if old := kvb.Get(k); old != nil {
				r, err := decodeRecord(old, false)
				if err != nil {
					return fmt.Errorf("key %q: %w", key, err)
				}
				if r.ExpiresAt != 0 {
					if err := ttl.Delete(ttlIndexKey(r.ExpiresAt, key)); err != nil {
						return err
					}
				}
			}
			if e.deleted {
				if err := kvb.Delete(k); err != nil {
					return err
				}
				continue
			}
			if err := kvb.Put(k, e.rec.encode()); err != nil {
				return err
			}
			if e.rec.ExpiresAt != 0 {
				if err := ttl.Put(ttlIndexKey(e.rec.ExpiresAt, key), nil); err != nil {
					return err
				}
			}
		}
		if m.meta != (counters{}) {
			for k, v := range map[string]uint64{string(metaRevision): m.meta.rev, string(metaAppliedIndex): m.meta.applied, string(metaKeyCount): uint64(m.meta.keys)} {
				if err := meta.Put([]byte(k), u64bytes(v)); err != nil {
					return err
				}
			}
		}
		return nil
	}()
	if err != nil {
		_ = tx.Rollback()
		return fmt.Errorf("flush: %w", classify(err))
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("flush: commit: %w", classify(err))
	}
	stats := tx.Stats()

	s.memMu.Lock()
	s.flushing = nil
	s.memMu.Unlock()
	if m.meta != (counters{}) {
		s.durable.Store(m.meta.applied)
	}
	if s.opts.OnFlush != nil {
		s.opts.OnFlush(FlushStats{Keys: len(m.entries), Duration: time.Since(start), Write: stats.GetWriteTime()})
	}
	return nil
}

// fillPercent is how full bbolt packs a page before splitting it. Keys
// arrive in random order, where bbolt's default of one half leaves pages half
// empty; packing them fuller keeps the file (and the pages mapped in memory)
// smaller.
const fillPercent = 0.9

// FlushPolicy says when a [Flusher] writes the buffered state to bbolt:
// once Interval has passed since the last flush, or sooner once MaxKeys
// keys or MaxBytes bytes wait. Past HoldFactor times either limit, writers
// wait for a flush (Flusher.WaitForRoom). A zero field takes
// DefaultFlushPolicy's.
type FlushPolicy struct {
	Interval time.Duration
	MaxKeys  int
	MaxBytes int64
}

// HoldFactor is how far past a flush limit the buffer may grow before
// writers wait for a flush.
const HoldFactor = 4

// DefaultFlushPolicy is the default flush policy: Raft keeps its log
// until a snapshot anyway, so a flush may come late without risk, and a
// flush rewrites every page its keys touch, so larger, rarer flushes cost
// less per key (docs/benchmarks.md): every 5 s, 50 000 keys or 64 MiB.
func DefaultFlushPolicy() FlushPolicy {
	return FlushPolicy{Interval: 5 * time.Second, MaxKeys: 50_000, MaxBytes: 64 << 20}
}

// WithDefaults returns p with each zero field taken from def.
func (p FlushPolicy) WithDefaults(def FlushPolicy) FlushPolicy {
	if p.Interval <= 0 {
		p.Interval = def.Interval
	}
	if p.MaxKeys <= 0 {
		p.MaxKeys = def.MaxKeys
	}
	if p.MaxBytes <= 0 {
		p.MaxBytes = def.MaxBytes
	}
	return p
}

// over reports whether keys and bytes call for a flush now (factor 1) or
// hold writers back (factor HoldFactor).
func (p FlushPolicy) over(keys int, bytes int64, factor int) bool {
	return keys >= factor*p.MaxKeys || bytes >= int64(factor)*p.MaxBytes
}

// Flusher is the one background flusher of a store, whichever write path
// feeds it: it calls Flush as its FlushPolicy says, and holds writers back
// (WaitForRoom) while the buffer is past the hard cap. Safe for concurrent
// use; Close stops it.
type Flusher struct {
	st     *Store
	policy FlushPolicy
	log    *slog.Logger

	kick chan struct{}
	stop chan struct{}
	done chan struct{}
	once sync.Once

	mu      sync.Mutex
	err     error         // the last flush's, nil once one succeeds
	flushed chan struct{} // closed and replaced after every flush attempt
}

// StartFlusher starts flushing st by policy (zero fields:
// DefaultFlushPolicy's).
func StartFlusher(st *Store, policy FlushPolicy, log *slog.Logger) *Flusher {
	if log == nil {
		log = slog.Default()
	}
	f := &Flusher{
		st: st, policy: policy.WithDefaults(DefaultFlushPolicy()), log: log,
		kick: make(chan struct{}, 1), stop: make(chan struct{}), done: make(chan struct{}),
		flushed: make(chan struct{}),
	}
	go f.loop()
	return f
}

// Applied tells the flusher that entries were applied: past a limit it
// flushes now rather than at the next interval. It never blocks.
func (f *Flusher) Applied() {
	if keys, bytes := f.st.Buffered(); f.policy.over(keys, bytes, 1) {
		f.signal()
	}
}

func (f *Flusher) signal() {
	select {
	case f.kick <- struct{}{}:
	default:
	}
}

// WaitForRoom returns at once while the buffer is below HoldFactor times
// the policy's limits. Past them it asks for a flush and waits for it; it
// returns the flush's error (for example ErrNoSpace) if the buffer is still
// past the cap after a failed one, ErrClosed once the flusher stops, or
// ctx's error.
func (f *Flusher) WaitForRoom(ctx context.Context) error {
	for {
		keys, bytes := f.st.Buffered()
		if !f.policy.over(keys, bytes, HoldFactor) {
			return nil
		}
		f.mu.Lock()
		flushed := f.flushed
		f.mu.Unlock()
		f.signal()
		select {
		case <-flushed:
		case <-ctx.Done():
			return ctx.Err()
		case <-f.stop:
			return ErrClosed
		}
		f.mu.Lock()
		err := f.err
		f.mu.Unlock()
		if keys, bytes := f.st.Buffered(); err != nil && f.policy.over(keys, bytes, HoldFactor) {
			return err
		}
	}
}

// Close stops the flusher and waits for a flush in progress. It does not
// flush: Store.Close does.
func (f *Flusher) Close() {
	f.once.Do(func() { close(f.stop) })
	<-f.done
}

func (f *Flusher) loop() {
	defer close(f.done)
	t := time.NewTimer(f.policy.Interval)
	defer t.Stop()
	for {
		select {
		case <-f.stop:
			return
		case <-t.C:
		case <-f.kick:
		}
		f.flush()
		t.Reset(f.policy.Interval)
	}
}

func (f *Flusher) flush() {
	err := f.st.Flush()
	f.mu.Lock()
	switch {
	case err != nil && f.err == nil:
		f.log.Error("flush failed; writes wait for it", "err", err)
	case err == nil && f.err != nil:
		f.log.Info("flush recovered")
	}
	f.err = err
	close(f.flushed)
	f.flushed = make(chan struct{})
	f.mu.Unlock()
}
