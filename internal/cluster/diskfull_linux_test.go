package cluster

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"kvstore.dev/kvstore/internal/store"
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

// TestDiskFull fills a real filesystem through a single node's write path
// (Raft's log, buffered apply, background flush): writes fail (the first
// with ErrNoSpace), nothing acknowledged is lost, reads keep working, and
// once space is freed writes succeed again and a restart recovers
// everything.
func TestDiskFull(t *testing.T) {
	dir := mountTinyFS(t, 4<<20)
	ballast := filepath.Join(dir, "ballast")
	if err := os.WriteFile(ballast, make([]byte, 512<<10), 0o600); err != nil {
		t.Fatal(err)
	}
	// Segments of 128 KiB, not 64 MiB: raft-wal preallocates each.
	n := startSingle(t, dir, func(c *Config) {
		c.Flush, c.ApplyTimeout, c.LogSegmentSize = store.FlushPolicy{MaxKeys: 4}, 2*time.Second, 128<<10
	})
	value := string(make([]byte, 16<<10))
	acked := 0
	var fullErr error
	for i := range 1000 {
		r, err := put(context.Background(), n, fmt.Sprintf("k%04d", i), value)
		if err != nil {
			fullErr = err
			break
		}
		if !r.Created {
			t.Fatalf("write %d: %+v", i, r)
		}
		acked++
	}
	t.Logf("disk full after %d acknowledged 16 KiB writes: %v", acked, fullErr)
	if !errors.Is(fullErr, store.ErrNoSpace) {
		t.Fatalf("after %d writes: err = %v, want ErrNoSpace", acked, fullErr)
	}
	check := func(n *testNode, want int) {
		t.Helper()
		for i := range want {
			if _, err := n.st.Get(fmt.Sprintf("k%04d", i), time.Now(), false); err != nil {
				t.Fatalf("acknowledged key k%04d: %v", i, err)
			}
		}
	}
	check(n, acked)
	// The leader whose log refused an entry steps down; it elects itself
	// again only if Raft can persist its term (the log's free pages may
	// hold it and the entry), else not until space is freed.
	_, moreErr := put(context.Background(), n, "more", value)
	if moreErr != nil && !errors.Is(moreErr, store.ErrNoSpace) && !errors.Is(moreErr, store.ErrNoQuorum) {
		t.Errorf("another write on the full disk: err = %v, want success, ErrNoSpace or ErrNoQuorum", moreErr)
	}
	check(n, acked)
	if err := os.Remove(ballast); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "a leader again once space is freed", n.Ready)
	for i := acked; i < acked+5; i++ {
		if _, err := put(context.Background(), n, fmt.Sprintf("k%04d", i), "small"); err != nil {
			t.Fatalf("write after freeing space: %v", err)
		}
	}
	n.stop()
	n = startSingle(t, dir, func(c *Config) { c.LogSegmentSize = 128 << 10 })
	if _, err := n.ReadBarrier(context.Background(), Linearizable); err != nil {
		t.Fatalf("read barrier after the restart: %v", err)
	}
	check(n, acked+5)
	if _, err := n.st.Get("more", time.Now(), false); (err == nil) != (moreErr == nil) {
		t.Errorf("the other write (err %v) after the restart: %v", moreErr, err)
	}
}
