package cluster

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"syscall"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"
	wal "github.com/hashicorp/raft-wal"
	"github.com/hashicorp/raft-wal/metadb"

	"kvstore.dev/kvstore/internal/store"
)

// The Raft log and stable store is github.com/hashicorp/raft-wal (issue
// 15): segment files of 64 MiB, preallocated, appended to with one fsync
// per StoreLogs, and a small bbolt file for the segment list and Raft's
// term and vote, in <Dir>/wal. A kvstore before it kept both in
// raft-boltdb's <Dir>/raft.db (two fdatasyncs per append,
// docs/benchmarks.md); that file is not read, and a node holding it
// refuses to start (ErrLogFormat).
const (
	walDir         = "wal"
	boltLogFile    = "raft.db"
	walSegmentSize = 64 << 20
)

// ErrLogFormat means a node's Raft directory holds a log this version does
// not read: raft-boltdb's raft.db of an older kvstore, or a raft-wal
// directory that does not open as one. Start and ReadServers refuse it
// (wrapped, with the path and what to do); nothing is changed on disk.
var ErrLogFormat = errors.New("kvstore: raft log in a format this version does not read")

// logStore is the Raft log and stable store: the raft-wal log in a
// directory, held open under an exclusive flock of that directory (another
// process or node on it is refused at open, not blocked). It remembers
// whether its last write failed for want of disk space (Raft's log cache
// keeps only the text of that error, and a write it refused is not in the
// log). raft-wal leaves itself unwritable after a failed append or
// segment rotation (a full disk), so a failed StoreLogs closes and reopens
// the log, which recovers it from disk to its last committed entry; while
// that reopening fails, every call retries it. Safe for concurrent use.
type logStore struct {
	dir         string
	segmentSize int
	logger      hclog.Logger
	full        atomic.Bool

	mu     sync.RWMutex
	lock   *os.File // dir, flocked while open
	w      *wal.WAL // nil when closed, or while a reopen fails
	meta   *metadb.BoltMetaDB
	closed bool
}

// openLogStore opens the Raft log in raftDir/wal, creating an empty one if
// raftDir holds no log yet (and create is set; else it returns nil, nil).
// It refuses, with ErrLogFormat, a raftDir holding raft-boltdb's raft.db
// and a wal directory that raft-wal cannot read, and with an error naming
// the directory a log another process holds open. segmentSize is the
// size of one segment file; 0 takes 64 MiB.
func openLogStore(raftDir string, segmentSize int, create bool, logger hclog.Logger) (*logStore, error) {
	dir := filepath.Join(raftDir, walDir)
	if err := checkLogFormat(raftDir); err != nil {
		return nil, err
	}
	if _, err := os.Stat(dir); errors.Is(err, fs.ErrNotExist) && !create {
		return nil, nil
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("raft log: %w", err)
	}
	if segmentSize <= 0 {
		segmentSize = walSegmentSize
	}
	if logger == nil {
		logger = hclog.New(&hclog.LoggerOptions{Output: io.Discard})
	}
	l := &logStore{dir: dir, segmentSize: segmentSize, logger: logger}
	lock, err := os.Open(dir)
	if err != nil {
		return nil, fmt.Errorf("raft log: %w", err)
	}
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		lock.Close()
		return nil, fmt.Errorf("the raft log %s is in use by another process or node (stop the server first): %w", dir, err)
	}
	l.lock = lock
	if err := l.openLocked(); err != nil {
		lock.Close()
		if !isIOError(err) {
			return nil, fmt.Errorf("%w: the raft log %s does not open as a raft-wal log (%v); it is not changed. "+
				"To bring a cluster member back, stop it, remove %s and %s and start it again: it rejoins and receives the cluster's state. "+
				"A single node: restore its latest snapshot into a fresh data dir (kvstore restore)",
				ErrLogFormat, dir, err, raftDir, filepath.Join(filepath.Dir(raftDir), store.DBFile))
		}
		return nil, fmt.Errorf("open raft log %s: %w", dir, err)
	}
	return l, nil
}

// checkLogFormat refuses a raftDir whose log this version does not read:
// raft-boltdb's raft.db (beside a wal directory or not: with both, the
// older version may have run last), or segment files without the WAL's
// metadata file (raft-wal would start an empty log and delete them).
func checkLogFormat(raftDir string) error {
	dir := filepath.Join(raftDir, walDir)
	if old := filepath.Join(raftDir, boltLogFile); fileExists(old) {
		return fmt.Errorf("%w: %s is a Raft log in raft-boltdb's format, written by a kvstore before the raft-wal log store (issue 15), "+
			"and this version reads only raft-wal's (%s); it does not migrate it, and nothing was changed. "+
			"A cluster member: stop it, remove %s and %s and start it again: it rejoins and receives the cluster's state from the leader. "+
			"A single node: take a snapshot with the older version (GET /api/v1/snapshot), stop it, move %s aside, "+
			"then `kvstore restore --from <snapshot> --data-dir %s --force` and start this version: it adopts the snapshot as its state",
			ErrLogFormat, old, dir, raftDir, filepath.Join(filepath.Dir(raftDir), store.DBFile), raftDir, filepath.Dir(raftDir))
	}
	segments, _ := filepath.Glob(filepath.Join(dir, "*.wal"))
	if len(segments) > 0 && !fileExists(filepath.Join(dir, metadb.FileName)) {
		return fmt.Errorf("%w: %s holds %d raft-wal segment files but not its metadata file %s, so the log cannot be read "+
			"(opening it would start an empty log); nothing was changed. To bring a cluster member back, stop it, remove %s and %s and start it again: "+
			"it rejoins and receives the cluster's state",
			ErrLogFormat, dir, len(segments), metadb.FileName, raftDir, filepath.Join(filepath.Dir(raftDir), store.DBFile))
	}
	return nil
}

func fileExists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}

// isIOError reports whether err, from opening the log, is the system's
// (a full disk, permissions) rather than about what the files hold.
func isIOError(err error) bool {
	var errno syscall.Errno
	return errors.As(err, &errno)
}

// openLocked opens the WAL; l.mu is held, or l is not shared yet.
func (l *logStore) openLocked() error {
	// raft-wal's Close (v0.4.0, v0.4.1) leaves its metadata file open (and locked),
	// so the store keeps it and closes it too.
	meta := &metadb.BoltMetaDB{}
	w, err := wal.Open(l.dir, wal.WithMetaStore(meta), wal.WithSegmentSize(l.segmentSize), wal.WithLogger(l.logger))
	if err != nil {
		meta.Close()
		return err
	}
	if err := checkReadable(w); err != nil {
		w.Close()
		meta.Close()
		return err
	}
	l.w, l.meta = w, meta
	return nil
}

// checkReadable reads the log's first and last entries, so that a log
// raft would fail to read (and panic on, in NewRaft) is refused at open
// with what to do instead. raft-wal v0.4.0 marked a segment sealed on a
// tail truncation without writing its index block, so every entry of it
// was unreadable after a restart (hashicorp/raft-wal#31, fixed in v0.4.1);
// a log written by such a version is refused here.
func checkReadable(w *wal.WAL) error {
	first, err := w.FirstIndex()
	if err != nil {
		return err
	}
	last, err := w.LastIndex()
	if err != nil || last == 0 {
		return err
	}
	var entry raft.Log
	for _, i := range []uint64{first, last} {
		if err := w.GetLog(i, &entry); err != nil {
			return fmt.Errorf("entry %d of %d..%d does not read: %w", i, first, last, err)
		}
	}
	return nil
}

func (l *logStore) closeLocked() error {
	if l.w == nil {
		return nil
	}
	err := errors.Join(l.w.Close(), l.meta.Close())
	l.w, l.meta = nil, nil
	return err
}

// get returns the open WAL, reopening it first if a reopen failed before,
// and the function that releases it.
func (l *logStore) get() (*wal.WAL, func(), error) {
	l.mu.RLock()
	if l.w != nil {
		return l.w, l.mu.RUnlock, nil
	}
	l.mu.RUnlock()
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return nil, nil, wal.ErrClosed
	}
	if l.w == nil {
		if err := l.openLocked(); err != nil {
			l.mu.Unlock()
			l.setFull(err)
			return nil, nil, fmt.Errorf("reopen raft log %s: %w", l.dir, err)
		}
	}
	return l.w, l.mu.Unlock, nil
}

func (l *logStore) setFull(err error) {
	l.full.Store(errors.Is(err, syscall.ENOSPC) || errors.Is(err, syscall.EDQUOT) || errors.Is(err, syscall.EFBIG))
}

// StoreLogs appends logs. After a failure it reopens the log, so that the
// next append finds it writable once there is room, and drops anything
// of logs the reopened log holds (written, but its fsync failed): Raft
// takes a failed StoreLogs as nothing stored. An append refused with
// wal.ErrSealed (raft-wal rotates segments in the background, and a
// rotation that failed, say for want of space to create the next segment,
// leaves the tail sealed) is tried once more on the reopened log, whose
// opening made a new tail: its error is then the real one (ENOSPC sets
// full), or there was room after all.
func (l *logStore) StoreLogs(logs []*raft.Log) error {
	w, release, err := l.get()
	if err != nil {
		return err
	}
	err = w.StoreLogs(logs)
	release()
	l.setFull(err)
	if err == nil || errors.Is(err, wal.ErrClosed) || len(logs) == 0 {
		return err
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed || l.w != w {
		return err
	}
	for retried := false; ; retried = true {
		if err := l.reopenAfterLocked(err, logs[0].Index); err != nil {
			return err
		}
		if retried || !errors.Is(err, wal.ErrSealed) {
			return err
		}
		if err = l.w.StoreLogs(logs); err == nil {
			l.setFull(nil)
			return nil
		}
		l.setFull(err)
	}
}

// reopenAfterLocked closes and reopens the log after the append of entries
// from index first failed with failed, and drops what of them the reopened
// log holds. It returns an error only when that does not work (the log
// stays closed, and the next call reopens it). l.mu is held.
func (l *logStore) reopenAfterLocked(failed error, first uint64) error {
	if cerr := l.closeLocked(); cerr != nil {
		l.logger.Warn("close the raft log after a failed append", "error", cerr)
	}
	if oerr := l.openLocked(); oerr != nil {
		l.setFull(errors.Join(failed, oerr))
		return fmt.Errorf("%w (reopening the log: %v)", failed, oerr)
	}
	if last, lerr := l.w.LastIndex(); lerr == nil && last >= first {
		if derr := l.w.DeleteRange(first, last); derr != nil {
			return errors.Join(failed, fmt.Errorf("drop the entries of a failed append: %w", derr))
		}
	}
	return nil
}

func (l *logStore) StoreLog(log *raft.Log) error { return l.StoreLogs([]*raft.Log{log}) }

func (l *logStore) FirstIndex() (uint64, error) {
	w, release, err := l.get()
	if err != nil {
		return 0, err
	}
	defer release()
	return w.FirstIndex()
}

func (l *logStore) LastIndex() (uint64, error) {
	w, release, err := l.get()
	if err != nil {
		return 0, err
	}
	defer release()
	return w.LastIndex()
}

func (l *logStore) GetLog(index uint64, log *raft.Log) error {
	w, release, err := l.get()
	if err != nil {
		return err
	}
	defer release()
	return w.GetLog(index, log)
}

func (l *logStore) DeleteRange(min, max uint64) error {
	w, release, err := l.get()
	if err != nil {
		return err
	}
	defer release()
	return w.DeleteRange(min, max)
}

// IsMonotonic tells Raft (raft.MonotonicLogStore, through its log cache)
// that the log takes no gaps: after installing a snapshot it empties the
// log rather than keep entries before it.
func (l *logStore) IsMonotonic() bool { return true }

func (l *logStore) Set(key, val []byte) error {
	w, release, err := l.get()
	if err != nil {
		return l.afterClose(err)
	}
	defer release()
	err = w.Set(key, val)
	l.setFull(err)
	return err
}

func (l *logStore) Get(key []byte) ([]byte, error) {
	w, release, err := l.get()
	if err != nil {
		return nil, err
	}
	defer release()
	return w.Get(key)
}

func (l *logStore) SetUint64(key []byte, val uint64) error {
	w, release, err := l.get()
	if err != nil {
		return l.afterClose(err)
	}
	defer release()
	err = w.SetUint64(key, val)
	l.setFull(err)
	return err
}

func (l *logStore) GetUint64(key []byte) (uint64, error) {
	w, release, err := l.get()
	if err != nil {
		return 0, err
	}
	defer release()
	return w.GetUint64(key)
}

// afterClose is what a stable-store write returns for err: nil once the
// store is closed, err otherwise. Node.Close closes the store only after
// Raft's Shutdown, but hashicorp/raft's transport answers heartbeats
// outside Raft's main loop and Shutdown does not wait for a heartbeat in
// flight: one that carries a newer term then saves it here, and Raft
// panics when that fails ("failed to save current term: closed"). No vote
// follows such a write (votes go through the main loop, which has
// stopped), so dropping it is safe; the node is shutting down.
func (l *logStore) afterClose(err error) error {
	l.mu.RLock()
	closed := l.closed
	l.mu.RUnlock()
	if closed && errors.Is(err, wal.ErrClosed) {
		return nil
	}
	return err
}

// Close closes the log and releases its directory. Later calls fail with
// raft-wal's ErrClosed, but for the stable store's writes, which are
// dropped (afterClose).
func (l *logStore) Close() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return nil
	}
	l.closed = true
	err := l.closeLocked()
	return errors.Join(err, l.lock.Close())
}
