package errcode

import (
	"errors"
	"testing"

	"kvstore.dev/kvstore/wire"
)

// TestFromCode: a code read from a peer comes back as an error with the
// same entry (the first with that code) and the peer's text; a code outside
// the table is nil.
func TestFromCode(t *testing.T) {
	for _, e := range Entries() {
		err := FromCode(e.Code, "from the leader")
		got, ok := Lookup(err)
		if !ok || got.Code != e.Code || got.Status != e.Status || err.Error() != "from the leader" {
			t.Errorf("FromCode(%q) = %v (%+v), want code %s", e.Code, err, got, e.Code)
		}
	}
	if err := FromCode(wire.CodeNotLeader, ""); !errors.Is(err, ErrNotLeader) || err.Error() != ErrNotLeader.Error() {
		t.Errorf("FromCode(not_leader) = %v, want ErrNotLeader with its text", err)
	}
	for _, code := range []string{"", wire.CodeInternal, "no_such_code"} {
		if err := FromCode(code, "x"); err != nil {
			t.Errorf("FromCode(%q) = %v, want nil", code, err)
		}
	}
}
