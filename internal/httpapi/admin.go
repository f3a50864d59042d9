package httpapi

import (
	"fmt"
	"net/http"

	"kvstore.dev/kvstore/internal/auth"
	"kvstore.dev/kvstore/wire"
)

// status is GET /api/v1/status: wire.Status for every token, and
// wire.AdminStatus, with the store-wide numbers, for an admin token only,
// since a token limited to some prefixes must not learn how many keys,
// bytes or watchers there are outside them.
func (s *Server) status(w http.ResponseWriter, r *http.Request, p *auth.Principal) error {
	st := s.backend.Status()
	out := wire.Status{
		Version:       s.opts.Version,
		Revision:      st.Revision,
		StartedAt:     s.started.UTC(),
		UptimeSeconds: s.clock().Sub(s.started).Seconds(),
	}
	if !p.CanAdmin() {
		writeJSON(w, http.StatusOK, out)
		return nil
	}
	writeJSON(w, http.StatusOK, wire.AdminStatus{
		Status:       out,
		AppliedIndex: st.AppliedIndex,
		Keys:         st.Keys,
		DBSizeBytes:  st.DBSizeBytes,
		Watchers:     st.Watchers,
	})
	return nil
}

func (s *Server) healthz(w http.ResponseWriter, _ *http.Request, _ *auth.Principal) error {
	writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	return nil
}

func (s *Server) readyz(w http.ResponseWriter, _ *http.Request, _ *auth.Principal) error {
	select {
	case <-s.shutdown:
		return errWith(errUnavailable, "shutting down")
	default:
	}
	if err := s.backend.Ready(); err != nil {
		return fmt.Errorf("%w: store not ready: %w", errUnavailable, err)
	}
	writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	return nil
}
