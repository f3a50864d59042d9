package store

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"runtime/debug"
	"time"

	bolt "go.etcd.io/bbolt"
)

// verifyMaxKeyBytes is the longest key Verify accepts: any key the TTL
// index (8 bytes of expiry, then the key) can hold as a bbolt key. The
// server's configured limit may be lower; a longer key is still readable.
const verifyMaxKeyBytes = bolt.MaxKeySize - 8

// maxVerifyErrors bounds how many of bbolt's consistency errors are quoted.
const maxVerifyErrors = 5

// Verify checks that the file at path is a sound kvstore database this
// build can read, and returns its counters. It reads the whole file:
//
//   - the file holds every page its meta page counts (not truncated), and
//     its page tree is sound (checkPages, read without a mapping);
//   - every bucket's pages can be walked and its keys are in order (bbolt
//     does not check inline buckets), and bbolt's consistency check
//     (Tx.Check: page references, free pages, key order) finds nothing;
//   - the buckets and schema version are kvstore's, the counters are 8
//     bytes each;
//   - every record decodes, with sane revisions, and its key passes
//     ValidateKey; the key count matches the records;
//   - the TTL index holds exactly one entry per record with a TTL, at its
//     expiry, and nothing else.
//
// Every failure wraps ErrCorrupt and says what is wrong. bbolt panics (or
// faults on a damaged file's mapping) are turned into errors; the file is
// only ever opened read-only.
func Verify(path string) (st Status, err error) {
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("%w: %s is damaged: bbolt failed reading it: %v", ErrCorrupt, path, r)
		}
	}()
	f, err := os.Open(path)
	if err != nil {
		return Status{}, err
	}
	info, err := f.Stat()
	if err == nil {
		err = checkPages(f, info.Size())
	}
	f.Close()
	if err != nil {
		return Status{}, fmt.Errorf("verify %s: %w", path, err)
	}
	db, err := bolt.Open(path, 0o400, &bolt.Options{ReadOnly: true, Timeout: time.Second})
	if err != nil {
		return Status{}, fmt.Errorf("%w: %s is not a bbolt database: %w", ErrCorrupt, path, err)
	}
	defer db.Close()
	err = db.View(func(tx *bolt.Tx) error {
		if tx.Size() > info.Size() {
			return fmt.Errorf("%w: the file is %d bytes but its pages need %d: truncated", ErrCorrupt, info.Size(), tx.Size())
		}
		// Walk every bucket here first: a damaged page then panics (or
		// faults) in this goroutine, where it is recovered, rather than in
		// the goroutine Tx.Check runs on.
		if err := walkBuckets(tx); err != nil {
			return err
		}
		var errs []error
		for cerr := range tx.Check() {
			if len(errs) < maxVerifyErrors {
				errs = append(errs, cerr)
			}
		}
		if len(errs) > 0 {
			return fmt.Errorf("%w: bbolt consistency check: %w", ErrCorrupt, errors.Join(errs...))
		}
		var err error
		st, err = verifyContents(tx)
		return err
	})
	if err != nil {
		return Status{}, fmt.Errorf("verify %s: %w", path, err)
	}
	return st, nil
}

// walkBuckets visits every key of every bucket, nested ones included, and
// checks that each bucket's keys are in strictly increasing order.
func walkBuckets(tx *bolt.Tx) error {
	var walk func(b *bolt.Bucket, depth int) error
	walk = func(b *bolt.Bucket, depth int) error {
		if depth > 8 {
			return fmt.Errorf("%w: buckets nested too deep", ErrCorrupt)
		}
		c := b.Cursor()
		var prev []byte
		for k, v := c.First(); k != nil; k, v = c.Next() {
			// bbolt finds keys by binary search and does not check the
			// order of inline buckets: keys out of order would be lost.
			if prev != nil && bytes.Compare(prev, k) >= 0 {
				return fmt.Errorf("%w: keys out of order (%q after %q)", ErrCorrupt, k, prev)
			}
			prev = k
			if v == nil {
				if child := b.Bucket(k); child != nil {
					if err := walk(child, depth+1); err != nil {
						return err
					}
				}
			}
		}
		return nil
	}
	return tx.ForEach(func(_ []byte, b *bolt.Bucket) error { return walk(b, 0) })
}

// verifyContents checks the kvstore schema, every record and the TTL index.
func verifyContents(tx *bolt.Tx) (Status, error) {
	for _, name := range allBuckets {
		if tx.Bucket(name) == nil {
			return Status{}, fmt.Errorf("%w: bucket %q missing: not a kvstore snapshot", ErrCorrupt, name)
		}
	}
	meta := tx.Bucket(bucketMeta)
	for _, k := range [][]byte{metaSchema, metaRevision, metaAppliedIndex, metaKeyCount} {
		if v := meta.Get(k); v != nil && len(v) != 8 {
			return Status{}, fmt.Errorf("%w: meta %q is %d bytes, want 8", ErrCorrupt, k, len(v))
		}
	}
	if v := u64(meta.Get(metaSchema)); v != schemaVersion {
		return Status{}, fmt.Errorf("%w: schema version %d, this build reads %d", ErrCorrupt, v, schemaVersion)
	}
	st := Status{
		Revision:     u64(meta.Get(metaRevision)),
		AppliedIndex: u64(meta.Get(metaAppliedIndex)),
		Keys:         int64(u64(meta.Get(metaKeyCount))),
		DBSizeBytes:  tx.Size(),
	}

	ttl := tx.Bucket(bucketTTL)
	var records int64
	c := tx.Bucket(bucketKV).Cursor()
	for k, v := c.First(); k != nil; k, v = c.Next() {
		key := string(k)
		if v == nil {
			return Status{}, fmt.Errorf("%w: key %q is a bucket, not a record", ErrCorrupt, key)
		}
		if err := ValidateKey(key, verifyMaxKeyBytes); err != nil {
			return Status{}, fmt.Errorf("%w: stored key %q: %w", ErrCorrupt, key, err)
		}
		r, err := decodeRecord(v, false)
		if err != nil {
			return Status{}, fmt.Errorf("key %q: %w", key, err)
		}
		if err := r.check(st.Revision); err != nil {
			return Status{}, fmt.Errorf("%w: key %q: %s", ErrCorrupt, key, err)
		}
		records++
		if r.ExpiresAt != 0 {
			if !hasKey(ttl, ttlIndexKey(r.ExpiresAt, key)) {
				return Status{}, fmt.Errorf("%w: key %q expires at %d but the TTL index has no entry for it", ErrCorrupt, key, r.ExpiresAt)
			}
		}
	}
	if records != st.Keys {
		return Status{}, fmt.Errorf("%w: %d records, but the key count says %d", ErrCorrupt, records, st.Keys)
	}
	// Each record with a TTL has its entry (above); every entry must also
	// be a record's, at that record's expiry.
	kvb := tx.Bucket(bucketKV)
	tc := ttl.Cursor()
	for k, v := tc.First(); k != nil; k, v = tc.Next() {
		if len(k) <= 8 || len(v) != 0 {
			return Status{}, fmt.Errorf("%w: malformed TTL index entry %x", ErrCorrupt, k)
		}
		key := k[8:]
		b := kvb.Get(key)
		if b == nil {
			return Status{}, fmt.Errorf("%w: TTL index entry for %q has no record", ErrCorrupt, key)
		}
		if r, err := decodeRecord(b, false); err != nil || r.ExpiresAt != int64(u64(k[:8])) {
			return Status{}, fmt.Errorf("%w: TTL index entry for %q does not match the record's expiry", ErrCorrupt, key)
		}
	}
	return st, nil
}

// hasKey reports whether b holds key as a plain key (not a bucket).
func hasKey(b *bolt.Bucket, key []byte) bool {
	k, v := b.Cursor().Seek(key)
	return k != nil && bytes.Equal(k, key) && v != nil
}

// check reports a record header this store cannot have written; revision
// is the store's revision.
func (r *record) check(revision uint64) error {
	switch {
	case r.CreateRevision == 0 || r.ModRevision < r.CreateRevision || r.ModRevision > revision:
		return fmt.Errorf("revisions out of order: created %d, modified %d, store at %d", r.CreateRevision, r.ModRevision, revision)
	case r.Version == 0 || r.Version > r.ModRevision-r.CreateRevision+1:
		return fmt.Errorf("version %d impossible between revisions %d and %d", r.Version, r.CreateRevision, r.ModRevision)
	case r.ExpiresAt < 0:
		return fmt.Errorf("negative expiry %d", r.ExpiresAt)
	case len(r.ContentType) > 255:
		return fmt.Errorf("content type of %d bytes", len(r.ContentType))
	}
	if err := validateText(r.ContentType); err != nil {
		return fmt.Errorf("content type: %w", err)
	}
	return nil
}
