package httpapi

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"kvstore.dev/kvstore/internal/auth"
	"kvstore.dev/kvstore/internal/store"
	"kvstore.dev/kvstore/wire"
)

// watch streams changes under a prefix as Server-Sent Events. It resumes
// after the revision in Last-Event-ID (sent by a reconnecting EventSource) or
// the since parameter, replaying what the store still holds; older history
// answers 410 compacted. The stream ends when the server shuts down or the
// client falls too far behind; a client then reconnects with Last-Event-ID.
func (s *Server) watch(w http.ResponseWriter, r *http.Request, p *auth.Principal) error {
	if hasBody(r) {
		return errWith(errInvalidArgument, "a %s request must not have a body", r.Method)
	}
	prefix, err := s.prefixParam(r, p, auth.Read)
	if err != nil {
		return err
	}
	var since uint64
	resume := false
	for _, src := range []struct{ name, v string }{
		{"Last-Event-ID", r.Header.Get("Last-Event-ID")},
		{"since", r.URL.Query().Get("since")},
	} {
		if src.v == "" {
			continue
		}
		if since, err = strconv.ParseUint(src.v, 10, 64); err != nil {
			return errWith(errInvalidArgument, "%s must be a revision number, got %q", src.name, truncate(src.v, 32))
		}
		resume = true
		break
	}
	if err := s.watches.acquire(p.Name); err != nil {
		return err
	}
	defer s.watches.release(p.Name)
	replay, sub, err := s.backend.Subscribe(prefix, since, resume)
	if err != nil {
		return err
	}
	defer sub.Close()

	rc := http.NewResponseController(w)
	// The stream outlives the server's read and write timeouts; each write
	// gets its own deadline instead.
	_ = rc.SetReadDeadline(time.Time{})
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)

	send := func(chunk []byte) error {
		_ = rc.SetWriteDeadline(time.Now().Add(s.opts.WriteTimeout))
		if _, err := w.Write(chunk); err != nil {
			return err
		}
		return rc.Flush()
	}
	if err := send(fmt.Appendf(nil, "retry: 1000\n: watching prefix=%q from revision %d\n\n", prefix, s.backend.Status().Revision)); err != nil {
		return nil
	}
	for _, e := range replay {
		if err := send(sseEvent(e)); err != nil {
			return nil
		}
	}
	var batch []store.Event // what the last Take returned, handed back to the next
	var chunk []byte
	heartbeat := time.NewTicker(s.opts.Heartbeat)
	defer heartbeat.Stop()
	for {
		select {
		case <-sub.Ready():
			batch = sub.Take(batch)
			chunk = chunk[:0]
			for _, e := range batch {
				chunk = append(chunk, sseEvent(e)...)
			}
			if len(chunk) == 0 {
				continue
			}
			if err := send(chunk); err != nil {
				return nil
			}
			if cap(chunk) > 64<<10 {
				chunk = nil // release a burst's buffer
			}
		case <-heartbeat.C:
			if err := send([]byte(": heartbeat\n\n")); err != nil {
				return nil
			}
		case <-sub.Done():
			if errors.Is(sub.Err(), store.ErrLagged) {
				_ = send([]byte(": watcher fell behind; reconnect with Last-Event-ID\n\n"))
			}
			return nil
		case <-s.shutdown:
			_ = send([]byte(": server shutting down\n\n"))
			return nil
		case <-r.Context().Done():
			return nil
		}
	}
}

func sseEvent(e store.Event) []byte {
	data, _ := json.Marshal(wire.WatchEvent{Type: string(e.Type), Key: e.Key, Revision: e.Revision, Value: e.Value, ContentType: e.ContentType})
	return fmt.Appendf(nil, "id: %d\ndata: %s\n\n", e.Revision, data)
}
