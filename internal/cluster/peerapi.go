package cluster

import (
	"bytes"
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
)

// peerHandler is the peer HTTP API. Only connections that presented the
// peer token reach it (see peerMux).
func (n *Node) peerHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /peer/v1/propose", func(w http.ResponseWriter, r *http.Request) {
		data, err := io.ReadAll(io.LimitReader(r.Body, 1<<30)) // the sender bounds batches; one value may be 256 MiB
		if err != nil {
			writePeerError(w, err)
			return
		}
		if _, err := decodeCommands(data); err != nil {
			writePeerError(w, fmt.Errorf("bad proposal: %w", err))
			return
		}
		if n.raft.State() != raft.Leader {
			writePeerError(w, errNotLeader)
			return
		}
		res, err := n.pacer.propose(r.Context(), data)
		if err != nil {
			writePeerError(w, err)
			return
		}
		writePeerJSON(w, map[string]any{"results": toWire(res)})
	})
	mux.HandleFunc("GET /peer/v1/read-index", func(w http.ResponseWriter, r *http.Request) {
		if n.raft.State() != raft.Leader {
			writePeerError(w, errNotLeader)
			return
		}
		idx, err := n.localReadIndex()
		if err != nil {
			writePeerError(w, err)
			return
		}
		writePeerJSON(w, map[string]uint64{"index": idx})
	})
	mux.HandleFunc("POST /peer/v1/members", func(w http.ResponseWriter, r *http.Request) {
		var m MemberRequest
		if err := json.NewDecoder(io.LimitReader(r.Body, 1<<16)).Decode(&m); err != nil {
			writePeerError(w, fmt.Errorf("body: %v: %w", err, errcode.ErrInvalidArgument))
			return
		}
		if err := n.addLocal(m); err != nil {
			writePeerError(w, err)
			return
		}
		writePeerJSON(w, map[string]string{"status": "ok"})
	})
	mux.HandleFunc("DELETE /peer/v1/members/{id}", func(w http.ResponseWriter, r *http.Request) {
		if err := n.removeLocal(r.PathValue("id")); err != nil {
			writePeerError(w, err)
			return
		}
		writePeerJSON(w, map[string]string{"status": "ok"})
	})
	mux.HandleFunc("GET /peer/v1/status", func(w http.ResponseWriter, r *http.Request) {
		writePeerJSON(w, n.selfStatus())
	})
	return mux
}

func writePeerJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(v)
}

func writePeerError(w http.ResponseWriter, err error) {
	code, pe := errorToWire(err)
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(pe)
}

// MemberRequest asks the leader to add a server.
type MemberRequest struct {
	ID      string `json:"id"`
	Address string `json:"address"`
	// Voter adds the server with a vote; otherwise it joins as a non-voter
	// that replicates without counting for the quorum (promote it later by
	// adding it again as a voter).
	Voter bool `json:"voter"`
	// Join is set when a server asks for itself: JoinEmpty or JoinKept.
	// Empty for an administrator's add or promotion.
	Join string `json:"join,omitempty"`
}

// ErrNotMember is a removal of an ID not in the configuration.
var ErrNotMember = errcode.ErrNotMember

// askJoin asks the node at peer to add this node, as a voter unless
// JoinAsNonvoter (it forwards to its leader). join says whether this node
// has Raft state (JoinKept) or none (JoinEmpty).
func (n *Node) askJoin(ctx context.Context, peer, join string) error {
	return n.peerCall(ctx, peer, http.MethodPost, "/peer/v1/members",
		MemberRequest{ID: n.cfg.NodeID, Address: n.cfg.PeerAdvertise, Voter: !n.cfg.JoinAsNonvoter, Join: join})
}

// AddMember adds a server to the cluster (through the leader). The id and
// address are validated first (errors wrap errcode.ErrInvalidArgument).
func (n *Node) AddMember(ctx context.Context, m MemberRequest) error {
	m.Join = "" // only a server asking for itself says what state it has
	if err := validateMember(m); err != nil {
		return err
	}
	if n.raft.State() == raft.Leader {
		return n.addLocal(m)
	}
	addr, err := n.waitLeader(ctx)
	if err != nil {
		return err
	}
	return n.peerCall(ctx, addr, http.MethodPost, "/peer/v1/members", m)
}

// RemoveMember removes a server from the cluster (through the leader). An
// id that is not a member is errcode.ErrNotMember.
func (n *Node) RemoveMember(ctx context.Context, id string) error {
	if err := ValidateMemberID(id); err != nil {
		return err
	}
	if n.raft.State() == raft.Leader {
		return n.removeLocal(id)
	}
	addr, err := n.waitLeader(ctx)
	if err != nil {
		return err
	}
	return n.peerCall(ctx, addr, http.MethodDelete, "/peer/v1/members/"+id, nil)
}

// addLocal adds m on the leader, or passes it on to the leader. A server
// asking for itself with JoinKept that is still a member is left as it is;
// one asking with JoinEmpty whose id is a voter has lost the state that
// voter had: its stale entry is removed (and committed) before it is added
// again, so its forgotten votes can never count (docs/api.md, Membership).
func (n *Node) addLocal(m MemberRequest) error {
	if err := validateMember(m); err != nil {
		return err
	}
	if m.Join != "" && m.ID == n.cfg.NodeID {
		// A server asked itself (a Service that reaches any pod): let it
		// ask another one.
		return errNotLeader
	}
	if n.raft.State() != raft.Leader {
		// A joining node may ask any member: pass it on.
		ctx, cancel := context.WithTimeout(context.Background(), n.cfg.ApplyTimeout)
		defer cancel()
		addr, err := n.waitLeader(ctx)
		if err != nil {
			return err
		}
		if addr == n.cfg.PeerAdvertise {
			return errNotLeader
		}
		return n.peerCall(ctx, addr, http.MethodPost, "/peer/v1/members", m)
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
		case m.Join == JoinKept:
			return nil // still a member, with its state: nothing to change
		case m.Join == JoinEmpty && s.Suffrage == raft.Voter:
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
	if m.Voter {
		f = n.raft.AddVoter(raft.ServerID(m.ID), raft.ServerAddress(m.Address), 0, n.cfg.ApplyTimeout)
	} else {
		f = n.raft.AddNonvoter(raft.ServerID(m.ID), raft.ServerAddress(m.Address), 0, n.cfg.ApplyTimeout)
	}
	if err := f.Error(); err != nil {
		return fmt.Errorf("add %s: %w", m.ID, mapMembershipErr(err))
	}
	n.cfg.Logger.Info("member added", "id", m.ID, "address", m.Address, "voter", m.Voter, "join", m.Join)
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

// peerCall sends a JSON request to a peer's API and maps its error.
func (n *Node) peerCall(ctx context.Context, peer, method, path string, body any) error {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return err
		}
		rd = bytes.NewReader(b)
	}
	ctx, cancel := context.WithTimeout(ctx, n.cfg.ApplyTimeout+time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, "http://"+peer+path, rd)
	if err != nil {
		return err
	}
	resp, err := n.client.Do(req)
	if err != nil {
		return fmt.Errorf("%s %s: %w: %w", method, peer, err, store.ErrNoQuorum)
	}
	defer resp.Body.Close()
	if resp.StatusCode == http.StatusOK {
		return nil
	}
	var pe peerError
	if err := json.NewDecoder(resp.Body).Decode(&pe); err != nil {
		return fmt.Errorf("%s %s: %s: %w", method, peer, resp.Status, store.ErrOutcomeUnknown)
	}
	return membershipErrorFromWire(pe)
}

// membershipErrorFromWire turns a peer's answer to a membership call back
// into the error the leader raised: the same sentinel (errcode's table), so
// the client gets the leader's status and code from any node. The peer-only
// not_leader stays errNotLeader; a code outside the table (a 500 on the
// leader) stays an internal error.
func membershipErrorFromWire(pe peerError) error {
	switch pe.Code {
	case "not_leader":
		return errNotLeader
	case "closed":
		return fmt.Errorf("leader: %s: %w", pe.Message, store.ErrNoQuorum)
	}
	if err := errcode.FromCode(pe.Code, pe.Message); err != nil {
		return err
	}
	return fmt.Errorf("leader: %s", pe.Message) // internal there, internal here
}
