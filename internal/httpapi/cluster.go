package httpapi

import (
	"encoding/json"
	"io"
	"net/http"
	"time"

	"kvstore.dev/kvstore/internal/auth"
	"kvstore.dev/kvstore/wire"
)

// readBarrier applies the request's consistency level before a read.
func (s *Server) readBarrier(w http.ResponseWriter, r *http.Request) error {
	level := r.URL.Query().Get("consistency")
	switch level {
	case "", "linearizable", "leader", "stale":
	default:
		return errWith(errInvalidArgument, "consistency %q: want linearizable (the default), leader or stale", truncate(level, 32))
	}
	lc, err := s.backend.ReadBarrier(r.Context(), level)
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
	st, err := s.backend.ClusterStatus(r.Context())
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, st)
	return nil
}

func (s *Server) addMember(w http.ResponseWriter, r *http.Request, p *auth.Principal) error {
	if !p.CanAdmin() {
		return errWith(errForbidden, "token %q is not an admin token; membership changes need one", p.Name)
	}
	var m wire.AddMemberRequest
	dec := json.NewDecoder(io.LimitReader(r.Body, 1<<16))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&m); err != nil {
		return errWith(errInvalidArgument, "body: %v; want {\"id\": ..., \"address\": \"host:port\", \"voter\": true|false}", err)
	}
	if m.Join != "" {
		return errWith(errInvalidArgument, "body: join is only for a server asking for itself (the peer API)")
	}
	if err := s.backend.AddMember(r.Context(), m); err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, wire.AddMemberResponse{ID: m.ID, Address: m.Address, Voter: m.IsVoter()})
	return nil
}

func (s *Server) removeMember(w http.ResponseWriter, r *http.Request, p *auth.Principal) error {
	if !p.CanAdmin() {
		return errWith(errForbidden, "token %q is not an admin token; membership changes need one", p.Name)
	}
	id := r.PathValue("id")
	if err := s.backend.RemoveMember(r.Context(), id); err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, wire.RemoveMemberResponse{Removed: id})
	return nil
}
