// Package lincheck checks that kvstore is linearizable: it records a
// history of concurrent operations against any set of endpoints that serve
// the HTTP API of docs/api.md (one server, or several nodes of a cluster),
// and checks that history with porcupine (github.com/anishathalye/porcupine)
// against a sequential model of the key-value semantics, key by key.
//
// The model covers GET, unconditional PUT, create-only PUT (If-None-Match: *),
// compare-and-swap PUT (If-Match: "<revision>") and DELETE (optionally with
// If-Match). Per key it tracks whether the key exists, its value and the
// revision of the write that produced it. Revisions are store-wide counters,
// so nothing is assumed about revisions across keys; within a key the model
// checks that a read returns the revision of the write it reads from, that a
// write's revision is above the one it replaced, and that a compare-and-swap
// succeeds exactly when the key is at the expected revision.
//
// The model stays sound under faults: a write whose outcome is unknown (a
// timeout, a broken connection, a 5xx such as 503 no_quorum or 504
// outcome_unknown) is recorded with an infinite return time and an unknown
// output, so the checker may place it anywhere after its call — including
// after every other operation, where it has no visible effect. Its revision
// is unknown until a read reveals it. A request that never reached a
// server (the connection was refused) is recorded as failed, with no
// effect; a read without an answer is recorded as unknown with its real
// return time, as it changes nothing.
//
// A test records with [Run], then calls [Verify] (or [CheckAndSave]), which
// on a violation writes porcupine's HTML visualization and the history as
// JSON to a directory and reports where.
package lincheck

import (
	"fmt"
	"strconv"

	"github.com/anishathalye/porcupine"
)

// Kind is an operation's kind.
type Kind string

// The operations the model knows.
const (
	Get    Kind = "get"    // GET /api/v1/kv/{key}
	Put    Kind = "put"    // PUT /api/v1/kv/{key}
	Create Kind = "create" // PUT with If-None-Match: *
	CAS    Kind = "cas"    // PUT with If-Match: "<IfRevision>"
	Delete Kind = "delete" // DELETE, with If-Match: "<IfRevision>" when IfRevision > 0
)

// Result is how an operation ended.
type Result string

// The results an operation can have.
const (
	OK                 Result = "ok"                  // 200, 201 or 204
	NotFound           Result = "not_found"           // 404 not_found
	PreconditionFailed Result = "precondition_failed" // 412
	Unknown            Result = "unknown"             // no answer, or a 5xx: it may or may not have happened
	Failed             Result = "failed"              // never reached a server (connection refused): no effect
)

// Input is an operation as sent.
type Input struct {
	Kind  Kind   `json:"kind"`
	Key   string `json:"key"`
	Value string `json:"value,omitempty"` // Put, Create, CAS
	// IfRevision is the expected revision of a CAS, or of a conditional
	// Delete (0: unconditional).
	IfRevision uint64 `json:"if_revision,omitempty"`
}

// Output is an operation's outcome.
type Output struct {
	Result Result `json:"result"`
	Value  string `json:"value,omitempty"` // Get
	// Revision is the key's revision read by a Get (its ETag), the new
	// revision of a successful write, or the revision of a Delete.
	Revision uint64 `json:"revision,omitempty"`
	Created  bool   `json:"created,omitempty"` // a Put answered 201
	// Error says why the result is Unknown (for people; the model ignores it).
	Error string `json:"error,omitempty"`
}

// State is the model's state of one key. Rev 0 on a present key means its
// revision is unknown (it was written by an operation whose answer was lost).
type State struct {
	Present bool
	Value   string
	Rev     uint64
}

func (s State) String() string {
	switch {
	case !s.Present:
		return "absent"
	case s.Rev == 0:
		return strconv.Quote(s.Value) + " @?"
	}
	return fmt.Sprintf("%q @%d", s.Value, s.Rev)
}

// Model returns the porcupine model of one kvstore key, partitioned by key
// so that keys are checked independently.
func Model() porcupine.Model {
	return porcupine.Model{
		Partition:      partition,
		PartitionEvent: partitionEvents,
		Init:           func() any { return State{} },
		Step: func(state, input, output any) (bool, any) {
			return Step(state.(State), input.(Input), output.(Output))
		},
		Hash:                      func(state any) uint64 { return hashState(state.(State)) },
		DescribeOperation:         func(input, output any) string { return describe(input.(Input), output.(Output)) },
		DescribeState:             func(state any) string { return state.(State).String() },
		DescribeOperationMetadata: describeMetadata,
	}
}

// Step is the sequential specification: whether in state s the operation
// in may answer out, and the state after it.
func Step(s State, in Input, out Output) (bool, State) {
	matches := in.IfRevision != 0 && s.Present && s.Rev == in.IfRevision
	// A present key of unknown revision may be at any revision.
	mayMatch := matches || (in.IfRevision != 0 && s.Present && s.Rev == 0)
	written := State{Present: true, Value: in.Value, Rev: out.Revision}
	newer := s.Rev == 0 || out.Revision > s.Rev
	switch out.Result {
	case Failed:
		return true, s
	case Unknown:
		written.Rev = 0
	}
	switch in.Kind {
	case Get:
		switch out.Result {
		case Unknown:
			return true, s
		case NotFound:
			return !s.Present, s
		case OK:
			if !s.Present || s.Value != out.Value || (s.Rev != 0 && s.Rev != out.Revision) {
				return false, s
			}
			s.Rev = out.Revision // learn the revision of an unacknowledged write
			return true, s
		}
	case Put:
		switch out.Result {
		case Unknown:
			return true, written
		case OK:
			return out.Created == !s.Present && newer, written
		}
	case Create:
		switch out.Result {
		case Unknown:
			if s.Present {
				return true, s
			}
			return true, written
		case OK:
			return !s.Present, written
		case PreconditionFailed:
			return s.Present, s
		}
	case CAS:
		switch out.Result {
		case Unknown:
			if mayMatch {
				return true, written
			}
			return true, s
		case OK:
			return mayMatch && newer, written
		case PreconditionFailed:
			return !matches, s
		}
	case Delete:
		if in.IfRevision == 0 {
			switch out.Result {
			case Unknown:
				return true, State{}
			case OK:
				return s.Present && newer, State{}
			case NotFound:
				return !s.Present, s
			}
			break
		}
		switch out.Result {
		case Unknown:
			if mayMatch {
				return true, State{}
			}
			return true, s
		case OK:
			return mayMatch && newer, State{}
		case PreconditionFailed: // also when the key is missing (RFC 9110)
			return !matches, s
		}
	}
	return false, s // an answer this operation can never give
}

// partition splits a history by key, keeping the order of operations.
func partition(history []porcupine.Operation) [][]porcupine.Operation {
	index := map[string]int{}
	var parts [][]porcupine.Operation
	for _, op := range history {
		key := op.Input.(Input).Key
		i, ok := index[key]
		if !ok {
			i = len(parts)
			index[key] = i
			parts = append(parts, nil)
		}
		parts[i] = append(parts[i], op)
	}
	return parts
}

// partitionEvents splits an event history by key: a return event belongs
// to the key of the call with the same id.
func partitionEvents(history []porcupine.Event) [][]porcupine.Event {
	keyOf := map[int]string{}
	for _, ev := range history {
		if ev.Kind == porcupine.CallEvent {
			keyOf[ev.Id] = ev.Value.(Input).Key
		}
	}
	index := map[string]int{}
	var parts [][]porcupine.Event
	for _, ev := range history {
		key := keyOf[ev.Id]
		i, ok := index[key]
		if !ok {
			i = len(parts)
			index[key] = i
			parts = append(parts, nil)
		}
		parts[i] = append(parts[i], ev)
	}
	return parts
}

// hashState is FNV-1a over the state's fields; equal states hash equally.
func hashState(s State) uint64 {
	const prime = 1099511628211
	h := uint64(14695981039346656037)
	if s.Present {
		h = (h ^ 1) * prime
	}
	for i := 0; i < len(s.Value); i++ {
		h = (h ^ uint64(s.Value[i])) * prime
	}
	return (h ^ s.Rev) * prime
}

func describe(in Input, out Output) string {
	var call string
	switch in.Kind {
	case Get:
		call = fmt.Sprintf("get(%s)", in.Key)
	case Delete:
		call = fmt.Sprintf("delete(%s)", in.Key)
	default:
		call = fmt.Sprintf("%s(%s, %q)", in.Kind, in.Key, in.Value)
	}
	if in.IfRevision != 0 {
		call = fmt.Sprintf("%s if @%d", call, in.IfRevision)
	}
	var res string
	switch {
	case out.Result == Unknown || out.Result == Failed:
		res = string(out.Result) + ": " + out.Error
	case in.Kind == Get && out.Result == OK:
		res = fmt.Sprintf("%q @%d", out.Value, out.Revision)
	case out.Result == OK && in.Kind == Put && out.Created:
		res = fmt.Sprintf("created @%d", out.Revision)
	case out.Result == OK:
		res = fmt.Sprintf("ok @%d", out.Revision)
	default:
		res = string(out.Result)
	}
	return call + " → " + res
}

func describeMetadata(m any) string {
	if m == nil {
		return ""
	}
	return fmt.Sprint(m)
}
