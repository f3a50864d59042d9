package wal

import (
	"fmt"
	"os"
	"reflect"
	"testing"

	"kvstore.dev/kvstore/internal/store"
)

func put(key, value string) store.Command {
	return store.Command{Op: store.OpPut, Key: key, Value: []byte(value), ContentType: "text/plain", Now: 1}
}

func appendN(t *testing.T, w *Log, from, n int) {
	t.Helper()
	var entries []store.Entry
	for i := from; i < from+n; i++ {
		entries = append(entries, store.Entry{Index: uint64(i), Command: put(fmt.Sprint(i), "value-"+fmt.Sprint(i))})
	}
	if err := w.Append(entries); err != nil {
		t.Fatal(err)
	}
}

func replayed(t *testing.T, w *Log, after uint64) []uint64 {
	t.Helper()
	var got []uint64
	err := w.Replay(after, 3, func(es []store.Entry) error {
		for _, e := range es {
			if string(e.Command.Value) != fmt.Sprintf("value-%d", e.Index) {
				t.Errorf("entry %d holds %q", e.Index, e.Command.Value)
			}
			got = append(got, e.Index)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return got
}

func seq(from, to uint64) []uint64 {
	var out []uint64
	for i := from; i <= to; i++ {
		out = append(out, i)
	}
	return out
}

func TestWALSegmentsAndTruncation(t *testing.T) {
	old := segmentBytes
	segmentBytes = 200 // a few entries per segment
	defer func() { segmentBytes = old }()
	dir := t.TempDir() + "/wal"
	w, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	for i := 1; i <= 30; i += 3 {
		appendN(t, w, i, 3)
	}
	if len(w.segments) < 4 {
		t.Fatalf("only %d segments: rotation not exercised", len(w.segments))
	}
	if got := replayed(t, w, 0); !reflect.DeepEqual(got, seq(1, 30)) {
		t.Fatalf("replay = %v", got)
	}
	if got := replayed(t, w, 17); !reflect.DeepEqual(got, seq(18, 30)) {
		t.Fatalf("replay after 17 = %v", got)
	}
	if err := w.TruncateThrough(17); err != nil {
		t.Fatal(err)
	}
	if got := replayed(t, w, 17); !reflect.DeepEqual(got, seq(18, 30)) {
		t.Fatalf("after truncation, replay after 17 = %v", got)
	}
	if err := w.TruncateAfter(27); err != nil {
		t.Fatal(err)
	}
	if err := w.TruncateAfter(20); err == nil {
		t.Error("TruncateAfter beyond the latest append succeeded")
	}
	w.Close()
	w, err = Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	if got := replayed(t, w, 17); !reflect.DeepEqual(got, seq(18, 27)) {
		t.Fatalf("after reopen = %v", got)
	}
	if err := w.Append([]store.Entry{{Index: 40, Command: put("x", "y")}}); err == nil {
		t.Error("append with a gap succeeded")
	}
	appendN(t, w, 28, 2)
	if got := replayed(t, w, 25); !reflect.DeepEqual(got, seq(26, 29)) {
		t.Fatalf("after appending again = %v", got)
	}
}

// TestWALTornTail damages the end of the last segment the ways a crash can
// and checks that reopening keeps every complete record before it and
// appends cleanly after.
func TestWALTornTail(t *testing.T) {
	tests := map[string]func(path string, size int64){
		"half a header": func(path string, size int64) { appendBytes(path, []byte{0, 0, 0}) },
		"half a record": func(path string, size int64) {
			os.Truncate(path, size-5)
		},
		"garbage": func(path string, size int64) { appendBytes(path, []byte("\x00\x00\x00\x10garbagegarbagegarbage")) },
		"flipped bit in the last record": func(path string, size int64) {
			f, _ := os.OpenFile(path, os.O_RDWR, 0)
			b := make([]byte, 1)
			f.ReadAt(b, size-3)
			b[0] ^= 0x40
			f.WriteAt(b, size-3)
			f.Close()
		},
	}
	for name, damage := range tests {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir() + "/wal"
			w, _ := Open(dir)
			appendN(t, w, 1, 5)
			appendN(t, w, 6, 1)
			path := w.segPath(w.segments[0])
			w.Close()
			fi, _ := os.Stat(path)
			damage(path, fi.Size())
			w, err := Open(dir)
			if err != nil {
				t.Fatal(err)
			}
			defer w.Close()
			want := seq(1, 6)
			if name != "half a header" && name != "garbage" {
				want = seq(1, 5) // the last record itself was damaged
			}
			if got := replayed(t, w, 0); !reflect.DeepEqual(got, want) {
				t.Fatalf("after damage: %v, want %v", got, want)
			}
			appendN(t, w, len(want)+1, 2)
			if got := replayed(t, w, 0); !reflect.DeepEqual(got, seq(1, uint64(len(want)+2))) {
				t.Fatalf("after appending: %v", got)
			}
		})
	}
}

func appendBytes(path string, b []byte) {
	f, _ := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
	f.Write(b)
	f.Close()
}
