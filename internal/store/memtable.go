package store

import (
	"bytes"
	"sort"
	"strings"
)

// memtable holds the newest state of keys changed by applied entries that
// are not yet flushed to bbolt: a record, or a tombstone for a removed key.
// It is guarded by Store.memMu.
type memtable struct {
	entries map[string]*memEntry
	bytes   int64
	// meta is the store counters as of the last entry in this memtable,
	// written to bbolt's meta bucket when it is flushed.
	meta counters
}

type memEntry struct {
	rec     record // Value is owned by the memtable
	deleted bool
}

// counters are the store-wide values persisted in the meta bucket.
type counters struct {
	rev     uint64
	applied uint64
	keys    int64
}

func newMemtable() *memtable { return &memtable{entries: map[string]*memEntry{}} }

func (m *memtable) set(key string, e *memEntry) {
	if old, ok := m.entries[key]; ok {
		m.bytes -= entrySize(key, old)
	}
	m.entries[key] = e
	m.bytes += entrySize(key, e)
}

func entrySize(key string, e *memEntry) int64 {
	return int64(len(key)+len(e.rec.Value)+len(e.rec.ContentType)) + 96
}

// sortedFrom returns the memtable's keys with prefix that sort after after,
// in order.
func (m *memtable) sortedFrom(prefix, after string) []string {
	var keys []string
	for k := range m.entries {
		if strings.HasPrefix(k, prefix) && k > after {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	return keys
}

// layers is the unflushed state above bbolt, newest first: the active
// memtable and, while a flush is in progress, the one being flushed.
type layers []*memtable

func (ls layers) get(key string) (*memEntry, bool) {
	for _, m := range ls {
		if m == nil {
			continue
		}
		if e, ok := m.entries[key]; ok {
			return e, true
		}
	}
	return nil, false
}

// scan merges the layers' keys with prefix after after, in key order; for a
// key in several layers the newest entry wins.
func (ls layers) scan(prefix, after string) ([]string, []*memEntry) {
	seen := map[string]bool{}
	var keys []string
	for _, m := range ls {
		if m == nil {
			continue
		}
		for _, k := range m.sortedFrom(prefix, after) {
			if !seen[k] {
				seen[k] = true
				keys = append(keys, k)
			}
		}
	}
	sort.Strings(keys)
	entries := make([]*memEntry, len(keys))
	for i, k := range keys {
		entries[i], _ = ls.get(k)
	}
	return keys, entries
}

// mergeIter walks keys with a prefix in key order across the unflushed
// layers and a bbolt cursor, the layers taking precedence.
type mergeIter struct {
	memKeys []string
	memEnts []*memEntry
	mi      int
	next    func() ([]byte, []byte) // bbolt cursor step
	ck, cv  []byte
	prefix  []byte
}

// item is one key of a merged walk. rec aliases bbolt memory when it came
// from the cursor: copy before the transaction ends.
type item struct {
	key     string
	rec     record
	deleted bool
}

// newMergeIter walks the keys under prefix that sort after after (all of
// them when after is ""), merging the layers ls with the cursor c.
func newMergeIter(ls layers, c cursor, prefix, after string) *mergeIter {
	keys, ents := ls.scan(prefix, after)
	return newMergeIterFrom(keys, ents, c, prefix, after)
}

// newMergeIterFrom is newMergeIter over entries already taken from the
// layers with scan (under memMu), so the walk itself needs no lock.
func newMergeIterFrom(keys []string, ents []*memEntry, c cursor, prefix, after string) *mergeIter {
	it := &mergeIter{memKeys: keys, memEnts: ents, next: c.Next, prefix: []byte(prefix)}
	seek := prefix
	if after > prefix {
		seek = after
	}
	it.ck, it.cv = c.Seek([]byte(seek))
	if it.ck != nil && after != "" && string(it.ck) == after {
		it.ck, it.cv = c.Next()
	}
	if it.ck != nil && !bytes.HasPrefix(it.ck, it.prefix) {
		it.ck = nil
	}
	return it
}

// cursor is the part of *bolt.Cursor a mergeIter uses.
type cursor interface {
	Seek([]byte) ([]byte, []byte)
	Next() ([]byte, []byte)
}

func (it *mergeIter) advanceCursor() {
	it.ck, it.cv = it.next()
	if it.ck != nil && !bytes.HasPrefix(it.ck, it.prefix) {
		it.ck = nil
	}
}

// nextItem returns the next key, or ok=false at the end.
func (it *mergeIter) nextItem() (item, bool, error) {
	for {
		var memKey string
		haveMem := it.mi < len(it.memKeys)
		if haveMem {
			memKey = it.memKeys[it.mi]
		}
		switch {
		case !haveMem && it.ck == nil:
			return item{}, false, nil
		case haveMem && (it.ck == nil || memKey <= string(it.ck)):
			if it.ck != nil && memKey == string(it.ck) {
				it.advanceCursor() // shadowed by the newer layer
			}
			e := it.memEnts[it.mi]
			it.mi++
			return item{key: memKey, rec: e.rec, deleted: e.deleted}, true, nil
		default:
			k := string(it.ck)
			r, err := decodeRecord(it.cv, false)
			if err != nil {
				return item{}, false, err
			}
			it.advanceCursor()
			return item{key: k, rec: r}, true, nil
		}
	}
}
