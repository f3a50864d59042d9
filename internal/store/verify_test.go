package store

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
)

// validSnapshot returns a small snapshot's bytes: three keys written in one
// flush (so each key's bytes occur once in the file), one with a TTL.
func validSnapshot(t testing.TB) []byte {
	t.Helper()
	dir := t.TempDir()
	s, err := Open(filepath.Join(dir, DBFile), Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ttl := put("m/ttl", "VALUE-ttl")
	ttl.ExpiresAt = t0.Add(time.Hour).UnixNano()
	if _, err := s.Apply([]Entry{
		{Index: 1, Command: put("a/one", "VALUE-one")},
		{Index: 2, Command: put("m/abc", "VALUE-abc")},
		{Index: 3, Command: ttl},
	}); err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if _, err := s.WriteSnapshot(&buf); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// patchOnce replaces the single occurrence of old in b with repl (same
// length).
func patchOnce(t *testing.T, b []byte, old, repl string) []byte {
	t.Helper()
	if n := bytes.Count(b, []byte(old)); n != 1 {
		t.Fatalf("%q occurs %d times in the snapshot, want 1", old, n)
	}
	i := bytes.Index(b, []byte(old))
	out := bytes.Clone(b)
	copy(out[i:], repl)
	return out
}

// TestVerifyRefusesDamagedSnapshots: each damaged file is refused, by
// Restore and by ReplaceFrom, with an error saying what is wrong, and the
// old data stays.
func TestVerifyRefusesDamagedSnapshots(t *testing.T) {
	good := validSnapshot(t)
	headerOf := func(value string) int { // offset of the record header of value's record
		return bytes.Index(good, []byte("text/plain"+value)) - recordHeader
	}
	tests := map[string]struct {
		damage func(t *testing.T) []byte
		want   string
	}{
		"truncated": {
			damage: func(t *testing.T) []byte { return good[:len(good)/2] },
			want:   "truncated",
		},
		"flipped record version": {
			damage: func(t *testing.T) []byte {
				b := bytes.Clone(good)
				b[headerOf("VALUE-abc")] ^= 0xff
				return b
			},
			want: "record header",
		},
		"flipped record revision": {
			damage: func(t *testing.T) []byte {
				b := bytes.Clone(good)
				b[headerOf("VALUE-one")+9] ^= 0x80 // mod revision's top byte
				return b
			},
			want: "revisions out of order",
		},
		"key changed to an invalid key": {
			damage: func(t *testing.T) []byte { return patchOnce(t, good, "m/abc", "m/\x01bc") },
			want:   "control character",
		},
		"key changed out of order": {
			damage: func(t *testing.T) []byte { return patchOnce(t, good, "a/one", "z/one") },
			want:   "keys out of order",
		},
		"page headers overwritten": {
			damage: func(t *testing.T) []byte {
				b := bytes.Clone(good)
				ps := os.Getpagesize()
				for off := 2 * ps; off+8 <= len(b); off += ps {
					copy(b[off:], "\xde\xad\xbe\xef\xde\xad\xbe\xef")
				}
				return b
			},
			want: "header names page",
		},
		"TTL index entry without record": {
			damage: func(t *testing.T) []byte {
				path := filepath.Join(t.TempDir(), "x.db")
				if err := os.WriteFile(path, good, 0o600); err != nil {
					t.Fatal(err)
				}
				db, err := bolt.Open(path, 0o600, nil)
				if err != nil {
					t.Fatal(err)
				}
				if err := db.Update(func(tx *bolt.Tx) error {
					return tx.Bucket(bucketTTL).Put(ttlIndexKey(123, "ghost"), nil)
				}); err != nil {
					t.Fatal(err)
				}
				db.Close()
				b, err := os.ReadFile(path)
				if err != nil {
					t.Fatal(err)
				}
				return b
			},
			want: "has no record",
		},
		"garbage": {
			damage: func(t *testing.T) []byte { return bytes.Repeat([]byte("not a database "), 4096) },
			want:   "not a bbolt database",
		},
		"empty": {
			damage: func(t *testing.T) []byte { return nil },
			want:   "not a bbolt database",
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			snap := filepath.Join(t.TempDir(), "snap.db")
			if err := os.WriteFile(snap, tc.damage(t), 0o600); err != nil {
				t.Fatal(err)
			}
			// Offline restore, with force.
			dir := dataDirWith(t)
			_, err := Restore(snap, dir, true)
			if !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("Restore: %v, want ErrCorrupt saying %q", err, tc.want)
			}
			assertOldData(t, dir)
			if m, _ := filepath.Glob(filepath.Join(dir, "*pre-restore*")); len(m) > 0 {
				t.Errorf("refused restore set the old files aside: %v", m)
			}
			// A live store (a Raft snapshot install).
			s := mustOpenAt(t, filepath.Join(dataDirWith(t), DBFile))
			f, err := os.Open(snap)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			if _, err := s.ReplaceFrom(f); !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("ReplaceFrom: %v, want ErrCorrupt saying %q", err, tc.want)
			}
			if kv, err := s.Get("old", t0, true); err != nil || string(kv.Value) != "x" {
				t.Errorf("live store lost its data: %q %v", kv.Value, err)
			}
		})
	}
	// The undamaged file passes.
	snap := filepath.Join(t.TempDir(), "snap.db")
	if err := os.WriteFile(snap, good, 0o600); err != nil {
		t.Fatal(err)
	}
	if st, err := Verify(snap); err != nil || st.Keys != 3 {
		t.Fatalf("Verify(valid snapshot) = %+v, %v", st, err)
	}
}

// FuzzVerify: Verify never panics or crashes on any file, and a file it
// accepts opens as a store whose every key reads back.
func FuzzVerify(f *testing.F) {
	f.Add(validSnapshot(f))
	f.Fuzz(func(t *testing.T, b []byte) {
		path := filepath.Join(t.TempDir(), DBFile)
		if err := os.WriteFile(path, b, 0o600); err != nil {
			t.Fatal(err)
		}
		st, err := Verify(path)
		if err != nil {
			if !errors.Is(err, ErrCorrupt) {
				t.Fatalf("Verify error %v does not wrap ErrCorrupt", err)
			}
			return
		}
		s, err := Open(path, Options{})
		if err != nil {
			t.Fatalf("verified file does not open: %v", err)
		}
		defer s.Close()
		res, err := s.List(ListOptions{Limit: 1 << 20, Now: t0})
		if err != nil {
			t.Fatalf("verified file does not list: %v", err)
		}
		if int64(len(res.Items)) > st.Keys {
			t.Fatalf("listed %d keys, verified %d", len(res.Items), st.Keys)
		}
		for _, kv := range res.Items {
			if _, err := s.Get(kv.Key, t0, true); err != nil && !errors.Is(err, ErrNotFound) {
				t.Fatalf("get %q from a verified file: %v", kv.Key, err)
			}
		}
	})
}

// TestVerifyAcceptsARealStore: a store with many pages (branch pages,
// overflow values, freed pages from several flushes, TTLs, updates and
// deletes) passes Verify.
func TestVerifyAcceptsARealStore(t *testing.T) {
	s := mustOpenStore(t)
	for round := range 5 {
		var entries []Entry
		for i := range 1000 {
			c := put(fmt.Sprintf("k/%04d", i), strings.Repeat("v", 10+round*i%300))
			switch {
			case i%7 == 0:
				c.ExpiresAt = t0.Add(time.Duration(round+1) * time.Hour).UnixNano()
			case i%11 == round:
				c = Command{Op: OpDelete, Key: c.Key, Now: t0.UnixNano()}
			case i == 500:
				c.Value = make([]byte, 64<<10) // overflow pages
			}
			entries = append(entries, Entry{Index: s.AppliedIndex() + uint64(len(entries)) + 1, Command: c})
		}
		if _, err := s.Apply(entries); err != nil {
			t.Fatal(err)
		}
	}
	var buf bytes.Buffer
	if _, err := s.WriteSnapshot(&buf); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "snap.db")
	if err := os.WriteFile(path, buf.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	st, err := Verify(path)
	if err != nil {
		t.Fatalf("Verify(a real store's snapshot): %v", err)
	}
	if want := s.Status().Keys; st.Keys != want {
		t.Errorf("verified %d keys, the store has %d", st.Keys, want)
	}
}
