package store

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"time"
)

// Op is the kind of a Command.
type Op uint8

// The mutations the store knows. Their numeric values are part of the
// replicated log format and must never change.
const (
	// OpPut creates or replaces Key.
	OpPut Op = 1
	// OpDelete removes Key.
	OpDelete Op = 2
	// OpDeletePrefix removes every key starting with Key (the prefix).
	OpDeletePrefix Op = 3
	// OpExpire removes Key if it has expired by Now and still has revision
	// IfRevision. Only the TTL sweeper proposes it.
	OpExpire Op = 4
)

func (o Op) String() string {
	switch o {
	case OpPut:
		return "put"
	case OpDelete:
		return "delete"
	case OpDeletePrefix:
		return "delete_prefix"
	case OpExpire:
		return "expire"
	}
	return fmt.Sprintf("op(%d)", uint8(o))
}

// Command is one mutation. Everything Apply needs is in the command,
// including the clock (Now) the log stamped it with, so applying it is
// deterministic.
type Command struct {
	Op          Op
	Key         string // the key, or the prefix for OpDeletePrefix
	Value       []byte // OpPut only
	ContentType string // OpPut only
	// ExpiresAt is the absolute expiry of a put, Unix nanoseconds; 0 = none.
	ExpiresAt int64
	// IfRevision, when non-zero, makes a put or delete conditional on the
	// key's current modification revision (compare-and-swap).
	IfRevision uint64
	// IfAbsent makes a put create-only.
	IfAbsent bool
	// IfExists makes a put or delete require that the key exists
	// (HTTP "If-Match: *").
	IfExists bool
	// Now is the write path's clock, Unix nanoseconds, stamped by whoever
	// puts the command in the log (a Stamper: the cluster's leader), never
	// by the proposer. Keys whose expiry is at or
	// before Now are treated as absent. A command without one (Now <= 0)
	// is refused at apply with ErrNoClock.
	Now int64
}

// Proposer is how writers submit commands: the Raft node
// (internal/cluster), a single node being a one-server cluster. Propose returns
// one Result per command, after the commands are durably applied, or an
// error when none of them was applied (or, for a replicated proposer, when
// the outcome is unknown).
type Proposer interface {
	Propose(ctx context.Context, cmds ...Command) ([]Result, error)
}

// Entry is a command at a position of the (local or replicated) log.
type Entry struct {
	Index   uint64
	Command Command
}

// Result is the outcome of one applied command.
type Result struct {
	// Err is the command's own outcome: nil, ErrNotFound,
	// ErrPreconditionFailed, or ErrNoClock (a command that was never
	// stamped). It is not a storage failure (those fail the
	// whole batch and are returned by Apply itself).
	Err error
	// KV is the key's metadata after a put, or before a delete.
	KV KeyValue
	// Created is true when a put created the key.
	Created bool
	// Deleted counts the keys removed by a delete or delete-prefix.
	Deleted int
	// Revision is the store revision after the command.
	Revision uint64
}

// KeyValue is a key's metadata and, when read with its value, the value.
// Its byte slices are owned by the caller.
type KeyValue struct {
	Key            string
	Value          []byte
	ContentType    string
	CreateRevision uint64
	ModRevision    uint64
	Version        uint64
	// ExpiresAt is the zero time when the key has no TTL.
	ExpiresAt time.Time
}

func (r *record) keyValue(key string, withValue bool) KeyValue {
	kv := KeyValue{
		Key:            key,
		ContentType:    r.ContentType,
		CreateRevision: r.CreateRevision,
		ModRevision:    r.ModRevision,
		Version:        r.Version,
	}
	if r.ExpiresAt != 0 {
		kv.ExpiresAt = time.Unix(0, r.ExpiresAt).UTC()
	}
	if withValue {
		kv.Value = append([]byte(nil), r.Value...)
	}
	return kv
}

// commandVersion is the first byte of an encoded command.
const commandVersion = 1

// MarshalBinary encodes c for a replicated log.
func (c Command) MarshalBinary() ([]byte, error) {
	var flags byte
	if c.IfAbsent {
		flags |= 1
	}
	if c.IfExists {
		flags |= 2
	}
	b := make([]byte, 0, 48+len(c.Key)+len(c.ContentType)+len(c.Value))
	b = append(b, commandVersion, byte(c.Op), flags)
	b = binary.BigEndian.AppendUint64(b, uint64(c.ExpiresAt))
	b = binary.BigEndian.AppendUint64(b, c.IfRevision)
	b = binary.BigEndian.AppendUint64(b, uint64(c.Now)) // at nowOffset
	b = binary.AppendUvarint(b, uint64(len(c.Key)))
	b = append(b, c.Key...)
	b = binary.AppendUvarint(b, uint64(len(c.ContentType)))
	b = append(b, c.ContentType...)
	b = append(b, c.Value...)
	return b, nil
}

var errBadCommand = errors.New("kvstore: malformed command encoding")

// UnmarshalBinary decodes a command encoded by MarshalBinary. The command
// does not alias b.
func (c *Command) UnmarshalBinary(b []byte) error {
	if len(b) < 27 || b[0] != commandVersion {
		return errBadCommand
	}
	*c = Command{
		Op:         Op(b[1]),
		IfAbsent:   b[2]&1 != 0,
		IfExists:   b[2]&2 != 0,
		ExpiresAt:  int64(binary.BigEndian.Uint64(b[3:])),
		IfRevision: binary.BigEndian.Uint64(b[11:]),
		Now:        int64(binary.BigEndian.Uint64(b[19:])),
	}
	rest := b[27:]
	key, rest, err := readString(rest)
	if err != nil {
		return err
	}
	ct, rest, err := readString(rest)
	if err != nil {
		return err
	}
	c.Key, c.ContentType = key, ct
	if len(rest) > 0 {
		c.Value = append([]byte(nil), rest...)
	}
	return nil
}

func readString(b []byte) (string, []byte, error) {
	n, k := binary.Uvarint(b)
	if k <= 0 || n > uint64(len(b)-k) {
		return "", nil, errBadCommand
	}
	return string(b[k : k+int(n)]), b[k+int(n):], nil
}
