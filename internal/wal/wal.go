// Package wal is the single-node write-ahead log: the durable, sequential
// part of a write on a server without Raft. internal/single's committer
// appends every batch of store commands to it with one write and one
// fdatasync, and truncates it behind the store's flushes; on start it
// replays the entries the store's file does not hold yet.
package wal

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"

	"golang.org/x/sys/unix"

	"kvstore.dev/kvstore/internal/store"
)

// segmentBytes is the size past which the log starts a new segment file.
// A variable so tests can make segments small.
var segmentBytes int64 = 16 << 20

// maxRecordBytes bounds one record, so a corrupt length cannot make
// recovery allocate without limit.
const maxRecordBytes = 512 << 20

// recordHeaderBytes: length (4) + CRC-32C (4) + log index (8).
const recordHeaderBytes = 16

var crcTable = crc32.MakeTable(crc32.Castagnoli)

// Log is the single-node write-ahead log: append-only segment files of
// records [length u32][crc32c u32][index u64][encoded command], each file
// named by the first index it holds. One Append is one write and one
// fdatasync, however many entries it carries: the durable, sequential part
// of a write, while the random-key writes to the store's bbolt file are
// amortized by background flushes. A crash can tear only the last append,
// which was never acknowledged; opening the log cuts a torn tail off.
// A Log is safe for concurrent use.
type Log struct {
	dir string

	mu       sync.Mutex
	segments []uint64 // first index of each segment file, ascending
	f        *os.File // the last segment, open for appending
	size     int64
	last     uint64 // index of the last entry, 0 when empty
	// lastAppend is where the latest Append started, for TruncateAfter.
	lastAppendOff   int64
	lastAppendFirst uint64
}

// Open opens the log in dir, creating it if needed, and cuts off a torn
// tail left by a crash.
func Open(dir string) (*Log, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("wal: %w", err)
	}
	names, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("wal: %w", err)
	}
	w := &Log{dir: dir}
	for _, e := range names {
		first, ok := strings.CutSuffix(e.Name(), ".wal")
		if !ok {
			continue
		}
		n, err := strconv.ParseUint(first, 10, 64)
		if err != nil {
			return nil, fmt.Errorf("wal: unexpected file %s", e.Name())
		}
		w.segments = append(w.segments, n)
	}
	slices.Sort(w.segments)
	if len(w.segments) == 0 {
		return w, nil
	}
	// Only the last segment can have a torn tail: find its valid end.
	lastSeg := w.segments[len(w.segments)-1]
	f, err := os.OpenFile(w.segPath(lastSeg), os.O_RDWR, 0o600)
	if err != nil {
		return nil, fmt.Errorf("wal: %w", err)
	}
	end, last, err := scanSegment(f, func(uint64, []byte) error { return nil })
	if err != nil {
		f.Close()
		return nil, err
	}
	if fi, err := f.Stat(); err == nil && fi.Size() != end {
		if err := f.Truncate(end); err != nil {
			f.Close()
			return nil, fmt.Errorf("wal: cut torn tail: %w", err)
		}
		if err := f.Sync(); err != nil {
			f.Close()
			return nil, fmt.Errorf("wal: %w", err)
		}
	}
	if _, err := f.Seek(end, io.SeekStart); err != nil {
		f.Close()
		return nil, fmt.Errorf("wal: %w", err)
	}
	w.f, w.size, w.last = f, end, last
	if last == 0 {
		w.last = lastSeg - 1
	}
	return w, nil
}

func (w *Log) segPath(first uint64) string {
	return filepath.Join(w.dir, fmt.Sprintf("%020d.wal", first))
}

// scanSegment reads valid records from the start of f, calling fn for each,
// and returns the offset after the last valid one and its index. A short,
// zero-length or mismatching record ends the scan (a torn tail).
func scanSegment(f *os.File, fn func(index uint64, payload []byte) error) (end int64, last uint64, err error) {
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return 0, 0, fmt.Errorf("wal: %w", err)
	}
	r := bufio.NewReaderSize(f, 1<<20)
	var hdr [recordHeaderBytes]byte
	for {
		if _, err := io.ReadFull(r, hdr[:]); err != nil {
			return end, last, nil
		}
		n := binary.BigEndian.Uint32(hdr[0:])
		sum := binary.BigEndian.Uint32(hdr[4:])
		index := binary.BigEndian.Uint64(hdr[8:])
		if n == 0 || n > maxRecordBytes {
			return end, last, nil
		}
		payload := make([]byte, n)
		if _, err := io.ReadFull(r, payload); err != nil {
			return end, last, nil
		}
		crc := crc32.Update(crc32.Checksum(hdr[8:16], crcTable), crcTable, payload)
		if crc != sum || (last != 0 && index != last+1) {
			return end, last, nil
		}
		if err := fn(index, payload); err != nil {
			return end, last, err
		}
		end += recordHeaderBytes + int64(n)
		last = index
	}
}

// Append writes entries durably (one write, one fdatasync) or returns an
// error. Their indexes must continue the log without a gap.
func (w *Log) Append(entries []store.Entry) error {
	if len(entries) == 0 {
		return nil
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.last != 0 && entries[0].Index != w.last+1 {
		return fmt.Errorf("wal: append of index %d after %d", entries[0].Index, w.last)
	}
	if w.f == nil || w.size >= segmentBytes {
		if err := w.startSegment(entries[0].Index); err != nil {
			return err
		}
	}
	var buf []byte
	for _, e := range entries {
		payload, err := e.Command.MarshalBinary()
		if err != nil {
			return err
		}
		var hdr [recordHeaderBytes]byte
		binary.BigEndian.PutUint32(hdr[0:], uint32(len(payload)))
		binary.BigEndian.PutUint64(hdr[8:], e.Index)
		binary.BigEndian.PutUint32(hdr[4:], crc32.Update(crc32.Checksum(hdr[8:16], crcTable), crcTable, payload))
		buf = append(append(buf, hdr[:]...), payload...)
	}
	if _, err := w.f.Write(buf); err != nil {
		// Cut whatever part was written, so the next append starts clean.
		_ = w.f.Truncate(w.size)
		_, _ = w.f.Seek(w.size, io.SeekStart)
		return fmt.Errorf("wal append: %w", classify(err))
	}
	if err := unix.Fdatasync(int(w.f.Fd())); err != nil {
		_ = w.f.Truncate(w.size)
		_, _ = w.f.Seek(w.size, io.SeekStart)
		return fmt.Errorf("wal sync: %w", classify(err))
	}
	w.lastAppendOff, w.lastAppendFirst = w.size, entries[0].Index
	w.size += int64(len(buf))
	w.last = entries[len(entries)-1].Index
	return nil
}

// startSegment closes the current segment and creates the next, whose first
// entry is first; w.mu must be held.
func (w *Log) startSegment(first uint64) error {
	if w.f != nil {
		if err := w.f.Close(); err != nil {
			return fmt.Errorf("wal: %w", err)
		}
		w.f = nil
	}
	f, err := os.OpenFile(w.segPath(first), os.O_CREATE|os.O_RDWR|os.O_TRUNC, 0o600)
	if err != nil {
		return fmt.Errorf("wal: new segment: %w", classify(err))
	}
	if err := syncDir(w.dir); err != nil {
		f.Close()
		return fmt.Errorf("wal: %w", classify(err))
	}
	if n := len(w.segments); n == 0 || w.segments[n-1] != first {
		w.segments = append(w.segments, first)
	}
	w.f, w.size, w.lastAppendOff, w.lastAppendFirst = f, 0, 0, 0
	return nil
}

// Replay calls fn with the entries after index after, in order, in batches
// of up to batch entries.
func (w *Log) Replay(after uint64, batch int, fn func([]store.Entry) error) error {
	w.mu.Lock()
	segs := slices.Clone(w.segments)
	w.mu.Unlock()
	var pending []store.Entry
	flush := func() error {
		if len(pending) == 0 {
			return nil
		}
		err := fn(pending)
		pending = nil
		return err
	}
	for i, first := range segs {
		if i+1 < len(segs) && segs[i+1] <= after+1 {
			continue // every entry of this segment is at or before after
		}
		f, err := os.Open(w.segPath(first))
		if err != nil {
			return fmt.Errorf("wal: %w", err)
		}
		_, _, err = scanSegment(f, func(index uint64, payload []byte) error {
			if index <= after {
				return nil
			}
			var cmd store.Command
			if err := cmd.UnmarshalBinary(payload); err != nil {
				return fmt.Errorf("wal entry %d: %w", index, err)
			}
			pending = append(pending, store.Entry{Index: index, Command: cmd})
			if len(pending) >= batch {
				return flush()
			}
			return nil
		})
		f.Close()
		if err != nil {
			return err
		}
	}
	return flush()
}

// TruncateThrough forgets the entries up to and including index, by
// removing the segment files that hold nothing after it. The segment being
// appended to is kept.
func (w *Log) TruncateThrough(index uint64) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	keep := 0
	for keep+1 < len(w.segments) && w.segments[keep+1] <= index+1 {
		if err := os.Remove(w.segPath(w.segments[keep])); err != nil {
			return fmt.Errorf("wal truncate: %w", err)
		}
		keep++
	}
	if keep > 0 {
		w.segments = slices.Delete(w.segments, 0, keep)
		return syncDir(w.dir)
	}
	return nil
}

// TruncateAfter forgets the entries after index. Only the latest Append can
// be taken back this way (the store refused it).
func (w *Log) TruncateAfter(index uint64) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if index >= w.last {
		return nil
	}
	if w.f == nil || index+1 != w.lastAppendFirst {
		return errors.New("wal: only the latest append can be taken back")
	}
	if err := w.f.Truncate(w.lastAppendOff); err != nil {
		return fmt.Errorf("wal truncate: %w", err)
	}
	if _, err := w.f.Seek(w.lastAppendOff, io.SeekStart); err != nil {
		return fmt.Errorf("wal truncate: %w", err)
	}
	if err := w.f.Sync(); err != nil {
		return fmt.Errorf("wal truncate: %w", err)
	}
	w.size, w.last = w.lastAppendOff, index
	return nil
}

// Close closes the log.
func (w *Log) Close() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.f == nil {
		return nil
	}
	err := w.f.Close()
	w.f = nil
	return err
}

// classify wraps disk-full errors with store.ErrNoSpace, as the store
// does its own.
func classify(err error) error {
	if errors.Is(err, syscall.ENOSPC) || errors.Is(err, syscall.EDQUOT) || errors.Is(err, syscall.EFBIG) {
		return fmt.Errorf("%w: %w", store.ErrNoSpace, err)
	}
	return err
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}
