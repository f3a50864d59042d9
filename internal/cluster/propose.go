package cluster

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"

	"github.com/hashicorp/raft"

	"kvstore.dev/kvstore/internal/errcode"
	"kvstore.dev/kvstore/internal/store"
)

// errNotLeader is internal: the proposal went to a node that is not (or no
// longer) the leader, before reaching any log; it is retried elsewhere.
var errNotLeader = errors.New("not the leader")

// Propose replicates cmds through the leader and returns their results
// once applied on the leader. A follower forwards them to the leader; a
// change of leader while looking for one is followed. Errors wrap
// store.ErrNoQuorum (not applied) or store.ErrOutcomeUnknown. Concurrent
// proposals are batched: a follower's into one request to the leader
// (batch.go), the leader's and those forwarded to it into one log entry
// (pacer.go).
func (n *Node) Propose(ctx context.Context, cmds ...store.Command) ([]store.Result, error) {
	var res []store.Result
	var err error
	err = n.viaLeader(ctx, func() error {
		if n.raft.State() == raft.Leader {
			data, encErr := encodeCommands(cmds)
			if encErr != nil {
				return encErr
			}
			res, err = n.pacer.propose(ctx, data)
			return err
		}
		return errNotLeader
	}, func(addr string) error {
		res, err = n.forwardBatched(ctx, addr, cmds)
		return err
	})
	return res, err
}

// errUnreachable is internal: the known leader could not be reached (it
// may be down and not yet replaced); the request was not sent.
var errUnreachable = errors.New("leader unreachable")

// viaLeader runs local when this node leads, else remote with the leader's
// peer address. Not-leader answers and an unreachable leader are retried,
// following elections, until ApplyTimeout or ctx ends; they end as
// ErrNoQuorum.
func (n *Node) viaLeader(ctx context.Context, local func() error, remote func(addr string) error) error {
	deadline := time.Now().Add(n.cfg.ApplyTimeout)
	var last error
	for {
		err := local()
		if errors.Is(err, errNotLeader) {
			var addr string
			if addr, err = n.waitLeader(ctx); err != nil {
				return err
			}
			if addr == n.cfg.PeerAdvertise {
				err = errNotLeader // this node just won an election: retry locally
			} else {
				err = remote(addr)
			}
		}
		if !errors.Is(err, errNotLeader) && !errors.Is(err, errUnreachable) {
			return err
		}
		if err != nil {
			last = err
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("no reachable leader within %v (%v): %w", n.cfg.ApplyTimeout, last, store.ErrNoQuorum)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("no reachable leader (%v): %w: %w", last, ctx.Err(), store.ErrNoQuorum)
		case <-n.stop:
			return store.ErrClosed
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// waitLeader returns the leader's peer address, waiting up to the apply
// timeout (or ctx) for an election to end.
func (n *Node) waitLeader(ctx context.Context) (string, error) {
	deadline := time.NewTimer(n.cfg.ApplyTimeout)
	defer deadline.Stop()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		if addr, _ := n.raft.LeaderWithID(); addr != "" {
			return string(addr), nil
		}
		select {
		case <-ctx.Done():
			return "", fmt.Errorf("no leader: %w: %w", ctx.Err(), store.ErrNoQuorum)
		case <-deadline.C:
			return "", fmt.Errorf("no leader elected within %v: %w", n.cfg.ApplyTimeout, store.ErrNoQuorum)
		case <-n.stop:
			return "", store.ErrClosed
		case <-tick.C:
		}
	}
}

// wireResult is store.Result on the peer wire.
type wireResult struct {
	Err      string         `json:"err,omitempty"` // "not_found", "precondition_failed"
	KV       store.KeyValue `json:"kv"`
	Created  bool           `json:"created,omitempty"`
	Deleted  int            `json:"deleted,omitempty"`
	Revision uint64         `json:"revision"`
}

// peerError is an error on the peer wire.
type peerError struct {
	Code    string `json:"code"` // not_leader, no_quorum, outcome_unknown, closed, internal
	Message string `json:"message"`
}

func toWire(rs []store.Result) []wireResult {
	out := make([]wireResult, len(rs))
	for i, r := range rs {
		out[i] = wireResult{KV: r.KV, Created: r.Created, Deleted: r.Deleted, Revision: r.Revision}
		switch {
		case errors.Is(r.Err, store.ErrNotFound):
			out[i].Err = "not_found"
		case errors.Is(r.Err, store.ErrPreconditionFailed):
			out[i].Err = "precondition_failed"
		case r.Err != nil:
			out[i].Err = r.Err.Error()
		}
	}
	return out
}

func fromWire(ws []wireResult) []store.Result {
	out := make([]store.Result, len(ws))
	for i, w := range ws {
		out[i] = store.Result{KV: w.KV, Created: w.Created, Deleted: w.Deleted, Revision: w.Revision}
		switch w.Err {
		case "":
		case "not_found":
			out[i].Err = store.ErrNotFound
		case "precondition_failed":
			out[i].Err = store.ErrPreconditionFailed
		default:
			out[i].Err = errors.New(w.Err)
		}
	}
	return out
}

func errorFromWire(pe peerError) error {
	switch pe.Code {
	case "not_leader":
		return errNotLeader
	case "no_quorum":
		return fmt.Errorf("leader: %s: %w", pe.Message, store.ErrNoQuorum)
	case "closed":
		return fmt.Errorf("leader: %s: %w", pe.Message, store.ErrNoQuorum)
	case "outcome_unknown":
		return fmt.Errorf("leader: %s: %w", pe.Message, store.ErrOutcomeUnknown)
	}
	return fmt.Errorf("leader: %s: %w", pe.Message, store.ErrOutcomeUnknown)
}

func errorToWire(err error) (int, peerError) {
	switch {
	case errors.Is(err, errNotLeader):
		return http.StatusMisdirectedRequest, peerError{"not_leader", err.Error()}
	case errors.Is(err, store.ErrNoQuorum):
		return http.StatusServiceUnavailable, peerError{"no_quorum", err.Error()}
	case errors.Is(err, store.ErrClosed):
		return http.StatusServiceUnavailable, peerError{"closed", err.Error()}
	case errors.Is(err, store.ErrOutcomeUnknown):
		return http.StatusGatewayTimeout, peerError{"outcome_unknown", err.Error()}
	}
	// Everything else as the client API answers it (one table).
	if e, ok := errcode.Lookup(err); ok {
		return e.Status, peerError{e.Code, err.Error()}
	}
	return http.StatusInternalServerError, peerError{"internal", err.Error()}
}

// forward sends a proposal to the leader's peer API. A request that never
// reached the leader is ErrNoQuorum (not applied); one that did but got no
// answer is ErrOutcomeUnknown.
//
// An attempt is bounded by ApplyTimeout and a little: the leader answers
// within it, or has lost its quorum.
func (n *Node) forward(ctx context.Context, leader string, data []byte) ([]store.Result, error) {
	ctx, cancel := context.WithTimeout(ctx, n.cfg.ApplyTimeout+2*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, "http://"+leader+"/peer/v1/propose", bytes.NewReader(data))
	if err != nil {
		return nil, err
	}
	resp, err := n.client.Do(req)
	if err != nil {
		var op *net.OpError
		if errors.As(err, &op) && op.Op == "dial" {
			return nil, fmt.Errorf("forward to the leader %s: %w: %w", leader, err, errUnreachable)
		}
		return nil, fmt.Errorf("forward to the leader %s: %w: %w", leader, err, store.ErrOutcomeUnknown)
	}
	defer resp.Body.Close()
	dec := json.NewDecoder(resp.Body)
	if resp.StatusCode != http.StatusOK {
		var pe peerError
		if err := dec.Decode(&pe); err != nil {
			return nil, fmt.Errorf("forward: leader answered %s: %w", resp.Status, store.ErrOutcomeUnknown)
		}
		return nil, errorFromWire(pe)
	}
	var out struct {
		Results []wireResult `json:"results"`
	}
	if err := dec.Decode(&out); err != nil {
		return nil, fmt.Errorf("forward: read the leader's answer: %w: %w", err, store.ErrOutcomeUnknown)
	}
	return fromWire(out.Results), nil
}
