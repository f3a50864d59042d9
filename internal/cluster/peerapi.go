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
			writePeerError(w, err)
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
}

// ErrNotMember is a removal of an ID not in the configuration.
var ErrNotMember = errors.New("not a member")

// askJoin asks the node at peer to add this node, as a voter unless
// JoinAsNonvoter (it forwards to its leader).
func (n *Node) askJoin(ctx context.Context, peer string) error {
	return n.peerCall(ctx, peer, http.MethodPost, "/peer/v1/members",
		MemberRequest{ID: n.cfg.NodeID, Address: n.cfg.PeerAdvertise, Voter: !n.cfg.JoinAsNonvoter})
}

// AddMember adds a server to the cluster (through the leader).
func (n *Node) AddMember(ctx context.Context, m MemberRequest) error {
	if m.ID == "" || m.Address == "" {
		return errors.New("member id and address are required")
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

// RemoveMember removes a server from the cluster (through the leader).
func (n *Node) RemoveMember(ctx context.Context, id string) error {
	if n.raft.State() == raft.Leader {
		return n.removeLocal(id)
	}
	addr, err := n.waitLeader(ctx)
	if err != nil {
		return err
	}
	return n.peerCall(ctx, addr, http.MethodDelete, "/peer/v1/members/"+id, nil)
}

func (n *Node) addLocal(m MemberRequest) error {
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
	var f raft.IndexFuture
	if m.Voter {
		f = n.raft.AddVoter(raft.ServerID(m.ID), raft.ServerAddress(m.Address), 0, n.cfg.ApplyTimeout)
	} else {
		f = n.raft.AddNonvoter(raft.ServerID(m.ID), raft.ServerAddress(m.Address), 0, n.cfg.ApplyTimeout)
	}
	if err := f.Error(); err != nil {
		return fmt.Errorf("add %s: %w", m.ID, mapMembershipErr(err))
	}
	n.cfg.Logger.Info("member added", "id", m.ID, "address", m.Address, "voter", m.Voter)
	return nil
}

func (n *Node) removeLocal(id string) error {
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
	_ = json.NewDecoder(resp.Body).Decode(&pe)
	if pe.Code == "internal" && pe.Message != "" {
		return errors.New(pe.Message)
	}
	return errorFromWire(pe)
}
