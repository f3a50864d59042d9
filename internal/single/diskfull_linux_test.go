package single

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"kvstore.dev/kvstore/internal/store"
	"kvstore.dev/kvstore/internal/wal"
)

// mountTinyFS mounts a tmpfs of size bytes on a temp dir, to fill a real
// disk. It needs root (CAP_SYS_ADMIN); CI runs as root, so there a failure
// to mount fails the test instead of skipping it.
func mountTinyFS(t *testing.T, size int) string {
	t.Helper()
	dir := t.TempDir()
	if err := syscall.Mount("tmpfs", dir, "tmpfs", 0, fmt.Sprintf("size=%d", size)); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("cannot mount a tmpfs to test a full disk (CI runs as root): %v", err)
		}
		t.Skipf("SKIPPED: cannot mount a tmpfs to test a full disk (needs root): %v", err)
	}
	t.Cleanup(func() { syscall.Unmount(dir, syscall.MNT_DETACH) })
	return dir
}

// TestDiskFull fills a real filesystem through the real write path (WAL,
// buffered apply, background flush): writes fail with ErrNoSpace, nothing
// acknowledged is lost, reads keep working, a restart on the full disk
// recovers everything, and writes succeed again once space is freed.
func TestDiskFull(t *testing.T) {
	dir := mountTinyFS(t, 2<<20)
	ballast := filepath.Join(dir, "ballast")
	if err := os.WriteFile(ballast, make([]byte, 512<<10), 0o600); err != nil {
		t.Fatal(err)
	}
	open := func() (*store.Store, *Committer, *wal.Log) {
		s, err := store.Open(filepath.Join(dir, store.DBFile), store.Options{})
		if err != nil {
			t.Fatal(err)
		}
		w, err := wal.Open(filepath.Join(dir, store.WALDir))
		if err != nil {
			t.Fatal(err)
		}
		c, err := New(s, w, Options{Flush: store.FlushPolicy{MaxKeys: 4}}) // writers wait past 16 keys
		if err != nil {
			t.Fatalf("single.New on a full disk: %v", err)
		}
		t.Cleanup(func() { c.Close(); s.Close(); w.Close() })
		return s, c, w
	}
	s, c, w := open()
	value := string(make([]byte, 16<<10))
	acked := 0
	var fullErr error
	for i := range 1000 {
		res, err := c.Propose(context.Background(), put(fmt.Sprintf("k%04d", i), value))
		if err != nil {
			fullErr = err
			break
		}
		if res[0].Err != nil || !res[0].Created {
			t.Fatalf("write %d: %+v", i, res[0])
		}
		acked++
	}
	if !errors.Is(fullErr, store.ErrNoSpace) {
		t.Fatalf("after %d writes: err = %v, want ErrNoSpace", acked, fullErr)
	}
	t.Logf("disk full after %d acknowledged 16 KiB writes: %v", acked, fullErr)
	check := func(s *store.Store, n int) {
		t.Helper()
		for i := range n {
			if _, err := s.Get(fmt.Sprintf("k%04d", i), t0, false); err != nil {
				t.Fatalf("acknowledged key k%04d: %v", i, err)
			}
		}
		if st := s.Status(); st.Keys != int64(n) {
			t.Fatalf("status %+v, want %d keys", st, n)
		}
	}
	check(s, acked)
	if _, err := c.Propose(context.Background(), put("more", value)); !errors.Is(err, store.ErrNoSpace) {
		t.Errorf("another write on the full disk: err = %v, want ErrNoSpace", err)
	}
	check(s, acked)

	// Restart on the full disk: the WAL replays what was not flushed.
	c.Close()
	s.Close()
	w.Close()
	s, c, _ = open()
	check(s, acked)

	// Free space: writes succeed again.
	if err := os.Remove(ballast); err != nil {
		t.Fatal(err)
	}
	for i := acked; i < acked+5; i++ {
		if _, err := c.Propose(context.Background(), put(fmt.Sprintf("k%04d", i), "small")); err != nil {
			t.Fatalf("write after freeing space: %v", err)
		}
	}
	check(s, acked+5)
}
