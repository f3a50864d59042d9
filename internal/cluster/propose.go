package cluster

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/hashicorp/raft"

	"kvstore.dev/kvstore/internal/store"
	"kvstore.dev/kvstore/wire"
)

// Propose replicates cmds through the leader and returns their results
// once applied on the leader. A follower forwards them to the leader; a
// change of leader while looking for one is followed (viaLeader). Errors
// wrap store.ErrNoQuorum (not applied) or store.ErrOutcomeUnknown.
// Concurrent proposals are batched: a follower's into one request to the
// leader (batch.go), the leader's and those forwarded to it into one log
// entry (pacer.go).
func (n *Node) Propose(ctx context.Context, cmds ...store.Command) ([]store.Result, error) {
	return n.peers.propose(ctx, cmds, func() ([]store.Result, error) {
		if n.raft.State() != raft.Leader {
			return nil, errNotLeader
		}
		data, err := encodeCommands(cmds)
		if err != nil {
			return nil, err
		}
		return n.pacer.propose(ctx, data)
	})
}

// propose runs local when this node leads, else forwards cmds to the
// leader, batched.
func (c *peerClient) propose(ctx context.Context, cmds []store.Command, local func() ([]store.Result, error)) (res []store.Result, err error) {
	err = c.viaLeader(ctx, func() (err error) {
		res, err = local()
		return err
	}, func(addr string) (err error) {
		res, err = c.forwardBatched(ctx, addr, cmds)
		return err
	})
	return res, err
}

// wireResult is store.Result on the peer wire.
type wireResult struct {
	Err      string         `json:"err,omitempty"` // wire.CodeNotFound, wire.CodePreconditionFailed
	KV       store.KeyValue `json:"kv"`
	Created  bool           `json:"created,omitempty"`
	Deleted  int            `json:"deleted,omitempty"`
	Revision uint64         `json:"revision"`
}

// proposeResponse answers POST /peer/v1/propose: one result per command.
type proposeResponse struct {
	Results []wireResult `json:"results"`
}

func toWire(rs []store.Result) []wireResult {
	out := make([]wireResult, len(rs))
	for i, r := range rs {
		out[i] = wireResult{KV: r.KV, Created: r.Created, Deleted: r.Deleted, Revision: r.Revision}
		switch {
		case errors.Is(r.Err, store.ErrNotFound):
			out[i].Err = wire.CodeNotFound
		case errors.Is(r.Err, store.ErrPreconditionFailed):
			out[i].Err = wire.CodePreconditionFailed
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
		case wire.CodeNotFound:
			out[i].Err = store.ErrNotFound
		case wire.CodePreconditionFailed:
			out[i].Err = store.ErrPreconditionFailed
		default:
			out[i].Err = errors.New(w.Err)
		}
	}
	return out
}

// forward sends a proposal to the leader's peer API. Only an answer that
// proves nothing was applied (retryable: not_leader, no_quorum, a
// connection that failed before sending) is retried; any other failure
// (no answer after sending, outcome_unknown, an error the leader did not
// expect) is store.ErrOutcomeUnknown.
//
// An attempt is bounded by the apply timeout and a little: the leader
// answers within it, or has lost its quorum.
func (c *peerClient) forward(leader string, data []byte) ([]store.Result, error) {
	var out proposeResponse
	err := c.call(context.Background(), c.timeout+2*time.Second, leader, http.MethodPost, wire.PeerPathPropose, data, &out)
	switch {
	case err == nil:
		return fromWire(out.Results), nil
	case retryable(err), errors.Is(err, store.ErrOutcomeUnknown):
		return nil, err
	}
	return nil, fmt.Errorf("forward to the leader %s: %v: %w", leader, err, store.ErrOutcomeUnknown)
}
