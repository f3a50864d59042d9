package httpapi

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"time"

	"kvstore.dev/kvstore/internal/auth"
	"kvstore.dev/kvstore/internal/errcode"
)

// ClusterBackend is what a replicated backend adds: read barriers for the
// ?consistency= levels, and the cluster's status and membership. A Backend
// that does not implement it is a single node: every read is local and
// already linearizable, and the cluster endpoints describe one node.
type ClusterBackend interface {
	// ReadBarrier returns once a local read is as consistent as level
	// ("linearizable", "leader", "stale") asks, with how long ago this node
	// heard from the leader.
	ReadBarrier(ctx context.Context, level string) (time.Duration, error)
	ClusterStatus(ctx context.Context) (any, error)
	AddMember(ctx context.Context, id, address string, voter bool) error
	RemoveMember(ctx context.Context, id string) error
}

// errNotClustered answers membership changes on a single node.
var errNotClustered = errcode.ErrNotClustered

// readBarrier applies the request's consistency level before a read.
func (s *Server) readBarrier(w http.ResponseWriter, r *http.Request) error {
	level := r.URL.Query().Get("consistency")
	switch level {
	case "", "linearizable", "leader", "stale":
	default:
		return errWith(errInvalidArgument, "consistency %q: want linearizable (the default), leader or stale", truncate(level, 32))
	}
	cb, ok := s.backend.(ClusterBackend)
	if !ok {
		return nil
	}
	lc, err := cb.ReadBarrier(r.Context(), level)
	if err != nil {
		return err
	}
	if level == "stale" {
		v := "never"
		if lc >= 0 {
			v = lc.Round(time.Millisecond).String()
		}
		w.Header().Set("X-KV-Last-Contact", v)
	}
	return nil
}

// clusterStatus is GET /api/v1/cluster (admin only: it names every peer's
// address and log position; other tokens have /readyz and /api/v1/status).
func (s *Server) clusterStatus(w http.ResponseWriter, r *http.Request, p *auth.Principal) error {
	if !p.CanAdmin() {
		return errWith(errForbidden, "token %q is not an admin token; the cluster status needs one", p.Name)
	}
	cb, ok := s.backend.(ClusterBackend)
	if !ok {
		st := s.backend.Status()
		writeJSON(w, http.StatusOK, map[string]any{
			"enabled": false,
			"self":    map[string]any{"state": "Leader", "applied_index": st.AppliedIndex},
		})
		return nil
	}
	st, err := cb.ClusterStatus(r.Context())
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, st)
	return nil
}

// memberRequest is the body of POST /api/v1/cluster/members.
type memberRequest struct {
	ID      string `json:"id"`
	Address string `json:"address"`
	Voter   *bool  `json:"voter"`
}

func (s *Server) addMember(w http.ResponseWriter, r *http.Request, p *auth.Principal) error {
	if !p.CanAdmin() {
		return errWith(errForbidden, "token %q is not an admin token; membership changes need one", p.Name)
	}
	cb, ok := s.backend.(ClusterBackend)
	if !ok {
		return errWith(errNotClustered, "this server runs without cluster mode")
	}
	var m memberRequest
	dec := json.NewDecoder(io.LimitReader(r.Body, 1<<16))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&m); err != nil {
		return errWith(errInvalidArgument, "body: %v; want {\"id\": ..., \"address\": \"host:port\", \"voter\": true|false}", err)
	}
	voter := m.Voter == nil || *m.Voter
	if err := cb.AddMember(r.Context(), m.ID, m.Address, voter); err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, map[string]any{"id": m.ID, "address": m.Address, "voter": voter})
	return nil
}

func (s *Server) removeMember(w http.ResponseWriter, r *http.Request, p *auth.Principal) error {
	if !p.CanAdmin() {
		return errWith(errForbidden, "token %q is not an admin token; membership changes need one", p.Name)
	}
	cb, ok := s.backend.(ClusterBackend)
	if !ok {
		return errWith(errNotClustered, "this server runs without cluster mode")
	}
	id := r.PathValue("id")
	if err := cb.RemoveMember(r.Context(), id); err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, map[string]any{"removed": id})
	return nil
}
