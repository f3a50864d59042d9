package store

import (
	"errors"
	"fmt"
	"syscall"

	bolt "go.etcd.io/bbolt"
)

// Apply applies entries and makes them durable in bbolt before returning: it
// is ApplyBuffered followed by Flush. Callers with a log of their own (Raft's)
// use ApplyBuffered and flush in the background.
func (s *Store) Apply(entries []Entry) ([]Result, error) {
	results, err := s.ApplyBuffered(entries)
	if err != nil {
		return nil, err
	}
	if err := s.Flush(); err != nil {
		return results, fmt.Errorf("applied but not flushed: %w", err)
	}
	return results, nil
}

// ApplyBuffered applies entries in order to the store's unflushed state:
// they are visible to readers at once, all together, and reach bbolt at the
// next Flush. They are durable only in the caller's own log until then.
// Entries at or below the applied index are skipped (their Result is zero),
// so a log can be replayed safely.
//
// A command's own outcome (not found, precondition failed) is in its Result;
// an error from ApplyBuffered means the entries were not applied (the state
// is unchanged). Changes are published to the Hub before it returns. Calls
// are serialized.
func (s *Store) ApplyBuffered(entries []Entry) ([]Result, error) {
	s.applyMu.Lock()
	defer s.applyMu.Unlock()

	s.memMu.RLock()
	tx, err := s.db.Begin(false)
	if err != nil {
		s.memMu.RUnlock()
		return nil, fmt.Errorf("begin read: %w", err)
	}
	a := applier{
		tx:       tx,
		layers:   layers{s.active, s.flushing},
		batch:    newMemtable(),
		counters: s.cur,
	}
	results := make([]Result, len(entries))
	for i, e := range entries {
		if e.Index != 0 && e.Index <= a.counters.applied {
			results[i] = Result{Revision: a.counters.rev}
			continue
		}
		r, err := a.apply(e.Command)
		if err != nil {
			_ = tx.Rollback()
			s.memMu.RUnlock()
			return nil, fmt.Errorf("apply %s %q: %w", e.Command.Op, e.Command.Key, err)
		}
		r.Revision = a.counters.rev
		results[i] = r
		if e.Index > a.counters.applied {
			a.counters.applied = e.Index
		}
	}
	_ = tx.Rollback()
	s.memMu.RUnlock()

	// Publish the batch: every change at once, with the counters.
	s.memMu.Lock()
	for k, e := range a.batch.entries {
		s.active.set(k, e)
	}
	s.cur = a.counters
	s.active.meta = a.counters
	s.memMu.Unlock()
	s.expired.Add(a.expiries)
	s.hub.publish(a.events)
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

// applier holds one batch's working state. Its methods are the single
// deterministic state-transition function of the store: they read the
// logical state (the batch's own changes, then the unflushed layers, then
// bbolt as of tx) and record every change in batch.
type applier struct {
	tx       *bolt.Tx
	layers   layers
	batch    *memtable
	counters counters
	expiries uint64
	events   []Event
}

func (a *applier) apply(c Command) (Result, error) {
	if c.Now <= 0 {
		// Without the log's clock every expired key would look live; every
		// node refuses the same command the same way.
		return Result{Err: fmt.Errorf("%w: %s %q", ErrNoClock, c.Op, c.Key)}, nil
	}
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

// lookup returns key's newest record, live or expired.
func (a *applier) lookup(key string) (record, bool, error) {
	if e, ok := a.batch.entries[key]; ok {
		return e.rec, !e.deleted, nil
	}
	if e, ok := a.layers.get(key); ok {
		return e.rec, !e.deleted, nil
	}
	b := a.tx.Bucket(bucketKV).Get([]byte(key))
	if b == nil {
		return record{}, false, nil
	}
	r, err := decodeRecord(b, true)
	return r, err == nil, err
}

// load returns key's live record; a record that has expired by now is
// removed (with an expire event) and reported absent.
func (a *applier) load(key string, now int64) (record, bool, error) {
	r, ok, err := a.lookup(key)
	if err != nil || !ok {
		return record{}, false, err
	}
	if r.expired(now) {
		a.remove(key, EventExpire)
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
	a.counters.rev++
	rev := a.counters.rev
	rec := record{CreateRevision: rev, ModRevision: rev, Version: 1, ExpiresAt: c.ExpiresAt, ContentType: c.ContentType, Value: c.Value}
	if exists {
		rec.CreateRevision, rec.Version = old.CreateRevision, old.Version+1
	} else {
		a.counters.keys++
	}
	a.batch.set(c.Key, &memEntry{rec: rec})
	a.events = append(a.events, Event{Type: EventPut, Key: c.Key, Revision: rev, Value: c.Value, ContentType: c.ContentType})
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
	a.remove(c.Key, EventDelete)
	return Result{KV: old.keyValue(c.Key, false), Deleted: 1}, nil
}

func (a *applier) deletePrefix(c Command) (Result, error) {
	// The newest state of every key under the prefix: batch over layers over bbolt.
	it := newMergeIter(append(layers{a.batch}, a.layers...), a.tx.Bucket(bucketKV).Cursor(), c.Key, "")
	type victim struct {
		key     string
		expired bool
	}
	var victims []victim
	for {
		item, ok, err := it.nextItem()
		if err != nil {
			return Result{}, err
		}
		if !ok {
			break
		}
		if !item.deleted {
			victims = append(victims, victim{item.key, item.rec.expired(c.Now)})
		}
	}
	deleted := 0
	for _, v := range victims {
		typ := EventDelete
		if v.expired {
			typ = EventExpire
		} else {
			deleted++
		}
		a.remove(v.key, typ)
	}
	return Result{Deleted: deleted}, nil
}

func (a *applier) expire(c Command) (Result, error) {
	r, ok, err := a.lookup(c.Key)
	if err != nil {
		return Result{}, err
	}
	if !ok {
		return Result{Err: fmt.Errorf("%w: %q", ErrNotFound, c.Key)}, nil
	}
	if r.ModRevision != c.IfRevision || !r.expired(c.Now) {
		return Result{Err: fmt.Errorf("%w: key %q changed or not yet expired", ErrPreconditionFailed, c.Key)}, nil
	}
	a.remove(c.Key, EventExpire)
	return Result{Deleted: 1}, nil
}

// remove records key's removal as an event of type typ at a new revision.
func (a *applier) remove(key string, typ EventType) {
	a.batch.set(key, &memEntry{deleted: true})
	a.counters.keys--
	a.counters.rev++
	if typ == EventExpire {
		a.expiries++
	}
	a.events = append(a.events, Event{Type: typ, Key: key, Revision: a.counters.rev})
}
