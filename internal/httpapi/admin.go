package httpapi

import (
	"fmt"
	"net/http"
	"time"

	"kvstore.dev/kvstore/internal/auth"
)

type statusResponse struct {
	Version       string    `json:"version"`
	Revision      uint64    `json:"revision"`
	AppliedIndex  uint64    `json:"applied_index"`
	Keys          int64     `json:"keys"`
	DBSizeBytes   int64     `json:"db_size_bytes"`
	Watchers      int       `json:"watchers"`
	StartedAt     time.Time `json:"started_at"`
	UptimeSeconds float64   `json:"uptime_seconds"`
}

func (s *Server) status(w http.ResponseWriter, r *http.Request, _ *auth.Principal) error {
	st := s.backend.Status()
	writeJSON(w, http.StatusOK, statusResponse{
		Version:       s.opts.Version,
		Revision:      st.Revision,
		AppliedIndex:  st.AppliedIndex,
		Keys:          st.Keys,
		DBSizeBytes:   st.DBSizeBytes,
		Watchers:      st.Watchers,
		StartedAt:     s.started.UTC(),
		UptimeSeconds: s.clock().Sub(s.started).Seconds(),
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
