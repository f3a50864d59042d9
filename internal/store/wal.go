package store

import (
	"encoding/binary"
	"errors"
	"fmt"
	"time"

	bolt "go.etcd.io/bbolt"
	bolterrors "go.etcd.io/bbolt/errors"
)

// WALFile is the write-ahead log's name inside a data directory.
const WALFile = "wal.db"

var bucketLog = []byte("log")

// WAL is the single-node write-ahead log: commands keyed by their
// big-endian log index in a bbolt file of their own. Indexes only grow, so
// every append writes the tail of the tree: one short, sequential, fsynced
// transaction acknowledges a whole batch, while the random-key writes to the
// store are amortized by background flushes. A WAL is safe for concurrent
// use.
type WAL struct {
	db *bolt.DB
}

// OpenWAL opens (creating if needed) the log file at path.
func OpenWAL(path string) (*WAL, error) {
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: time.Second, NoFreelistSync: true, FreelistType: bolt.FreelistMapType})
	if errors.Is(err, bolterrors.ErrTimeout) {
		return nil, fmt.Errorf("open %s: locked by another process: %w", path, err)
	}
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	if err := db.Update(func(tx *bolt.Tx) error {
		_, err := tx.CreateBucketIfNotExists(bucketLog)
		return err
	}); err != nil {
		db.Close()
		return nil, fmt.Errorf("initialize %s: %w", path, classify(err))
	}
	return &WAL{db: db}, nil
}

// Append writes entries durably (fsynced) or not at all.
func (w *WAL) Append(entries []Entry) error {
	err := w.db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketLog)
		b.FillPercent = 1 // append-only: pack pages full
		for _, e := range entries {
			v, err := e.Command.MarshalBinary()
			if err != nil {
				return err
			}
			if err := b.Put(binary.BigEndian.AppendUint64(nil, e.Index), v); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("wal append: %w", classify(err))
	}
	return nil
}

// Replay calls fn with the entries after index after, in order, in batches
// of up to batch entries.
func (w *WAL) Replay(after uint64, batch int, fn func([]Entry) error) error {
	for {
		var entries []Entry
		err := w.db.View(func(tx *bolt.Tx) error {
			c := tx.Bucket(bucketLog).Cursor()
			for k, v := c.Seek(binary.BigEndian.AppendUint64(nil, after+1)); k != nil && len(entries) < batch; k, v = c.Next() {
				var cmd Command
				if err := cmd.UnmarshalBinary(v); err != nil {
					return fmt.Errorf("wal entry %d: %w", binary.BigEndian.Uint64(k), err)
				}
				entries = append(entries, Entry{Index: binary.BigEndian.Uint64(k), Command: cmd})
			}
			return nil
		})
		if err != nil || len(entries) == 0 {
			return err
		}
		if err := fn(entries); err != nil {
			return err
		}
		after = entries[len(entries)-1].Index
	}
}

// TruncateThrough forgets the entries up to and including index.
func (w *WAL) TruncateThrough(index uint64) error {
	return w.deleteRange(0, index)
}

// deleteRange deletes the entries with from <= index <= to.
func (w *WAL) deleteRange(from, to uint64) error {
	err := w.db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketLog)
		var keys [][]byte
		c := b.Cursor()
		for k, _ := c.Seek(binary.BigEndian.AppendUint64(nil, from)); k != nil && binary.BigEndian.Uint64(k) <= to; k, _ = c.Next() {
			keys = append(keys, append([]byte(nil), k...))
		}
		for _, k := range keys {
			if err := b.Delete(k); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("wal truncate: %w", classify(err))
	}
	return nil
}

// Close closes the log file.
func (w *WAL) Close() error { return w.db.Close() }

// TruncateAfter forgets the entries after index.
func (w *WAL) TruncateAfter(index uint64) error {
	return w.deleteRange(index+1, ^uint64(0))
}
