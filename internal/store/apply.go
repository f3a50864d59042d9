package store

import (
	"bytes"
	"errors"
	"fmt"
	"syscall"
	"time"

	bolt "go.etcd.io/bbolt"
)

// Apply applies entries in order, in one bbolt transaction that is fsynced
// before Apply returns, and records the index of the last entry. Entries at or
// below the applied index are skipped (their Result is zero), so a log can be
// replayed safely.
//
// A command's own outcome (not found, precondition failed) is in its Result;
// an error from Apply itself means nothing in the batch was applied (for
// example ErrNoSpace when the disk is full) and the store is unchanged.
//
// Changes are published to the Hub after the commit. Apply must not be called
// concurrently with itself; it is serialized by a mutex regardless.
func (s *Store) Apply(entries []Entry) ([]Result, error) {
	s.applyMu.Lock()
	defer s.applyMu.Unlock()

	start := time.Now()
	tx, err := s.db.Begin(true)
	if err != nil {
		return nil, fmt.Errorf("begin: %w", classify(err))
	}
	a := applier{
		kv:       tx.Bucket(bucketKV),
		ttl:      tx.Bucket(bucketTTL),
		meta:     tx.Bucket(bucketMeta),
		rev:      s.rev.Load(),
		keys:     s.keys.Load(),
		applied:  s.applied.Load(),
		expiries: 0,
	}
	results := make([]Result, len(entries))
	for i, e := range entries {
		if e.Index != 0 && e.Index <= a.applied {
			results[i] = Result{Revision: a.rev}
			continue
		}
		r, err := a.apply(e.Command)
		if err != nil {
			_ = tx.Rollback()
			return nil, fmt.Errorf("apply %s %q: %w", e.Command.Op, e.Command.Key, classify(err))
		}
		r.Revision = a.rev
		results[i] = r
		if e.Index > a.applied {
			a.applied = e.Index
		}
	}
	if err := a.writeMeta(); err != nil {
		_ = tx.Rollback()
		return nil, fmt.Errorf("write meta: %w", classify(err))
	}
	if err := tx.Commit(); err != nil {
		return nil, fmt.Errorf("commit: %w", classify(err))
	}
	stats := tx.Stats()
	s.rev.Store(a.rev)
	s.keys.Store(a.keys)
	s.applied.Store(a.applied)
	s.expired.Add(a.expiries)
	s.hub.publish(a.events)
	if s.opts.OnCommit != nil {
		s.opts.OnCommit(CommitStats{Entries: len(entries), Duration: time.Since(start), Write: stats.GetWriteTime()})
	}
	return results, nil
}

// classify wraps disk-full errors with ErrNoSpace so callers can tell them
// apart from other storage failures.
func classify(err error) error {
	if errors.Is(err, syscall.ENOSPC) || errors.Is(err, syscall.EDQUOT) || errors.Is(err, syscall.EFBIG) {
		return fmt.Errorf("%w: %w", ErrNoSpace, err)
	}
	return err
}

// applier holds one transaction's working state. Its methods are the single
// deterministic state-transition function of the store.
type applier struct {
	kv, ttl, meta *bolt.Bucket
	rev           uint64
	keys          int64
	applied       uint64
	expiries      uint64
	events        []Event
}

func (a *applier) apply(c Command) (Result, error) {
	switch c.Op {
	case OpPut:
		return a.put(c)
	case OpDelete:
		return a.delete(c)
	case OpDeletePrefix:
		return a.deletePrefix(c)
	case OpExpire:
		return a.expire(c)
	}
	return Result{}, fmt.Errorf("%w: unknown op %d", errBadCommand, c.Op)
}

// load returns key's live record; a record that has expired by now is
// removed (with an expire event) and reported absent.
func (a *applier) load(key string, now int64) (record, bool, error) {
	b := a.kv.Get([]byte(key))
	if b == nil {
		return record{}, false, nil
	}
	r, err := decodeRecord(b, true)
	if err != nil {
		return record{}, false, err
	}
	if r.expired(now) {
		if err := a.remove(key, r, EventExpire); err != nil {
			return record{}, false, err
		}
		return record{}, false, nil
	}
	return r, true, nil
}

func (a *applier) put(c Command) (Result, error) {
	old, exists, err := a.load(c.Key, c.Now)
	if err != nil {
		return Result{}, err
	}
	if c.IfAbsent && exists {
		return Result{Err: fmt.Errorf("%w: key %q exists", ErrPreconditionFailed, c.Key), KV: old.keyValue(c.Key, false)}, nil
	}
	if c.IfExists && !exists {
		return Result{Err: fmt.Errorf("%w: key %q does not exist", ErrPreconditionFailed, c.Key), KV: KeyValue{Key: c.Key}}, nil
	}
	if c.IfRevision != 0 && (!exists || old.ModRevision != c.IfRevision) {
		kv := KeyValue{Key: c.Key}
		if exists {
			kv = old.keyValue(c.Key, false)
		}
		return Result{Err: fmt.Errorf("%w: key %q is not at revision %d", ErrPreconditionFailed, c.Key, c.IfRevision), KV: kv}, nil
	}
	a.rev++
	rec := record{CreateRevision: a.rev, ModRevision: a.rev, Version: 1, ExpiresAt: c.ExpiresAt, ContentType: c.ContentType, Value: c.Value}
	if exists {
		rec.CreateRevision, rec.Version = old.CreateRevision, old.Version+1
		if old.ExpiresAt != 0 {
			if err := a.ttl.Delete(ttlIndexKey(old.ExpiresAt, c.Key)); err != nil {
				return Result{}, err
			}
		}
	} else {
		a.keys++
	}
	if err := a.kv.Put([]byte(c.Key), rec.encode()); err != nil {
		return Result{}, err
	}
	if rec.ExpiresAt != 0 {
		if err := a.ttl.Put(ttlIndexKey(rec.ExpiresAt, c.Key), nil); err != nil {
			return Result{}, err
		}
	}
	a.events = append(a.events, Event{Type: EventPut, Key: c.Key, Revision: a.rev, Value: c.Value, ContentType: c.ContentType})
	return Result{KV: rec.keyValue(c.Key, false), Created: !exists}, nil
}

func (a *applier) delete(c Command) (Result, error) {
	old, exists, err := a.load(c.Key, c.Now)
	if err != nil {
		return Result{}, err
	}
	if (c.IfExists && !exists) || (c.IfRevision != 0 && (!exists || old.ModRevision != c.IfRevision)) {
		return Result{Err: fmt.Errorf("%w: key %q is not at the expected revision", ErrPreconditionFailed, c.Key)}, nil
	}
	if !exists {
		return Result{Err: fmt.Errorf("%w: %q", ErrNotFound, c.Key)}, nil
	}
	if err := a.remove(c.Key, old, EventDelete); err != nil {
		return Result{}, err
	}
	return Result{KV: old.keyValue(c.Key, false), Deleted: 1}, nil
}

func (a *applier) deletePrefix(c Command) (Result, error) {
	type victim struct {
		key string
		rec record
	}
	var victims []victim
	prefix := []byte(c.Key)
	cur := a.kv.Cursor()
	for k, v := cur.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, v = cur.Next() {
		r, err := decodeRecord(v, false)
		if err != nil {
			return Result{}, fmt.Errorf("key %q: %w", k, err)
		}
		victims = append(victims, victim{key: string(k), rec: record{ExpiresAt: r.ExpiresAt}})
	}
	deleted := 0
	for _, v := range victims {
		typ := EventDelete
		if v.rec.expired(c.Now) {
			typ = EventExpire
		} else {
			deleted++
		}
		if err := a.remove(v.key, v.rec, typ); err != nil {
			return Result{}, err
		}
	}
	return Result{Deleted: deleted}, nil
}

func (a *applier) expire(c Command) (Result, error) {
	b := a.kv.Get([]byte(c.Key))
	if b == nil {
		return Result{Err: fmt.Errorf("%w: %q", ErrNotFound, c.Key)}, nil
	}
	r, err := decodeRecord(b, false)
	if err != nil {
		return Result{}, err
	}
	if r.ModRevision != c.IfRevision || !r.expired(c.Now) {
		return Result{Err: fmt.Errorf("%w: key %q changed or not yet expired", ErrPreconditionFailed, c.Key)}, nil
	}
	if err := a.remove(c.Key, record{ExpiresAt: r.ExpiresAt}, EventExpire); err != nil {
		return Result{}, err
	}
	return Result{Deleted: 1}, nil
}

// remove deletes key (whose stored record is r) and its TTL index entry, and
// records the change as an event of type typ at a new revision.
func (a *applier) remove(key string, r record, typ EventType) error {
	if err := a.kv.Delete([]byte(key)); err != nil {
		return err
	}
	if r.ExpiresAt != 0 {
		if err := a.ttl.Delete(ttlIndexKey(r.ExpiresAt, key)); err != nil {
			return err
		}
	}
	a.keys--
	a.rev++
	if typ == EventExpire {
		a.expiries++
	}
	a.events = append(a.events, Event{Type: typ, Key: key, Revision: a.rev})
	return nil
}

func (a *applier) writeMeta() error {
	if err := a.meta.Put(metaRevision, u64bytes(a.rev)); err != nil {
		return err
	}
	if err := a.meta.Put(metaAppliedIndex, u64bytes(a.applied)); err != nil {
		return err
	}
	return a.meta.Put(metaKeyCount, u64bytes(uint64(a.keys)))
}
