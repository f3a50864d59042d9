package lincheck

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/anishathalye/porcupine"
)

// Shorthands for hand-written histories. Times are abstract ticks.
func put(c int, call, ret int64, key, v string, rev uint64, created bool) Operation {
	return Operation{Client: c, Call: call, Return: ret, Input: Input{Kind: Put, Key: key, Value: v},
		Output: Output{Result: OK, Revision: rev, Created: created}}
}

func get(c int, call, ret int64, key, v string, rev uint64) Operation {
	out := Output{Result: OK, Value: v, Revision: rev}
	if rev == 0 {
		out = Output{Result: NotFound}
	}
	return Operation{Client: c, Call: call, Return: ret, Input: Input{Kind: Get, Key: key}, Output: out}
}

func write(c int, call, ret int64, in Input, res Result, rev uint64) Operation {
	return Operation{Client: c, Call: call, Return: ret, Input: in, Output: Output{Result: res, Revision: rev}}
}

// unknown is a write whose answer was lost: it never returns.
func unknown(c int, call int64, in Input) Operation {
	return Operation{Client: c, Call: call, Return: Never, Input: in, Output: Output{Result: Unknown, Error: "504 outcome_unknown"}}
}

func TestModel(t *testing.T) {
	cas := func(key, v string, rev uint64) Input { return Input{Kind: CAS, Key: key, Value: v, IfRevision: rev} }
	create := func(key, v string) Input { return Input{Kind: Create, Key: key, Value: v} }
	del := func(key string, rev uint64) Input { return Input{Kind: Delete, Key: key, IfRevision: rev} }
	putIn := func(key, v string) Input { return Input{Kind: Put, Key: key, Value: v} }
	for _, tc := range []struct {
		name string
		h    History
		want porcupine.CheckResult
	}{
		{"linearizable", History{
			put(0, 0, 10, "k", "a", 1, true),
			get(1, 5, 15, "k", "a", 1), // concurrent with the put: may see it
			get(1, 20, 30, "k", "a", 1),
			write(0, 31, 40, cas("k", "b", 1), OK, 2),
			write(1, 35, 45, cas("k", "x", 1), PreconditionFailed, 0), // lost the race
			get(2, 46, 50, "k", "b", 2),
			write(2, 51, 60, create("k", "c"), PreconditionFailed, 0),
			write(0, 61, 70, del("k", 1), PreconditionFailed, 0),
			write(1, 71, 80, del("k", 0), OK, 3),
			get(2, 81, 90, "k", "", 0),
			write(0, 91, 95, del("k", 0), NotFound, 0),
			write(0, 96, 99, del("k", 2), PreconditionFailed, 0), // a conditional delete of a missing key
			write(1, 100, 110, create("k", "d"), OK, 4),
			put(2, 111, 120, "k", "e", 5, false),
			get(2, 121, 130, "k", "e", 5),
		}, porcupine.Ok},
		{"keys are independent", History{
			put(0, 0, 10, "k1", "a", 2, true),
			put(1, 0, 10, "k2", "b", 1, true),
			get(0, 20, 30, "k2", "b", 1),
			get(1, 20, 30, "k1", "a", 2),
		}, porcupine.Ok},
		{"stale read", History{
			put(0, 0, 10, "k", "a", 1, true),
			put(0, 11, 20, "k", "b", 2, false),
			get(1, 21, 30, "k", "a", 1), // starts after b was acknowledged
		}, porcupine.Illegal},
		{"stale read on one key of two", History{
			put(0, 0, 10, "k1", "a", 1, true),
			put(0, 11, 20, "k2", "b", 2, true),
			put(0, 21, 30, "k2", "c", 3, false),
			get(1, 31, 40, "k1", "a", 1),
			get(1, 41, 50, "k2", "b", 2),
		}, porcupine.Illegal},
		{"lost write", History{
			put(0, 0, 10, "k", "a", 1, true),
			get(1, 20, 30, "k", "", 0),
		}, porcupine.Illegal},
		{"overwritten write comes back", History{
			put(0, 0, 10, "k", "a", 1, true),
			put(1, 11, 20, "k", "b", 2, false),
			get(2, 21, 30, "k", "b", 2),
			get(2, 31, 40, "k", "a", 1),
		}, porcupine.Illegal},
		{"cas succeeded against a wrong revision", History{
			put(0, 0, 10, "k", "a", 1, true),
			put(1, 11, 20, "k", "b", 2, false),
			write(0, 21, 30, cas("k", "c", 1), OK, 3),
		}, porcupine.Illegal},
		{"cas failed at the right revision", History{
			put(0, 0, 10, "k", "a", 1, true),
			write(0, 21, 30, cas("k", "c", 1), PreconditionFailed, 0),
		}, porcupine.Illegal},
		{"put answered created on an existing key", History{
			put(0, 0, 10, "k", "a", 1, true),
			put(1, 11, 20, "k", "b", 2, true),
		}, porcupine.Illegal},
		{"read of a value never written", History{
			put(0, 0, 10, "k", "a", 1, true),
			get(1, 5, 15, "k", "z", 7),
		}, porcupine.Illegal},
		{"read with the wrong revision", History{
			put(0, 0, 10, "k", "a", 4, true),
			get(1, 11, 15, "k", "a", 3),
		}, porcupine.Illegal},
		{"revision goes backwards", History{
			put(0, 0, 10, "k", "a", 5, true),
			put(0, 11, 20, "k", "b", 3, false),
		}, porcupine.Illegal},
		{"unknown put that later appears", History{
			put(0, 0, 10, "k", "a", 1, true),
			unknown(1, 11, putIn("k", "b")),
			get(2, 20, 30, "k", "b", 2),
			write(2, 31, 40, cas("k", "c", 2), OK, 3), // the revision learnt from the read
			get(0, 41, 50, "k", "c", 3),
		}, porcupine.Ok},
		{"unknown put that never appears", History{
			put(0, 0, 10, "k", "a", 1, true),
			unknown(1, 11, putIn("k", "b")),
			get(2, 20, 30, "k", "a", 1),
			get(2, 40, 50, "k", "a", 1),
		}, porcupine.Ok},
		{"unknown put seen, then gone", History{
			put(0, 0, 10, "k", "a", 1, true),
			unknown(1, 11, putIn("k", "b")),
			get(2, 20, 30, "k", "b", 2),
			get(2, 40, 50, "k", "a", 1),
		}, porcupine.Illegal},
		{"unknown create and delete", History{
			unknown(0, 0, create("k", "a")),
			get(1, 5, 10, "k", "a", 1),
			unknown(1, 11, del("k", 0)),
			get(2, 20, 30, "k", "", 0),
			write(2, 31, 40, create("k", "b"), OK, 3),
		}, porcupine.Ok},
		{"unknown cas", History{
			put(0, 0, 10, "k", "a", 1, true),
			unknown(0, 11, cas("k", "b", 1)),
			get(1, 20, 30, "k", "b", 2),
			unknown(1, 31, cas("k", "c", 1)), // the wrong revision: cannot apply
			get(2, 40, 50, "k", "b", 2),
		}, porcupine.Ok},
		{"unknown cas at a wrong revision appears", History{
			put(0, 0, 10, "k", "a", 1, true),
			put(0, 11, 20, "k", "b", 2, false),
			unknown(1, 21, cas("k", "c", 1)),
			get(2, 30, 40, "k", "c", 3),
		}, porcupine.Illegal},
		{"unknown put read before it was sent", History{
			get(0, 0, 10, "k", "b", 1),
			unknown(1, 11, putIn("k", "b")),
		}, porcupine.Illegal},
		{"refused write has no effect", History{
			put(0, 0, 10, "k", "a", 1, true),
			{Client: 1, Call: 11, Return: 12, Input: putIn("k", "b"), Output: Output{Result: Failed, Error: "connection refused"}},
			get(2, 20, 30, "k", "a", 1),
		}, porcupine.Ok},
		{"refused write appears", History{
			put(0, 0, 10, "k", "a", 1, true),
			{Client: 1, Call: 11, Return: 12, Input: putIn("k", "b"), Output: Output{Result: Failed, Error: "connection refused"}},
			get(2, 20, 30, "k", "b", 2),
		}, porcupine.Illegal},
		{"failed read is no evidence", History{
			put(0, 0, 10, "k", "a", 1, true),
			{Client: 1, Call: 11, Return: 20, Input: Input{Kind: Get, Key: "k"}, Output: Output{Result: Unknown, Error: "503 unavailable"}},
		}, porcupine.Ok},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res, _ := Check(tc.h, 10*time.Second)
			if res != tc.want {
				t.Errorf("Check = %s, want %s", res, tc.want)
			}
		})
	}
}

// TestTighten checks that an unknown write seen by reads ends with the
// earliest of them, and that other operations keep their times.
func TestTighten(t *testing.T) {
	h := History{
		unknown(0, 10, Input{Kind: Put, Key: "k", Value: "a"}),
		get(1, 20, 40, "k", "a", 1),
		get(2, 15, 30, "k", "a", 1),
		unknown(0, 50, Input{Kind: Put, Key: "k", Value: "b"}), // never seen
		unknown(0, 60, Input{Kind: Delete, Key: "k"}),
		unknown(1, 70, Input{Kind: Put, Key: "k", Value: "c"}),
		get(2, 0, 5, "k", "c", 9), // returned before the write was sent
	}
	got := tighten(h)
	want := []int64{30, 40, 30, Never, Never, Never, 5}
	for i, op := range got {
		if op.Return != want[i] {
			t.Errorf("op %d: Return = %d, want %d", i, op.Return, want[i])
		}
	}
	if h[0].Return != Never {
		t.Error("tighten modified its argument")
	}
}

func TestArtifactsRoundTrip(t *testing.T) {
	h := History{
		put(0, 0, 10, "k", "a", 1, true),
		unknown(1, 5, Input{Kind: Put, Key: "k", Value: "b"}),
		get(1, 21, 30, "k", "", 0),
	}
	dir := artifactDir(t)
	res, path, err := CheckAndSave(h, 10*time.Second, dir, t.Name())
	if err != nil || res != porcupine.Illegal || path == "" {
		t.Fatalf("CheckAndSave = %s, %q, %v; want Illegal with a path", res, path, err)
	}
	t.Logf("artifacts in %s", path)
	for _, name := range []string{"history.json", "visualization.html"} {
		if fi, err := os.Stat(filepath.Join(path, name)); err != nil || fi.Size() == 0 {
			t.Errorf("%s: %v", name, err)
		}
	}
	loaded, err := LoadHistory(filepath.Join(path, "history.json"))
	if err != nil {
		t.Fatal(err)
	}
	if len(loaded) != len(h) || loaded[1] != h[1] {
		t.Errorf("loaded history differs:\n%+v\n%+v", loaded, h)
	}
	if res, _ := Check(loaded, 10*time.Second); res != porcupine.Illegal {
		t.Errorf("Check(loaded) = %s", res)
	}
	if res, path, err := CheckAndSave(h[:2], 10*time.Second, dir, t.Name()); res != porcupine.Ok || path != "" || err != nil {
		t.Errorf("CheckAndSave(linearizable) = %s, %q, %v", res, path, err)
	}
}

// TestModelTTL: keys with a TTL are live for operations that end before
// their expiry, gone for those that start after it (within ClockSlack),
// and either for those whose interval spans it.
func TestModelTTL(t *testing.T) {
	const ms = int64(time.Millisecond)
	ttl := 100 * time.Millisecond
	putTTL := func(c int, call, ret int64, v string, rev uint64, created bool, exp int64) Operation {
		return Operation{Client: c, Call: call, Return: ret, Input: Input{Kind: Put, Key: "k", Value: v, TTL: ttl},
			Output: Output{Result: OK, Revision: rev, Created: created, ExpiresAt: exp}}
	}
	getTTL := func(c int, call, ret int64, v string, rev uint64, exp int64) Operation {
		op := get(c, call, ret, "k", v, rev)
		op.Output.ExpiresAt = exp
		return op
	}
	create := Input{Kind: Create, Key: "k", Value: "c"}
	cas1 := Input{Kind: CAS, Key: "k", Value: "x", IfRevision: 1}
	for name, tc := range map[string]struct {
		h    History
		want porcupine.CheckResult
	}{
		"read before the expiry sees the key": {History{
			putTTL(0, 0, 10*ms, "a", 1, true, 105*ms),
			getTTL(1, 20*ms, 30*ms, "a", 1, 105*ms),
		}, porcupine.Ok},
		"read before the expiry misses the key": {History{
			putTTL(0, 0, 10*ms, "a", 1, true, 105*ms),
			get(1, 20*ms, 30*ms, "k", "", 0),
		}, porcupine.Illegal},
		"read after the expiry sees the key": {History{
			putTTL(0, 0, 10*ms, "a", 1, true, 105*ms),
			getTTL(1, 300*ms, 310*ms, "a", 1, 105*ms),
		}, porcupine.Illegal},
		"reads spanning the expiry may see either": {History{
			putTTL(0, 0, 10*ms, "a", 1, true, 105*ms),
			get(1, 100*ms, 110*ms, "k", "", 0),
			getTTL(2, 100*ms, 112*ms, "a", 1, 105*ms),
			write(0, 103*ms, 120*ms, cas1, OK, 2), // its stamp may be before the expiry, its commit after the reads
		}, porcupine.Ok},
		"create after the expiry creates": {History{
			putTTL(0, 0, 10*ms, "a", 1, true, 105*ms),
			get(1, 300*ms, 310*ms, "k", "", 0),
			write(1, 320*ms, 330*ms, create, OK, 3),
			get(1, 340*ms, 350*ms, "k", "c", 3),
		}, porcupine.Ok},
		"create after the expiry refused (issue 11)": {History{
			putTTL(0, 0, 10*ms, "a", 1, true, 105*ms),
			get(1, 300*ms, 310*ms, "k", "", 0),
			write(1, 320*ms, 330*ms, create, PreconditionFailed, 0),
		}, porcupine.Illegal},
		"cas on the expired revision succeeds (issue 11)": {History{
			putTTL(0, 0, 10*ms, "a", 1, true, 105*ms),
			write(1, 320*ms, 330*ms, cas1, OK, 3),
		}, porcupine.Illegal},
		"put after the expiry answered 200": {History{
			putTTL(0, 0, 10*ms, "a", 1, true, 105*ms),
			put(1, 320*ms, 330*ms, "k", "b", 3, false),
		}, porcupine.Illegal},
		"a put without a ttl clears it": {History{
			putTTL(0, 0, 10*ms, "a", 1, true, 105*ms),
			put(1, 20*ms, 30*ms, "k", "b", 2, false),
			get(1, 500*ms, 510*ms, "k", "b", 2),
		}, porcupine.Ok},
		"an unknown write's expiry is learnt from a read": {History{
			{Client: 0, Call: 0, Return: Never, Input: Input{Kind: Put, Key: "k", Value: "u", TTL: ttl}, Output: Output{Result: Unknown}},
			getTTL(1, 50*ms, 60*ms, "u", 1, 120*ms),
			get(1, 400*ms, 410*ms, "k", "", 0),
		}, porcupine.Ok},
		"an unknown write seen after its learnt expiry": {History{
			{Client: 0, Call: 0, Return: Never, Input: Input{Kind: Put, Key: "k", Value: "u", TTL: ttl}, Output: Output{Result: Unknown}},
			getTTL(1, 50*ms, 60*ms, "u", 1, 120*ms),
			getTTL(1, 400*ms, 410*ms, "u", 1, 120*ms),
		}, porcupine.Illegal},
		"an expiry earlier than call + ttl": {History{
			putTTL(0, 50*ms, 60*ms, "a", 1, true, 105*ms),
		}, porcupine.Illegal},
	} {
		t.Run(name, func(t *testing.T) {
			if got, _ := Check(tc.h, 10*time.Second); got != tc.want {
				t.Errorf("Check = %v, want %v", got, tc.want)
			}
		})
	}
}
