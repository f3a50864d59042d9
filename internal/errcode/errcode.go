// Package errcode is the one table that turns kvstore's sentinel errors
// into HTTP statuses and the stable problem codes of package wire. The client API
// (internal/httpapi) answers with it, the peer API (internal/cluster)
// answers with it too, and a node that relays a peer's answer turns the code
// back into the same sentinel (FromCode), so a request gets the same status
// and code whichever node it reaches.
//
// The table is read-only after package initialisation; every function is
// safe for concurrent use.
package errcode

import (
	"context"
	"errors"
	"net/http"

	"kvstore.dev/kvstore/internal/store"
	"kvstore.dev/kvstore/wire"
)

// Sentinel errors of the cluster API that both the client and the peer API
// map. Like the store's, they carry the package prefix.
var (
	// ErrInvalidArgument is a request field that is malformed or out of
	// range; the wrapping error names the field.
	ErrInvalidArgument = errors.New("kvstore: invalid argument")
	// ErrNotMember is a membership change naming a server that is not in
	// the Raft configuration.
	ErrNotMember = errors.New("kvstore: not a member")
	// ErrNotClustered is a membership change on a single node.
	ErrNotClustered = errors.New("kvstore: not a cluster")
	// ErrRecoveryRefused is a recovery request (POST
	// /api/v1/cluster/recover) the server must not carry out: it sees a
	// leader, it is alone already, or the request is for another server
	// or was carried out already.
	ErrRecoveryRefused = errors.New("kvstore: recovery refused")
	// ErrNotLeader is the peer API's answer from a node that is not the
	// leader, before it changed anything: the caller finds the leader and
	// tries again (internal/cluster). It never reaches a client.
	ErrNotLeader = errors.New("kvstore: not the leader")
)

// Entry is one row of the table: errors matching Err (errors.Is) are
// answered with Status and Code; Title is the problem's title.
type Entry struct {
	Err    error
	Status int
	Code   string
	Title  string
}

// table is in match order: the first entry whose Err matches wins.
var table = []Entry{
	{store.ErrNotFound, http.StatusNotFound, wire.CodeNotFound, "Key not found"},
	{ErrNotMember, http.StatusNotFound, wire.CodeNotMember, "Not a member"},
	{store.ErrPreconditionFailed, http.StatusPreconditionFailed, wire.CodePreconditionFailed, "Precondition failed"},
	{store.ErrInvalidKey, http.StatusBadRequest, wire.CodeInvalidKey, "Invalid key"},
	{store.ErrKeyTooLarge, http.StatusRequestURITooLong, wire.CodeKeyTooLarge, "Key too large"},
	{store.ErrValueTooLarge, http.StatusRequestEntityTooLarge, wire.CodeValueTooLarge, "Value too large"},
	{store.ErrCompacted, http.StatusGone, wire.CodeCompacted, "Revision compacted"},
	{store.ErrNoSpace, http.StatusInsufficientStorage, wire.CodeInsufficientSpace, "Insufficient storage"},
	{store.ErrClosed, http.StatusServiceUnavailable, wire.CodeUnavailable, "Service unavailable"},
	{store.ErrNoQuorum, http.StatusServiceUnavailable, wire.CodeNoQuorum, "No quorum"},
	{ErrNotClustered, http.StatusConflict, wire.CodeNotClustered, "Not a cluster"},
	{ErrRecoveryRefused, http.StatusConflict, wire.CodeRecoveryRefused, "Recovery refused"},
	{store.ErrOutcomeUnknown, http.StatusGatewayTimeout, wire.CodeOutcomeUnknown, "Outcome unknown"},
	{context.Canceled, http.StatusServiceUnavailable, wire.CodeUnavailable, "Request cancelled"},
	{context.DeadlineExceeded, http.StatusServiceUnavailable, wire.CodeUnavailable, "Request timed out"},
	{ErrInvalidArgument, http.StatusBadRequest, wire.CodeInvalidArgument, "Invalid argument"},
	{ErrNotLeader, http.StatusMisdirectedRequest, wire.CodeNotLeader, "Not the leader"},
}

// Lookup returns the entry for err, or false when no sentinel in the table
// matches (an internal error: 500, its text is not for clients).
func Lookup(err error) (Entry, bool) {
	for _, e := range table {
		if errors.Is(err, e.Err) {
			return e, true
		}
	}
	return Entry{}, false
}

// Entries returns a copy of the table, in match order.
func Entries() []Entry { return append([]Entry(nil), table...) }

// FromCode turns a code read from a peer back into an error that wraps the
// code's sentinel (the first entry with that code) and reads as msg, or
// returns nil when the code is not in the table.
func FromCode(code, msg string) error {
	for _, e := range table {
		if e.Code == code {
			if msg == "" {
				msg = e.Err.Error()
			}
			return &wireError{msg: msg, sentinel: e.Err}
		}
	}
	return nil
}

// wireError is an error relayed from a peer: its text, and its sentinel.
type wireError struct {
	msg      string
	sentinel error
}

func (e *wireError) Error() string { return e.msg }
func (e *wireError) Unwrap() error { return e.sentinel }
