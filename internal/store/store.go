package store

import (
	"errors"
	"fmt"
	"io"
	"sync"
	"sync/atomic"
	"time"

	bolt "go.etcd.io/bbolt"
	bolterrors "go.etcd.io/bbolt/errors"
)

// Options tune a Store. The zero value is valid; see DefaultOptions.
type Options struct {
	// OpenTimeout bounds the wait for the file lock held by another process.
	OpenTimeout time.Duration
	// WatchHistoryEvents and WatchHistoryBytes bound the change history kept
	// in memory for watchers that resume; the older of the two limits wins.
	WatchHistoryEvents int
	WatchHistoryBytes  int64
	// OnFlush, if set, is called after every successful flush, from the
	// goroutine that called Flush. It must not block.
	OnFlush func(FlushStats)
}

// FlushStats describes one flush.
type FlushStats struct {
	Keys     int           // keys written or deleted
	Duration time.Duration // the whole flush transaction, commit included
	Write    time.Duration // time bbolt spent writing pages and fsyncing
}

// DefaultOptions returns the options used when a field is left zero.
func DefaultOptions() Options {
	return Options{
		OpenTimeout:        time.Second,
		WatchHistoryEvents: 10_000,
		WatchHistoryBytes:  64 << 20,
	}
}

// Store is a bbolt-backed key-value store. See the package documentation.
type Store struct {
	db   *bolt.DB
	opts Options
	hub  *Hub

	applyMu sync.Mutex // serializes ApplyBuffered
	flushMu sync.Mutex // serializes Flush

	// memMu guards the unflushed layers and the counters. Readers hold it
	// (shared) while they consult the layers and bbolt, so a layer is never
	// dropped between the two.
	memMu    sync.RWMutex
	active   *memtable // receives applied batches
	flushing *memtable // being written to bbolt by Flush, or nil
	cur      counters  // as of the last applied entry
	durable  atomic.Uint64
	expired  atomic.Uint64
}

// Open opens (creating if needed) the database file at path.
func Open(path string, opts Options) (*Store, error) {
	def := DefaultOptions()
	if opts.OpenTimeout <= 0 {
		opts.OpenTimeout = def.OpenTimeout
	}
	if opts.WatchHistoryEvents <= 0 {
		opts.WatchHistoryEvents = def.WatchHistoryEvents
	}
	if opts.WatchHistoryBytes <= 0 {
		opts.WatchHistoryBytes = def.WatchHistoryBytes
	}
	db, err := bolt.Open(path, 0o600, boltOptions(opts))
	if errors.Is(err, bolterrors.ErrTimeout) {
		return nil, fmt.Errorf("open %s: locked by another process (waited %s): %w", path, opts.OpenTimeout, err)
	}
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	s := &Store{db: db, opts: opts}
	var rev, applied, keys uint64
	err = db.Update(func(tx *bolt.Tx) error {
		for _, name := range allBuckets {
			if _, err := tx.CreateBucketIfNotExists(name); err != nil {
				return fmt.Errorf("create bucket %s: %w", name, err)
			}
		}
		meta := tx.Bucket(bucketMeta)
		switch v := u64(meta.Get(metaSchema)); v {
		case 0:
			if err := meta.Put(metaSchema, u64bytes(schemaVersion)); err != nil {
				return err
			}
		case schemaVersion:
		default:
			return fmt.Errorf("%w: schema version %d, this build reads %d", ErrCorrupt, v, schemaVersion)
		}
		rev, applied, keys = u64(meta.Get(metaRevision)), u64(meta.Get(metaAppliedIndex)), u64(meta.Get(metaKeyCount))
		return nil
	})
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("initialize %s: %w", path, classify(err))
	}
	s.cur = counters{rev: rev, applied: applied, keys: int64(keys)}
	s.durable.Store(applied)
	s.active = newMemtable()
	s.hub = newHub(rev, opts.WatchHistoryEvents, opts.WatchHistoryBytes)
	return s, nil
}

// InitialMmapSize is the address space bbolt maps for a database file up
// front (virtual memory, not resident): while the file fits, growing it
// does not remap, which would stop every reader and cost a page-fault
// storm (remaps were 3% of a cluster node's CPU under write load).
const InitialMmapSize = 1 << 30

// boltOptions are the bbolt options of a store's database.
func boltOptions(opts Options) *bolt.Options {
	return &bolt.Options{
		Timeout:         opts.OpenTimeout,
		NoFreelistSync:  true,
		FreelistType:    bolt.FreelistMapType,
		InitialMmapSize: InitialMmapSize,
	}
}

// Close flushes what is buffered, closes the database and ends every
// watch. It waits for an ApplyBuffered in progress.
func (s *Store) Close() error {
	s.applyMu.Lock()
	defer s.applyMu.Unlock()
	s.hub.close()
	flushErr := s.Flush()
	if err := s.db.Close(); err != nil {
		return errors.Join(flushErr, fmt.Errorf("close database: %w", err))
	}
	return flushErr
}

// Path returns the database file's path.
func (s *Store) Path() string { return s.db.Path() }

// Revision returns the revision of the last applied change.
func (s *Store) Revision() uint64 {
	s.memMu.RLock()
	defer s.memMu.RUnlock()
	return s.cur.rev
}

// AppliedIndex returns the log index of the last applied entry.
func (s *Store) AppliedIndex() uint64 {
	s.memMu.RLock()
	defer s.memMu.RUnlock()
	return s.cur.applied
}

// DurableIndex returns the log index of the last entry flushed to bbolt:
// a log may forget the entries up to it.
func (s *Store) DurableIndex() uint64 { return s.durable.Load() }

// Buffered returns how many keys and bytes wait in the unflushed layers.
func (s *Store) Buffered() (keys int, bytes int64) {
	s.memMu.RLock()
	defer s.memMu.RUnlock()
	for _, m := range []*memtable{s.active, s.flushing} {
		if m != nil {
			keys += len(m.entries)
			bytes += m.bytes
		}
	}
	return keys, bytes
}

// Get returns key's metadata, and its value when withValue is set. A key that
// has expired by now is reported as ErrNotFound even before the sweeper
// removes it.
func (s *Store) Get(key string, now time.Time, withValue bool) (KeyValue, error) {
	s.memMu.RLock()
	defer s.memMu.RUnlock()
	if e, ok := (layers{s.active, s.flushing}).get(key); ok {
		if e.deleted || e.rec.expired(now.UnixNano()) {
			return KeyValue{}, ErrNotFound
		}
		return e.rec.keyValue(key, withValue), nil
	}
	var kv KeyValue
	err := s.db.View(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketKV).Get([]byte(key))
		if b == nil {
			return ErrNotFound
		}
		r, err := decodeRecord(b, false)
		if err != nil {
			return fmt.Errorf("key %q: %w", key, err)
		}
		if r.expired(now.UnixNano()) {
			return ErrNotFound
		}
		kv = r.keyValue(key, withValue)
		return nil
	})
	return kv, err
}

// ListOptions select a page of keys.
type ListOptions struct {
	Prefix   string
	After    string // exclusive start; "" starts at Prefix
	Limit    int    // at least 1
	KeysOnly bool   // omit values
	// MaxBytes caps a page's key, value and content-type bytes; the page
	// ends before the item that would exceed it (so Next is set), but
	// always holds at least one item. 0 means no cap.
	MaxBytes int64
	Now      time.Time
}

// ListResult is one page of keys in key order.
type ListResult struct {
	Items []KeyValue
	// Next is the After of the following page; "" when this is the last.
	Next string
	// Revision is the store revision the page was read at.
	Revision uint64
}

// List returns live keys starting with opts.Prefix, in key order, as of one
// revision. It holds memMu (shared) only to take that view: the revision,
// the unflushed entries under the prefix and a bbolt read transaction begun
// under the lock. Values are copied after the lock is released, so a writer
// publishing a batch (memMu exclusively) never waits for a list's copying.
// Unflushed entries are never changed in place (a newer write replaces the
// entry), and the read transaction keeps its own view of the file.
func (s *Store) List(opts ListOptions) (ListResult, error) {
	if opts.Limit < 1 {
		opts.Limit = 1
	}
	now := opts.Now.UnixNano()
	s.memMu.RLock()
	res := ListResult{Revision: s.cur.rev}
	ls := layers{s.active, s.flushing}
	memKeys, memEnts := ls.scan(opts.Prefix, opts.After)
	tx, err := s.db.Begin(false)
	s.memMu.RUnlock()
	if err != nil {
		return ListResult{}, fmt.Errorf("list: begin read: %w", err)
	}
	defer func() { _ = tx.Rollback() }()
	it := newMergeIterFrom(memKeys, memEnts, tx.Bucket(bucketKV).Cursor(), opts.Prefix, opts.After)
	var bytes int64
	for {
		item, ok, err := it.nextItem()
		if err != nil {
			return ListResult{}, fmt.Errorf("list: %w", err)
		}
		if !ok {
			return res, nil
		}
		if item.deleted || item.rec.expired(now) {
			continue
		}
		size := int64(len(item.key) + len(item.rec.ContentType))
		if !opts.KeysOnly {
			size += int64(len(item.rec.Value))
		}
		if len(res.Items) == opts.Limit || (opts.MaxBytes > 0 && len(res.Items) > 0 && bytes+size > opts.MaxBytes) {
			res.Next = res.Items[len(res.Items)-1].Key
			return res, nil
		}
		bytes += size
		if testHookListCopy != nil {
			testHookListCopy()
		}
		res.Items = append(res.Items, item.rec.keyValue(item.key, !opts.KeysOnly))
	}
}

// testHookListCopy, if set (by tests), runs before List copies each item.
var testHookListCopy func()

// ExpiredKey names a key whose TTL has passed, at the revision it was read.
type ExpiredKey struct {
	Key      string
	Revision uint64
}

// Expired returns up to limit keys whose expiry is at or before now, oldest
// expiry first.
func (s *Store) Expired(now time.Time, limit int) ([]ExpiredKey, error) {
	var out []ExpiredKey
	n := now.UnixNano()
	err := s.db.View(func(tx *bolt.Tx) error {
		kvb := tx.Bucket(bucketKV)
		c := tx.Bucket(bucketTTL).Cursor()
		for k, _ := c.First(); k != nil && len(out) < limit; k, _ = c.Next() {
			if len(k) < 8 || int64(u64(k[:8])) > n {
				break
			}
			key := string(k[8:])
			b := kvb.Get(k[8:])
			if b == nil {
				continue
			}
			r, err := decodeRecord(b, false)
			if err != nil {
				return fmt.Errorf("key %q: %w", key, err)
			}
			out = append(out, ExpiredKey{Key: key, Revision: r.ModRevision})
		}
		return nil
	})
	return out, err
}

// Status is a point-in-time summary of the store.
type Status struct {
	Revision     uint64
	AppliedIndex uint64
	Keys         int64
	DBSizeBytes  int64
	ExpiredTotal uint64
	Watchers     int
}

// Status reports the store's counters and file size.
func (s *Store) Status() Status {
	s.memMu.RLock()
	st := Status{
		Revision:     s.cur.rev,
		AppliedIndex: s.cur.applied,
		Keys:         s.cur.keys,
		ExpiredTotal: s.expired.Load(),
		Watchers:     s.hub.watchers(),
	}
	s.memMu.RUnlock()
	_ = s.db.View(func(tx *bolt.Tx) error {
		st.DBSizeBytes = tx.Size()
		return nil
	})
	return st
}

// Ready reports whether the store is open and accepts writes.
func (s *Store) Ready() error {
	if s.db.IsReadOnly() {
		return errors.New("kvstore: database is read-only")
	}
	return s.db.View(func(*bolt.Tx) error { return nil })
}

// WriteSnapshot flushes, then writes a consistent copy of the whole
// database file to w from one read transaction, while writes go on.
func (s *Store) WriteSnapshot(w io.Writer) (int64, error) {
	if err := s.Flush(); err != nil {
		return 0, fmt.Errorf("snapshot: %w", err)
	}
	var n int64
	err := s.db.View(func(tx *bolt.Tx) error {
		var err error
		n, err = tx.WriteTo(w)
		return err
	})
	if err != nil {
		return n, fmt.Errorf("snapshot: %w", err)
	}
	return n, nil
}

// Subscribe starts a watch on the store's hub; see Hub.Subscribe.
func (s *Store) Subscribe(prefix string, since uint64, resume bool) ([]Event, *Subscription, error) {
	return s.hub.Subscribe(prefix, since, resume)
}
