package store

import (
	"fmt"
	"sort"
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
