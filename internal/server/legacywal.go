package server

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"kvstore.dev/kvstore/internal/store"
)

var legacyCRC = crc32.MakeTable(crc32.Castagnoli)

// replayLegacyWAL applies, once, the entries that a data dir of the
// single-node write path which a one-server Raft cluster replaced (issue
// 16) holds in its write-ahead log (store.WALDir: segment files "<first
// index, 20 digits>.wal" of records [length u32][CRC-32C u32][index u64]
// [store.Command binary], big-endian, the CRC over index and command) after the store's applied index (writes acknowledged
// but not yet flushed to kv.db when it stopped), flushes them, and sets the
// WAL aside as wal.replayed-<unix time>. A torn last record (a write never
// acknowledged) ends the log, as it did there. A data dir with both a WAL
// and Raft state is refused: the WAL's indexes are not Raft's.
func replayLegacyWAL(st *store.Store, dataDir string, log *slog.Logger) error {
	dir := filepath.Join(dataDir, store.WALDir)
	if _, err := os.Stat(dir); errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if _, err := os.Stat(filepath.Join(dataDir, store.RaftDir)); err == nil {
		return fmt.Errorf("refusing to start: %s holds both %s (the write-ahead log of a kvstore before issue 16) and %s; "+
			"if the server ran with %s since, its writes are in %s: move %s away and start again",
			dataDir, dir, store.RaftDir, store.RaftDir, store.RaftDir, dir)
	}
	segments, err := filepath.Glob(filepath.Join(dir, "*.wal")) // sorted: the names are zero-padded
	if err != nil {
		return fmt.Errorf("legacy wal: %w", err)
	}
	var entries []store.Entry
	var last uint64
	for _, seg := range segments {
		b, err := os.ReadFile(seg)
		if err != nil {
			return fmt.Errorf("legacy wal: %w", err)
		}
		for len(b) >= 16 {
			n, sum, index := binary.BigEndian.Uint32(b), binary.BigEndian.Uint32(b[4:]), binary.BigEndian.Uint64(b[8:])
			if n == 0 || uint64(n) > uint64(len(b)-16) || (last != 0 && index != last+1) ||
				crc32.Update(crc32.Checksum(b[8:16], legacyCRC), legacyCRC, b[16:16+n]) != sum {
				break // a torn tail
			}
			if index > st.AppliedIndex() {
				var cmd store.Command
				if err := cmd.UnmarshalBinary(b[16 : 16+n]); err != nil {
					return fmt.Errorf("legacy wal %s, entry %d: %w", seg, index, err)
				}
				entries = append(entries, store.Entry{Index: index, Command: cmd})
			}
			last, b = index, b[16+n:]
		}
	}
	if len(entries) > 0 {
		if _, err := st.ApplyBuffered(entries); err != nil {
			return fmt.Errorf("replay legacy wal %s: %w", dir, err)
		}
		if err := st.Flush(); err != nil {
			return fmt.Errorf("replay legacy wal %s: %w", dir, err)
		}
	}
	aside := fmt.Sprintf("%s.replayed-%d", dir, time.Now().Unix())
	if err := os.Rename(dir, aside); err != nil {
		return fmt.Errorf("set the replayed wal aside: %w", err)
	}
	if d, err := os.Open(dataDir); err == nil {
		_ = d.Sync()
		d.Close()
	}
	log.Info("replayed the write-ahead log of the former single-node write path", "entries", len(entries),
		"applied_index", st.AppliedIndex(), "set_aside", aside)
	return nil
}
