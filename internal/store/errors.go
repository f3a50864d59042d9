package store

import "errors"

// Sentinel errors returned (wrapped, with context) by this package. Callers
// test for them with errors.Is; the HTTP layer maps each to a status code in
// one table.
var (
	// ErrNotFound means the key does not exist or has expired.
	ErrNotFound = errors.New("kvstore: key not found")
	// ErrPreconditionFailed means a compare-and-swap or create-only condition
	// did not hold.
	ErrPreconditionFailed = errors.New("kvstore: precondition failed")
	// ErrInvalidKey means a key is empty, not valid UTF-8, holds control
	// characters, or is not a clean slash-separated path.
	ErrInvalidKey = errors.New("kvstore: invalid key")
	// ErrKeyTooLarge means a key is longer than the configured limit.
	ErrKeyTooLarge = errors.New("kvstore: key too large")
	// ErrValueTooLarge means a value is longer than the configured limit.
	ErrValueTooLarge = errors.New("kvstore: value too large")
	// ErrCompacted means a watch asked for history the store no longer holds.
	ErrCompacted = errors.New("kvstore: revision compacted")
	// ErrNoSpace means the disk is full; the write was not applied.
	ErrNoSpace = errors.New("kvstore: no space left on device")
	// ErrClosed means the store or its write path has been closed.
	ErrClosed = errors.New("kvstore: store closed")
	// ErrCorrupt means the database file holds data this version cannot read.
	ErrCorrupt = errors.New("kvstore: corrupt database")
	// ErrClusterMember means an offline restore was aimed at a cluster
	// member's data directory, which only Raft may change.
	ErrClusterMember = errors.New("kvstore: data dir belongs to a cluster member")
	// ErrNoQuorum means a replicated store cannot reach a quorum (or has no
	// leader) right now; the write was not applied and may be retried.
	ErrNoQuorum = errors.New("kvstore: no quorum")
	// ErrNoClock means a command reached the state machine without the
	// write path's clock (Command.Now): a bug, refused rather than applied
	// without expiry checks.
	ErrNoClock = errors.New("kvstore: command carries no clock")
	// ErrOutcomeUnknown means a replicated write was handed to the log but
	// its fate is unknown (leadership was lost, or the leader stopped
	// answering): it may or may not have been applied.
	ErrOutcomeUnknown = errors.New("kvstore: outcome unknown")
)
