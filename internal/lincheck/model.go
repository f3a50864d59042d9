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
// TTLs: a write may carry a TTL (?ttl=). The server reports the key's
// expiry (expires_at on the PUT, X-KV-Expires-At on a GET); the recorder
// converts it to the recording's time base, the same as the operations'
// call and return times (the servers and the recorder share a machine, so
// a wall clock reading converts exactly, up to [ClockSlack]). A server
// decides whether a key has expired with a clock reading taken within the
// operation (a read: the serving node's clock; a write: the clock the log
// stamped it with, the leader's), but those readings are not ordered like
// the operations' linearization (a read's clock may be later than the
// stamp of a write linearized after it). So the model decides expiry per
// operation, from the operation's own interval: the key is live for an
// operation that returned before its expiry, gone for one called after
// it, and either for one whose interval spans it (a nondeterministic
// step). Seeing a key as expired does not remove it from the state; a
// write that sees it expired replaces it, as the server does. A write of
// unknown outcome with a TTL leaves the expiry known only from below
// (call + ttl) until a read reveals it.
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
	"time"

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
	// TTL, on a Put, Create or CAS, is sent as ?ttl= (0: none).
	TTL time.Duration `json:"ttl,omitempty"`
	// Call and Return are the operation's, copied here for the model by
	// [History.Porcupine] (porcupine does not pass them to Step).
	Call   int64 `json:"-"`
	Return int64 `json:"-"`
}

// Output is an operation's outcome.
type Output struct {
	Result Result `json:"result"`
	Value  string `json:"value,omitempty"` // Get
	// Revision is the key's revision read by a Get (its ETag), the new
	// revision of a successful write, or the revision of a Delete.
	Revision uint64 `json:"revision,omitempty"`
	Created  bool   `json:"created,omitempty"` // a Put answered 201
	// ExpiresAt is the key's expiry as the server reported it, on a Get
	// or a successful write, in nanoseconds since the start of the
	// recording (the time base of Call and Return); 0: no TTL.
	ExpiresAt int64 `json:"expires_at,omitempty"`
	// Error says why the result is Unknown (for people; the model ignores it).
	Error string `json:"error,omitempty"`
}

// ClockSlack is how far apart the model allows the servers' clock (as
// reported in expires_at) and the recorder's to be when it decides
// whether an operation may see a key expired.
const ClockSlack = 5 * time.Millisecond

// State is the model's state of one key. Rev 0 on a present key means its
// revision is unknown (it was written by an operation whose answer was lost).
// ExpMin and ExpMax bound the key's expiry (in the recording's time base);
// both 0: no TTL; ExpMax [Never]: known only from below.
type State struct {
	Present        bool
	Value          string
	Rev            uint64
	ExpMin, ExpMax int64
}

func (s State) String() string {
	var out string
	switch {
	case !s.Present:
		return "absent"
	case s.Rev == 0:
		out = strconv.Quote(s.Value) + " @?"
	default:
		out = fmt.Sprintf("%q @%d", s.Value, s.Rev)
	}
	switch {
	case s.ExpMax == Never:
		out += fmt.Sprintf(" expires ≥%s", time.Duration(s.ExpMin))
	case s.ExpMax != 0:
		out += fmt.Sprintf(" expires %s", time.Duration(s.ExpMin))
	}
	return out
}

// Model returns the porcupine model of one kvstore key, partitioned by key
// so that keys are checked independently.
func Model() porcupine.Model {
	nm := porcupine.NondeterministicModel{
		Partition:      partition,
		PartitionEvent: partitionEvents,
		Init:           func() []any { return []any{State{}} },
		Step: func(state, input, output any) []any {
			var out []any
			for _, s := range Step(state.(State), input.(Input), output.(Output)) {
				out = append(out, s)
			}
			return out
		},
		Hash:                      func(state any) uint64 { return hashState(state.(State)) },
		DescribeOperation:         func(input, output any) string { return describe(input.(Input), output.(Output)) },
		DescribeState:             func(state any) string { return state.(State).String() },
		DescribeOperationMetadata: describeMetadata,
	}
	return nm.ToModel()
}

// Step is the sequential specification: the states the key may be in after
// the operation in answered out in state s (none: it cannot answer that).
// A key with a TTL may be live or expired for the operation, depending on
// where its expiry falls against the operation's interval.
func Step(s State, in Input, out Output) []State {
	var next []State
	ttl := s.Present && s.ExpMax != 0
	if !ttl || in.Call-int64(ClockSlack) < s.ExpMax {
		if ok, n := step(s, in, out); ok {
			next = append(next, n)
		}
	}
	if ttl && in.Return >= s.ExpMin-int64(ClockSlack) {
		// Expired for this operation: it sees the key absent. Unless it
		// writes, the key's record stays (a later operation may still
		// see it live: clock readings need not follow the linearization).
		if ok, n := step(State{}, in, out); ok {
			if n == (State{}) {
				n = s
			}
			if len(next) == 0 || next[0] != n {
				next = append(next, n)
			}
		}
	}
	return next
}

// step is Step for a key that is live (or absent) for the operation.
func step(s State, in Input, out Output) (bool, State) {
	matches := in.IfRevision != 0 && s.Present && s.Rev == in.IfRevision
	// A present key of unknown revision may be at any revision.
	mayMatch := matches || (in.IfRevision != 0 && s.Present && s.Rev == 0)
	written := State{Present: true, Value: in.Value, Rev: out.Revision}
	if in.TTL > 0 {
		// Known from the answer, else from below: the server adds the TTL
		// to a clock reading taken after the call.
		written.ExpMin, written.ExpMax = in.Call+int64(in.TTL), Never
		if out.Result == OK {
			if out.ExpiresAt < in.Call+int64(in.TTL)-int64(ClockSlack) {
				return false, s
			}
			written.ExpMin, written.ExpMax = out.ExpiresAt, out.ExpiresAt
		}
	} else if out.Result == OK && in.Kind != Get && out.ExpiresAt != 0 {
		return false, s // a write without a TTL left one
	}
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
			switch {
			case (s.ExpMax == 0) != (out.ExpiresAt == 0):
				return false, s // a TTL appeared or vanished
			case s.ExpMax == Never:
				if out.ExpiresAt < s.ExpMin-int64(ClockSlack) {
					return false, s
				}
				s.ExpMin, s.ExpMax = out.ExpiresAt, out.ExpiresAt // learn the expiry
			case s.ExpMax != out.ExpiresAt:
				return false, s
			}
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
	h = (h ^ s.Rev) * prime
	h = (h ^ uint64(s.ExpMin)) * prime
	return (h ^ uint64(s.ExpMax)) * prime
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
	if in.TTL != 0 {
		call = fmt.Sprintf("%s ttl %s", call, in.TTL)
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
