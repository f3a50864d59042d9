package store

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"testing"
	"time"
)

func TestApplyCommands(t *testing.T) {
	withTTL := func(c Command, ttl time.Duration) Command { c.ExpiresAt = t0.Add(ttl).UnixNano(); return c }
	at := func(c Command, d time.Duration) Command { c.Now = t0.Add(d).UnixNano(); return c }
	ifRev := func(c Command, rev uint64) Command { c.IfRevision = rev; return c }
	ifAbsent := func(c Command) Command { c.IfAbsent = true; return c }
	ifExists := func(c Command) Command { c.IfExists = true; return c }
	del := func(key string) Command { return Command{Op: OpDelete, Key: key, Now: t0.UnixNano()} }

	type want struct {
		err      error
		created  bool
		deleted  int
		revision uint64
		version  uint64
	}
	tests := map[string]struct {
		setup []Command
		cmd   Command
		want  want
		// after: expected value of key after the command ("" = absent)
		key, value string
	}{
		"put creates": {
			cmd: put("a", "1"), want: want{created: true, revision: 1, version: 1}, key: "a", value: "1",
		},
		"put overwrites and bumps version": {
			setup: []Command{put("a", "1")},
			cmd:   put("a", "2"), want: want{revision: 2, version: 2}, key: "a", value: "2",
		},
		"cas with current revision succeeds": {
			setup: []Command{put("a", "1")},
			cmd:   ifRev(put("a", "2"), 1), want: want{revision: 2, version: 2}, key: "a", value: "2",
		},
		"cas with stale revision fails": {
			setup: []Command{put("a", "1"), put("a", "2")},
			cmd:   ifRev(put("a", "3"), 1), want: want{err: ErrPreconditionFailed, revision: 2}, key: "a", value: "2",
		},
		"cas on missing key fails": {
			cmd: ifRev(put("a", "1"), 7), want: want{err: ErrPreconditionFailed}, key: "a",
		},
		"create-only on missing key creates": {
			cmd: ifAbsent(put("a", "1")), want: want{created: true, revision: 1, version: 1}, key: "a", value: "1",
		},
		"create-only on existing key fails": {
			setup: []Command{put("a", "1")},
			cmd:   ifAbsent(put("a", "2")), want: want{err: ErrPreconditionFailed, revision: 1}, key: "a", value: "1",
		},
		"create-only on expired key creates": {
			setup: []Command{withTTL(put("a", "1"), time.Second)},
			// the expired record is removed (revision 2) before the put (revision 3)
			cmd: at(ifAbsent(put("a", "2")), 2*time.Second), want: want{created: true, revision: 3, version: 1}, key: "a", value: "2",
		},
		"if-exists on missing key fails": {
			cmd: ifExists(put("a", "1")), want: want{err: ErrPreconditionFailed}, key: "a",
		},
		"delete removes": {
			setup: []Command{put("a", "1")},
			cmd:   del("a"), want: want{deleted: 1, revision: 2}, key: "a",
		},
		"delete missing is not found": {
			cmd: del("a"), want: want{err: ErrNotFound}, key: "a",
		},
		"delete with stale revision fails": {
			setup: []Command{put("a", "1"), put("a", "2")},
			cmd:   ifRev(del("a"), 1), want: want{err: ErrPreconditionFailed, revision: 2}, key: "a", value: "2",
		},
		"delete of expired key is not found": {
			setup: []Command{withTTL(put("a", "1"), time.Second)},
			cmd:   at(del("a"), time.Minute), want: want{err: ErrNotFound, revision: 2}, key: "a",
		},
		"delete prefix counts live keys only": {
			setup: []Command{put("p/1", "x"), put("p/2", "x"), withTTL(put("p/3", "x"), time.Second), put("q/1", "x")},
			cmd:   at(Command{Op: OpDeletePrefix, Key: "p/"}, time.Minute), want: want{deleted: 2, revision: 7}, key: "q/1", value: "x",
		},
		"expire of expired key at its revision": {
			setup: []Command{withTTL(put("a", "1"), time.Second)},
			cmd:   at(Command{Op: OpExpire, Key: "a", IfRevision: 1}, time.Minute), want: want{deleted: 1, revision: 2}, key: "a",
		},
		"expire before expiry is refused": {
			setup: []Command{withTTL(put("a", "1"), time.Hour)},
			cmd:   at(Command{Op: OpExpire, Key: "a", IfRevision: 1}, time.Minute), want: want{err: ErrPreconditionFailed, revision: 1}, key: "a", value: "1",
		},
		"expire of a key rewritten since is refused": {
			setup: []Command{withTTL(put("a", "1"), time.Second), put("a", "2")},
			cmd:   at(Command{Op: OpExpire, Key: "a", IfRevision: 1}, time.Minute), want: want{err: ErrPreconditionFailed, revision: 2}, key: "a", value: "2",
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			s := mustOpenStore(t)
			for _, c := range tc.setup {
				if r := applyOne(t, s, c); r.Err != nil {
					t.Fatalf("setup %s %q: %v", c.Op, c.Key, r.Err)
				}
			}
			r := applyOne(t, s, tc.cmd)
			if !errors.Is(r.Err, tc.want.err) || (tc.want.err == nil && r.Err != nil) {
				t.Fatalf("Err = %v, want %v", r.Err, tc.want.err)
			}
			got := want{err: tc.want.err, created: r.Created, deleted: r.Deleted, revision: r.Revision}
			if tc.cmd.Op == OpPut && r.Err == nil {
				got.version = r.KV.Version
			}
			if got != tc.want {
				t.Errorf("result (-want +got):\n- %+v\n+ %+v", tc.want, got)
			}
			kv, err := s.Get(tc.key, time.Unix(0, tc.cmd.Now), true)
			switch {
			case tc.value == "" && !errors.Is(err, ErrNotFound):
				t.Errorf("Get(%q) = %q, %v; want not found", tc.key, kv.Value, err)
			case tc.value != "" && (err != nil || string(kv.Value) != tc.value):
				t.Errorf("Get(%q) = %q, %v; want %q", tc.key, kv.Value, err, tc.value)
			}
		})
	}
}

func TestPersistsAcrossReopen(t *testing.T) {
	s := mustOpenStore(t)
	applyOne(t, s, put("a", "1"))
	applyOne(t, s, put("b", "2"))
	applyOne(t, s, put("a", "3"))
	applyOne(t, s, Command{Op: OpDelete, Key: "b", Now: t0.UnixNano()})
	before := s.Status()

	s = reopen(t, s)
	after := s.Status()
	after.DBSizeBytes, before.DBSizeBytes = 0, 0
	if before != after {
		t.Errorf("status after reopen (-want +got):\n- %+v\n+ %+v", before, after)
	}
	kv, err := s.Get("a", t0, true)
	if err != nil || string(kv.Value) != "3" || kv.Version != 2 || kv.CreateRevision != 1 || kv.ContentType != "text/plain" {
		t.Errorf("Get(a) = %+v, %v", kv, err)
	}
	if want := (Status{Revision: 4, AppliedIndex: 4, Keys: 1}); after != want {
		t.Errorf("status = %+v, want %+v", after, want)
	}
}

func TestApplySkipsAppliedEntries(t *testing.T) {
	s := mustOpenStore(t)
	entries := []Entry{{Index: 1, Command: put("a", "1")}, {Index: 2, Command: put("a", "2")}}
	if _, err := s.Apply(entries); err != nil {
		t.Fatal(err)
	}
	// Replaying the same log (as after a crash between commit and ack) must not
	// apply anything twice.
	res, err := s.Apply(append(entries, Entry{Index: 3, Command: put("b", "1")}))
	if err != nil {
		t.Fatal(err)
	}
	if res[0].Created || res[1].Created || !res[2].Created {
		t.Errorf("replayed results = %+v", res)
	}
	kv, _ := s.Get("a", t0, true)
	if kv.Version != 2 || s.Revision() != 3 || s.AppliedIndex() != 3 {
		t.Errorf("version %d revision %d applied %d; want 2 3 3", kv.Version, s.Revision(), s.AppliedIndex())
	}
}

// TestApplyIsDeterministic applies one log to two stores and compares every
// key and counter: the property a replicated state machine relies on.
func TestApplyIsDeterministic(t *testing.T) {
	log := randomLog(300)
	a, b := mustOpenStore(t), mustOpenStore(t)
	for i := 0; i < len(log); i += 13 { // different batch boundaries
		if _, err := a.Apply(log[i:min(i+13, len(log))]); err != nil {
			t.Fatal(err)
		}
	}
	for _, e := range log {
		if _, err := b.Apply([]Entry{e}); err != nil {
			t.Fatal(err)
		}
	}
	far := t0.Add(-time.Hour) // before any expiry: list everything stored
	la, _ := a.List(ListOptions{Limit: 1000, Now: far})
	lb, _ := b.List(ListOptions{Limit: 1000, Now: far})
	if !reflect.DeepEqual(la, lb) {
		t.Errorf("stores diverged:\n a=%+v\n b=%+v", la, lb)
	}
	if sa, sb := a.Status(), b.Status(); sa.Revision != sb.Revision || sa.Keys != sb.Keys || sa.AppliedIndex != sb.AppliedIndex {
		t.Errorf("status diverged: %+v vs %+v", sa, sb)
	}
}

func TestGetHidesExpiredKeys(t *testing.T) {
	s := mustOpenStore(t)
	c := put("a", "1")
	c.ExpiresAt = t0.Add(10 * time.Second).UnixNano()
	applyOne(t, s, c)
	if kv, err := s.Get("a", t0.Add(9*time.Second), true); err != nil || !kv.ExpiresAt.Equal(t0.Add(10*time.Second)) {
		t.Errorf("before expiry: %+v, %v", kv, err)
	}
	if _, err := s.Get("a", t0.Add(10*time.Second), true); !errors.Is(err, ErrNotFound) {
		t.Errorf("at expiry: err = %v, want not found", err)
	}
	l, _ := s.List(ListOptions{Limit: 10, Now: t0.Add(time.Minute)})
	if len(l.Items) != 0 {
		t.Errorf("List after expiry = %+v", l.Items)
	}
}

func TestListPages(t *testing.T) {
	s := mustOpenStore(t)
	for _, k := range []string{"a", "b/1", "b/2", "b/3", "b/4", "b/5", "c"} {
		applyOne(t, s, put(k, "v-"+k))
	}
	tests := map[string]struct {
		opts     ListOptions
		wantKeys []string
		wantNext string
	}{
		"all":                   {ListOptions{Limit: 100}, []string{"a", "b/1", "b/2", "b/3", "b/4", "b/5", "c"}, ""},
		"prefix first page":     {ListOptions{Prefix: "b/", Limit: 2}, []string{"b/1", "b/2"}, "b/2"},
		"prefix next page":      {ListOptions{Prefix: "b/", After: "b/2", Limit: 2}, []string{"b/3", "b/4"}, "b/4"},
		"prefix last page":      {ListOptions{Prefix: "b/", After: "b/4", Limit: 2}, []string{"b/5"}, ""},
		"exact fit has no next": {ListOptions{Prefix: "b/", Limit: 5}, []string{"b/1", "b/2", "b/3", "b/4", "b/5"}, ""},
		"after before prefix":   {ListOptions{Prefix: "b/", After: "a", Limit: 1}, []string{"b/1"}, "b/1"},
		"no match":              {ListOptions{Prefix: "zz", Limit: 10}, nil, ""},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			tc.opts.Now = t0
			res, err := s.List(tc.opts)
			if err != nil {
				t.Fatal(err)
			}
			var keys []string
			for _, kv := range res.Items {
				keys = append(keys, kv.Key)
				if string(kv.Value) != "v-"+kv.Key {
					t.Errorf("value of %q = %q", kv.Key, kv.Value)
				}
			}
			if !reflect.DeepEqual(keys, tc.wantKeys) || res.Next != tc.wantNext {
				t.Errorf("keys, next (-want +got):\n- %v %q\n+ %v %q", tc.wantKeys, tc.wantNext, keys, res.Next)
			}
			if res.Revision != 7 {
				t.Errorf("revision = %d, want 7", res.Revision)
			}
		})
	}
}

func TestReturnedBytesAreCopies(t *testing.T) {
	s := mustOpenStore(t)
	applyOne(t, s, put("a", "original"))
	kv, _ := s.Get("a", t0, true)
	applyOne(t, s, put("a", "replaced"))
	for i := range 1000 { // churn pages so a stale mmap alias would change
		applyOne(t, s, put(fmt.Sprintf("churn/%d", i%10), string(bytes.Repeat([]byte{'x'}, 1000))))
	}
	if string(kv.Value) != "original" {
		t.Errorf("value read earlier changed to %q", kv.Value)
	}
}

func TestSnapshotRestore(t *testing.T) {
	s := mustOpenStore(t)
	for i := range 100 {
		applyOne(t, s, put(fmt.Sprintf("k%03d", i), fmt.Sprint(i)))
	}
	snap := filepath.Join(t.TempDir(), "snap.db")
	f, err := os.Create(snap)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.WriteSnapshot(f); err != nil {
		t.Fatal(err)
	}
	f.Close()

	dir := t.TempDir()
	st, err := Restore(snap, dir, false)
	if err != nil {
		t.Fatalf("Restore: %v", err)
	}
	if st.Revision != 100 || st.Keys != 100 {
		t.Errorf("restored status %+v", st)
	}
	if _, err := Restore(snap, dir, false); err == nil {
		t.Error("second Restore without force succeeded; want refusal")
	}
	r := mustOpenAt(t, filepath.Join(dir, DBFile))
	if _, err := Restore(snap, dir, true); err == nil {
		t.Error("Restore --force over an open database succeeded; want refusal")
	}
	kv, err := r.Get("k042", t0, true)
	if err != nil || string(kv.Value) != "42" {
		t.Errorf("Get(k042) after restore = %q, %v", kv.Value, err)
	}
	r.Close()
	if _, err := Restore(snap, dir, true); err != nil {
		t.Errorf("Restore --force: %v", err)
	}
	old, _ := filepath.Glob(filepath.Join(dir, DBFile+".pre-restore-*"))
	if len(old) != 1 {
		t.Errorf("old database not kept: %v", old)
	}

	junk := filepath.Join(t.TempDir(), "junk")
	os.WriteFile(junk, []byte("not a database"), 0o600)
	if _, err := Restore(junk, t.TempDir(), false); err == nil {
		t.Error("Restore of a non-database succeeded")
	}
}

func TestOpenRefusesLockedFile(t *testing.T) {
	s := mustOpenStore(t)
	if _, err := Open(s.Path(), Options{OpenTimeout: 50 * time.Millisecond}); err == nil {
		t.Fatal("second Open of a locked file succeeded")
	}
}

func TestCommandEncodingRoundTrip(t *testing.T) {
	tests := map[string]Command{
		"put":    {Op: OpPut, Key: "a/b", Value: []byte{0, 1, 2}, ContentType: "application/x", ExpiresAt: 5, IfRevision: 9, Now: 77},
		"flags":  {Op: OpPut, Key: "k", IfAbsent: true, IfExists: true},
		"delete": {Op: OpDeletePrefix, Key: "pre/"},
		"utf8":   {Op: OpExpire, Key: "ключ/値", IfRevision: 1 << 60, Now: -1},
	}
	for name, c := range tests {
		t.Run(name, func(t *testing.T) {
			b, _ := c.MarshalBinary()
			var got Command
			if err := got.UnmarshalBinary(b); err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, c) {
				t.Errorf("round trip (-want +got):\n- %+v\n+ %+v", c, got)
			}
		})
	}
}
