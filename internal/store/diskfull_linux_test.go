package store

import (
	"errors"
	"fmt"
	"os"
	"syscall"
	"testing"
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

// TestDiskFull fills a real filesystem: the failing write reports ErrNoSpace,
// nothing acknowledged is lost, the store keeps serving reads, and the file
// reopens consistent.
func TestDiskFull(t *testing.T) {
	dir := mountTinyFS(t, 1<<20)
	s := mustOpenAt(t, dir+"/"+DBFile)
	value := make([]byte, 16<<10)
	acked := 0
	var fullErr error
	for i := range 1000 {
		_, err := s.Apply([]Entry{{Index: s.AppliedIndex() + 1, Command: put(fmt.Sprintf("k%04d", i), string(value))}})
		if err != nil {
			fullErr = err
			break
		}
		acked++
	}
	if !errors.Is(fullErr, ErrNoSpace) {
		t.Fatalf("after %d writes: err = %v, want ErrNoSpace", acked, fullErr)
	}
	t.Logf("disk full after %d acknowledged 16 KiB writes: %v", acked, fullErr)
	check := func(s *Store) {
		t.Helper()
		for i := range acked {
			if _, err := s.Get(fmt.Sprintf("k%04d", i), t0, false); err != nil {
				t.Fatalf("acknowledged key k%04d: %v", i, err)
			}
		}
		if st := s.Status(); st.Keys != int64(acked) || st.Revision != uint64(acked) {
			t.Fatalf("status %+v, want %d keys at revision %d", st, acked, acked)
		}
	}
	check(s)
	// A small write may still fit; either way the store stays consistent.
	if _, err := s.Apply([]Entry{{Index: s.AppliedIndex() + 1, Command: put("big", string(make([]byte, 512<<10)))}}); !errors.Is(err, ErrNoSpace) {
		t.Errorf("512 KiB write on a full disk: err = %v, want ErrNoSpace", err)
	}
	check(s)
	check(reopen(t, s))
}
