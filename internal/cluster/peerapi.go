package cluster

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/hashicorp/raft"

	"kvstore.dev/kvstore/internal/errcode"
	"kvstore.dev/kvstore/internal/store"
	"kvstore.dev/kvstore/wire"
)

// peerHandler is the peer HTTP API. Only connections that presented the
// peer token reach it (see peerMux).
func (n *Node) peerHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST "+wire.PeerPathPropose, func(w http.ResponseWriter, r *http.Request) {
		data, err := io.ReadAll(io.LimitReader(r.Body, 1<<30)) // the sender bounds batches; one value may be 256 MiB
		if err != nil {
			writePeer(w, nil, err)
			return
		}
		if _, err := decodeCommands(data); err != nil {
			writePeer(w, nil, fmt.Errorf("bad proposal: %w", err))
			return
		}
		if n.raft.State() != raft.Leader {
			writePeer(w, nil, errNotLeader)
			return
		}
		res, err := n.pacer.propose(r.Context(), data)
		writePeer(w, proposeResponse{toWire(res)}, err)
	})
	mux.HandleFunc("GET "+wire.PeerPathReadIndex, func(w http.ResponseWriter, r *http.Request) {
		if n.raft.State() != raft.Leader {
			writePeer(w, nil, errNotLeader)
			return
		}
		idx, err := n.localReadIndex()
		writePeer(w, readIndexResponse{idx}, err)
	})
	mux.HandleFunc("POST "+wire.PeerPathMembers, func(w http.ResponseWriter, r *http.Request) {
		var m wire.AddMemberRequest
		if err := json.NewDecoder(io.LimitReader(r.Body, 1<<16)).Decode(&m); err != nil {
			writePeer(w, nil, fmt.Errorf("body: %v: %w", err, errcode.ErrInvalidArgument))
			return
		}
		if m.Join != "" && m.ID == n.cfg.NodeID {
			// A server asked itself (a Service that reaches any pod): let
			// it ask another one.
			writePeer(w, nil, errNotLeader)
			return
		}
		ctx, cancel := context.WithTimeout(r.Context(), n.cfg.ApplyTimeout)
		defer cancel()
		writePeer(w, peerOK, n.passOn(ctx, m))
	})
	mux.HandleFunc("DELETE "+wire.PeerPathMembers+"/{id}", func(w http.ResponseWriter, r *http.Request) {
		writePeer(w, peerOK, n.removeLocal(r.PathValue("id")))
	})
	mux.HandleFunc("GET "+wire.PeerPathStatus, func(w http.ResponseWriter, r *http.Request) {
		writePeer(w, n.selfStatus(), nil)
	})
	return mux
}

// peerOK answers a membership change that was made.
var peerOK = map[string]string{"status": "ok"}

// writePeer answers v as JSON, or err as a wire.Problem with the status and
// code of errcode's table (the client API's, with not_leader for the peer
// API) and err's text as the detail: peers are trusted, and a node that
// relays the answer to a client hides an internal error's text itself.
func writePeer(w http.ResponseWriter, v any, err error) {
	if err != nil {
		p := wire.Problem{Title: "Internal server error", Status: http.StatusInternalServerError, Code: wire.CodeInternal, Detail: err.Error()}
		if e, ok := errcode.Lookup(err); ok {
			p.Title, p.Status, p.Code = e.Title, e.Status, e.Code
		}
		w.Header().Set("Content-Type", wire.ContentTypeProblem)
		w.WriteHeader(p.Status)
		v = p
	} else {
		w.Header().Set("Content-Type", "application/json")
	}
	_ = json.NewEncoder(w).Encode(v)
}

// ErrNotMember is a removal of an ID not in the configuration.
var ErrNotMember = errcode.ErrNotMember

// askJoin asks the node at peer to add this node, as a voter unless
// JoinAsNonvoter (it forwards to its leader). join says whether this node
// has Raft state (JoinKept) or none (JoinEmpty).
func (n *Node) askJoin(ctx context.Context, peer, join string) error {
	voter := !n.cfg.JoinAsNonvoter
	return n.peers.addMember(ctx, peer, wire.AddMemberRequest{ID: n.cfg.NodeID, Address: n.cfg.PeerAdvertise, Voter: &voter, Join: join})
}

// AddMember adds a server to the cluster (through the leader); a single
// node refuses (errcode.ErrNotClustered). The id and
// address are validated first (errors wrap errcode.ErrInvalidArgument).
func (n *Node) AddMember(ctx context.Context, m wire.AddMemberRequest) error {
	if n.cfg.Single {
		return errNotClustered
	}
	m.Join = "" // only a server asking for itself says what state it has
	return n.addMember(ctx, m)
}

// addMember adds m on the leader: here when this node leads, else through
// the peer API (viaLeader).
func (n *Node) addMember(ctx context.Context, m wire.AddMemberRequest) error {
	if err := validateMember(m); err != nil {
		return err
	}
	return n.peers.viaLeader(ctx, func() error { return n.addLocal(m) },
		func(addr string) error { return n.peers.addMember(ctx, addr, m) })
}

// passOn adds m for the server that asked this node: here as the leader,
// else passed on once to the leader (a joining server may ask any member).
// It is not retried here, nor waited for: a node that knows no leader (in
// an election, or itself waiting to be re-admitted, when no leader
// contacts it) answers not_leader at once, and the asking server asks
// another address or tries again (Node.join).
func (n *Node) passOn(ctx context.Context, m wire.AddMemberRequest) error {
	if err := validateMember(m); err != nil {
		return err
	}
	if n.raft.State() == raft.Leader {
		return n.addLocal(m)
	}
	addr := n.peers.leader()
	if addr == "" || addr == n.cfg.PeerAdvertise {
		return errNotLeader
	}
	return n.peers.addMember(ctx, addr, m)
}

// RemoveMember removes a server from the cluster (through the leader). An
// id that is not a member is errcode.ErrNotMember; a single node refuses
// (errcode.ErrNotClustered).
func (n *Node) RemoveMember(ctx context.Context, id string) error {
	if n.cfg.Single {
		return errNotClustered
	}
	if err := ValidateMemberID(id); err != nil {
		return err
	}
	return n.peers.viaLeader(ctx, func() error { return n.removeLocal(id) }, func(addr string) error {
		return n.peers.call(ctx, n.cfg.ApplyTimeout+time.Second, addr, http.MethodDelete, wire.PeerMemberPath(id), nil, nil)
	})
}

// addMember asks the peer at addr to add m. A membership change is a log
// entry: an answer lost after sending is store.ErrOutcomeUnknown.
func (c *peerClient) addMember(ctx context.Context, addr string, m wire.AddMemberRequest) error {
	body, err := json.Marshal(m)
	if err != nil {
		return err
	}
	return c.call(ctx, c.timeout+time.Second, addr, http.MethodPost, wire.PeerPathMembers, body, nil)
}

// addLocal adds m as the leader (errNotLeader on any other node). A server
// asking for itself with JoinKept that is still a member is left as it is;
// one asking with JoinEmpty whose id is a voter has lost the state that
// voter had: its stale entry is removed (and committed) before it is added
// again, so its forgotten votes can never count (docs/api.md, Membership).
func (n *Node) addLocal(m wire.AddMemberRequest) error {
	if n.raft.State() != raft.Leader {
		return errNotLeader
	}
	cf := n.raft.GetConfiguration()
	if err := cf.Error(); err != nil {
		return fmt.Errorf("add %s: %w", m.ID, mapMembershipErr(err))
	}
	for _, s := range cf.Configuration().Servers {
		if string(s.ID) != m.ID {
			continue
		}
		switch {
		case m.Join == wire.JoinKept:
			return nil // still a member, with its state: nothing to change
		case m.Join == wire.JoinEmpty && s.Suffrage == raft.Voter:
			if m.ID == n.cfg.NodeID {
				return fmt.Errorf("add %s: the leader has this id: %w", m.ID, errcode.ErrInvalidArgument)
			}
			if err := n.raft.RemoveServer(s.ID, 0, n.cfg.ApplyTimeout).Error(); err != nil {
				return fmt.Errorf("remove the stale entry of %s: %w", m.ID, mapMembershipErr(err))
			}
			n.cfg.Logger.Warn("removed the stale entry of a voter that came back without its state",
				"id", m.ID, "address", string(s.Address))
		}
	}
	var f raft.IndexFuture
	if m.IsVoter() {
		f = n.raft.AddVoter(raft.ServerID(m.ID), raft.ServerAddress(m.Address), 0, n.cfg.ApplyTimeout)
	} else {
		f = n.raft.AddNonvoter(raft.ServerID(m.ID), raft.ServerAddress(m.Address), 0, n.cfg.ApplyTimeout)
	}
	if err := f.Error(); err != nil {
		return fmt.Errorf("add %s: %w", m.ID, mapMembershipErr(err))
	}
	n.cfg.Logger.Info("member added", "id", m.ID, "address", m.Address, "voter", m.IsVoter(), "join", m.Join)
	return nil
}

func (n *Node) removeLocal(id string) error {
	if err := ValidateMemberID(id); err != nil {
		return err
	}
	if n.raft.State() != raft.Leader {
		return errNotLeader
	}
	cf := n.raft.GetConfiguration()
	if err := cf.Error(); err != nil {
		return err
	}
	found := false
	for _, s := range cf.Configuration().Servers {
		found = found || string(s.ID) == id
	}
	if !found {
		return fmt.Errorf("remove %s: %w", id, ErrNotMember)
	}
	if err := n.raft.RemoveServer(raft.ServerID(id), 0, n.cfg.ApplyTimeout).Error(); err != nil {
		return fmt.Errorf("remove %s: %w", id, mapMembershipErr(err))
	}
	n.cfg.Logger.Info("member removed", "id", id)
	return nil
}

func mapMembershipErr(err error) error {
	switch {
	case errors.Is(err, raft.ErrNotLeader), errors.Is(err, raft.ErrLeadershipLost):
		return fmt.Errorf("%v: %w", err, store.ErrOutcomeUnknown)
	case errors.Is(err, raft.ErrEnqueueTimeout), errors.Is(err, raft.ErrLeadershipTransferInProgress):
		return fmt.Errorf("%v: %w", err, store.ErrNoQuorum)
	}
	return err
}
