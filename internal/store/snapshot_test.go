package store

import (
	"bytes"
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestSnapshotAndReplace(t *testing.T) {
	now := time.Now()
	src := mustOpenAt(t, filepath.Join(t.TempDir(), DBFile))
	if _, err := src.ApplyBuffered([]Entry{
		{Index: 1, Command: Command{Op: OpPut, Key: "a", Value: []byte("1"), Now: now.UnixNano()}},
		{Index: 2, Command: Command{Op: OpPut, Key: "b", Value: []byte("2"), Now: now.UnixNano()}},
	}); err != nil {
		t.Fatal(err)
	}
	snap, err := src.OpenSnapshot()
	if err != nil {
		t.Fatal(err)
	}
	// A write after the snapshot opened is not in it.
	if _, err := src.ApplyBuffered([]Entry{{Index: 3, Command: Command{Op: OpPut, Key: "c", Value: []byte("3"), Now: now.UnixNano()}}}); err != nil {
		t.Fatal(err)
	}
	if err := src.Flush(); err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if _, err := snap.WriteTo(&buf); err != nil {
		t.Fatal(err)
	}
	if snap.AppliedIndex() != 2 {
		t.Errorf("snapshot applied index %d, want 2", snap.AppliedIndex())
	}
	if err := snap.Close(); err != nil {
		t.Fatal(err)
	}

	dst := mustOpenAt(t, filepath.Join(t.TempDir(), DBFile))
	if _, err := dst.ApplyBuffered([]Entry{{Index: 7, Command: Command{Op: OpPut, Key: "old", Value: []byte("x"), Now: now.UnixNano()}}}); err != nil {
		t.Fatal(err)
	}
	_, sub, err := dst.Subscribe("", 0, false)
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()

	// Garbage is refused and the old state stays.
	if _, err := dst.ReplaceFrom(strings.NewReader("not a database")); err == nil {
		t.Fatal("garbage accepted as a snapshot")
	}
	if kv, err := dst.Get("old", now, true); err != nil || string(kv.Value) != "x" {
		t.Fatalf("old state lost after a refused snapshot: %v %v", kv, err)
	}

	st, err := dst.ReplaceFrom(&buf)
	if err != nil {
		t.Fatal(err)
	}
	if st.AppliedIndex != 2 || dst.AppliedIndex() != 2 || st.Keys != 2 {
		t.Errorf("after replace: %+v, applied %d", st, dst.AppliedIndex())
	}
	for key, want := range map[string]string{"a": "1", "b": "2"} {
		kv, err := dst.Get(key, now, true)
		if err != nil || string(kv.Value) != want {
			t.Errorf("get %s: %q %v", key, kv.Value, err)
		}
	}
	for _, gone := range []string{"old", "c"} {
		if _, err := dst.Get(gone, now, false); !errors.Is(err, ErrNotFound) {
			t.Errorf("get %s after replace: %v, want not found", gone, err)
		}
	}
	<-sub.Done()
	if !errors.Is(sub.Err(), ErrCompacted) {
		t.Errorf("watcher ended with %v, want ErrCompacted", sub.Err())
	}
	// Replaying the log after the snapshot continues from it; entries at
	// or below its index are skipped.
	if _, err := dst.ApplyBuffered([]Entry{
		{Index: 2, Command: Command{Op: OpDelete, Key: "a", Now: now.UnixNano()}},
		{Index: 3, Command: Command{Op: OpPut, Key: "c", Value: []byte("3"), Now: now.UnixNano()}},
	}); err != nil {
		t.Fatal(err)
	}
	if _, err := dst.Get("a", now, false); err != nil {
		t.Errorf("entry 2 was applied twice: %v", err)
	}
	// The replaced file persists across a reopen.
	path := dst.Path()
	if err := dst.Close(); err != nil {
		t.Fatal(err)
	}
	re := mustOpenAt(t, path)
	if re.AppliedIndex() != 3 {
		t.Errorf("reopened applied index %d, want 3", re.AppliedIndex())
	}
}
