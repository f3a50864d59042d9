package httpapi

import (
	"fmt"
	"io"
	"net/http"
	"time"

	"kvstore.dev/kvstore/internal/auth"
)

// SnapshotLimits bound the snapshot streams of GET /api/v1/snapshot. Each
// stream holds a bbolt read transaction until it ends, so a stalled client
// must not keep one open: every StallTimeout the client has to accept
// MinBytesPerSecond × StallTimeout bytes, or the connection is closed.
type SnapshotLimits struct {
	MaxConcurrent     int           // streams at once; one more is 429 (default 2)
	MinBytesPerSecond int64         // default 64 KiB/s
	StallTimeout      time.Duration // default 10s
}

func (l SnapshotLimits) withDefaults() SnapshotLimits {
	if l.MaxConcurrent <= 0 {
		l.MaxConcurrent = 2
	}
	if l.MinBytesPerSecond <= 0 {
		l.MinBytesPerSecond = 64 << 10
	}
	if l.StallTimeout <= 0 {
		l.StallTimeout = 10 * time.Second
	}
	return l
}

// snapshot streams a consistent copy of the database file (admin only).
// Restore it offline with `kvstore restore --from FILE --data-dir DIR`.
func (s *Server) snapshot(w http.ResponseWriter, r *http.Request, p *auth.Principal) error {
	if !p.CanAdmin() {
		return errWith(errForbidden, "token %q is not an admin token; snapshots need one", p.Name)
	}
	if r.Method != http.MethodHead {
		select {
		case s.snapshots <- struct{}{}:
			defer func() { <-s.snapshots }()
		default:
			return errWith(errTooManyRequests, "%d snapshots are being streamed already; retry when one has finished", cap(s.snapshots))
		}
	}
	st := s.backend.Status()
	h := w.Header()
	h.Set("Content-Type", "application/octet-stream")
	h.Set("Content-Disposition", fmt.Sprintf(`attachment; filename="kvstore-%d.db"`, st.Revision))
	if r.Method == http.MethodHead {
		return nil
	}
	lim := s.opts.Snapshot
	pw := &pacedWriter{w: w, rc: http.NewResponseController(w), window: lim.StallTimeout,
		chunk: lim.MinBytesPerSecond * int64(lim.StallTimeout) / int64(time.Second)}
	if _, err := s.backend.WriteSnapshot(pw); err != nil {
		// Headers are gone; the client sees a truncated body, the log says why.
		s.log.ErrorContext(r.Context(), "snapshot failed", "request_id", requestID(r.Context()), "err", err)
		panic(http.ErrAbortHandler)
	}
	return nil
}

// pacedWriter enforces a minimum throughput on a response: the connection's
// write deadline is window from now at the start and again after every
// chunk bytes, so a client that accepts fewer than chunk bytes in a window
// gets a write error (and the stream's read transaction ends). It replaces
// the server's whole-response write timeout, which a large file may exceed.
type pacedWriter struct {
	w      io.Writer
	rc     *http.ResponseController
	window time.Duration
	chunk  int64
	left   int64 // bytes until the next renewal; 0: renew now
}

func (p *pacedWriter) Write(b []byte) (int, error) {
	var n int
	for len(b) > 0 {
		if p.left <= 0 {
			if err := p.rc.SetWriteDeadline(time.Now().Add(p.window)); err != nil {
				return n, fmt.Errorf("set write deadline: %w", err)
			}
			p.left = p.chunk
		}
		part := b[:min(int64(len(b)), p.left)]
		m, err := p.w.Write(part)
		n += m
		p.left -= int64(m)
		if err != nil {
			return n, err
		}
		b = b[m:]
	}
	return n, nil
}
