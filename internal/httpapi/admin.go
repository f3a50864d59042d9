package httpapi

import (
	"fmt"
	"net/http"
	"time"

	"kvstore.dev/kvstore/internal/auth"
)

// statusResponse is GET /api/v1/status for every token: the server's
// version, the store revision (which every list and watch also reports) and
// the uptime. The store-wide numbers are in adminStatusResponse only, since a
// token limited to some prefixes must not learn how many keys, bytes or
// watchers there are outside them.
type statusResponse struct {
	Version       string    `json:"version"`
	Revision      uint64    `json:"revision"`
	StartedAt     time.Time `json:"started_at"`
	UptimeSeconds float64   `json:"uptime_seconds"`
}

// adminStatusResponse is GET /api/v1/status for an admin token.
type adminStatusResponse struct {
	statusResponse
	AppliedIndex uint64 `json:"applied_index"`
	Keys         int64  `json:"keys"`
	DBSizeBytes  int64  `json:"db_size_bytes"`
	Watchers     int    `json:"watchers"`
}

func (s *Server) status(w http.ResponseWriter, r *http.Request, p *auth.Principal) error {
	st := s.backend.Status()
	out := statusResponse{
		Version:       s.opts.Version,
		Revision:      st.Revision,
		StartedAt:     s.started.UTC(),
		UptimeSeconds: s.clock().Sub(s.started).Seconds(),
	}
	if !p.CanAdmin() {
		writeJSON(w, http.StatusOK, out)
		return nil
	}
	writeJSON(w, http.StatusOK, adminStatusResponse{
		statusResponse: out,
		AppliedIndex:   st.AppliedIndex,
		Keys:           st.Keys,
		DBSizeBytes:    st.DBSizeBytes,
		Watchers:       st.Watchers,
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
