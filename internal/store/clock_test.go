package store

import (
	"errors"
	"testing"
	"time"
)

func TestStamperNeverRunsBackwards(t *testing.T) {
	now := t0
	s := NewStamper(func() time.Time { return now })
	if got := s.Now(); got != t0.UnixNano() {
		t.Fatalf("first stamp %d, want the clock's %d", got, t0.UnixNano())
	}
	now = t0.Add(-time.Minute) // the wall clock steps back
	if got := s.Now(); got != t0.UnixNano() {
		t.Errorf("stamp after the clock stepped back: %d, want %d", got, t0.UnixNano())
	}
	s.Observe(t0.Add(time.Hour).UnixNano()) // a previous leader's clock was ahead
	if got := s.Now(); got != t0.Add(time.Hour).UnixNano() {
		t.Errorf("stamp after Observe: %d, want the observed floor", got)
	}
	cmds := []Command{{Op: OpPut, Key: "a"}, {Op: OpDelete, Key: "b", Now: 1}}
	at := s.Stamp(cmds)
	for i, c := range cmds {
		if c.Now != at {
			t.Errorf("command %d: Now %d, want the stamp %d", i, c.Now, at)
		}
	}
}

func TestStampEncoded(t *testing.T) {
	enc, err := Command{Op: OpPut, Key: "k", Value: []byte("v"), ExpiresAt: 5, IfRevision: 7, Now: 1}.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	if err := StampEncoded(enc, 42); err != nil {
		t.Fatal(err)
	}
	var c Command
	if err := c.UnmarshalBinary(enc); err != nil {
		t.Fatal(err)
	}
	if c.Now != 42 || c.ExpiresAt != 5 || c.IfRevision != 7 || c.Key != "k" || string(c.Value) != "v" {
		t.Errorf("after StampEncoded: %+v", c)
	}
	if err := StampEncoded(enc[:10], 1); err == nil {
		t.Error("StampEncoded of a truncated command succeeded")
	}
}

// TestApplyRefusesCommandsWithoutClock: a command that was never stamped
// must not be applied as if no key had expired.
func TestApplyRefusesCommandsWithoutClock(t *testing.T) {
	for name, c := range map[string]Command{
		"put":           {Op: OpPut, Key: "a", Value: []byte("x"), IfAbsent: true},
		"delete":        {Op: OpDelete, Key: "a"},
		"delete prefix": {Op: OpDeletePrefix, Key: "a"},
		"expire":        {Op: OpExpire, Key: "a", IfRevision: 1},
	} {
		t.Run(name, func(t *testing.T) {
			s := mustOpenStore(t)
			old := put("a", "1")
			old.ExpiresAt = t0.Add(-time.Second).UnixNano()
			applyOne(t, s, old)
			before := s.Status()
			if r := applyOne(t, s, c); !errors.Is(r.Err, ErrNoClock) {
				t.Errorf("result %+v, want ErrNoClock", r)
			}
			if after := s.Status(); after.Revision != before.Revision || after.Keys != before.Keys {
				t.Errorf("status changed from %+v to %+v", before, after)
			}
		})
	}
}
