package httpapi

import (
	"bufio"
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"kvstore.dev/kvstore/internal/auth"
	"kvstore.dev/kvstore/internal/store"
)

// smallBufListener shrinks the send buffer of every accepted connection, so
// a client that stops reading stalls the server after a few KiB rather than
// after the megabytes loopback buffers hold.
type smallBufListener struct{ net.Listener }

func (l smallBufListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if tc, ok := c.(*net.TCPConn); ok {
		_ = tc.SetWriteBuffer(4096)
	}
	return c, err
}

// newSnapshotServer serves the API with lim on a real loopback listener
// over a store holding about 2 MiB.
func newSnapshotServer(t *testing.T, lim SnapshotLimits) (*httptest.Server, *store.Store) {
	t.Helper()
	b, _ := mustBackend(t, store.Options{})
	cmds := make([]store.Command, 128)
	for i := range cmds {
		cmds[i] = store.Command{Op: store.OpPut, Key: "big/" + strings.Repeat("k", i+1), Value: make([]byte, 16<<10)}
	}
	if _, err := b.Propose(context.Background(), cmds...); err != nil {
		t.Fatal(err)
	}
	a := auth.NewAuthenticator([]auth.Principal{auth.NewPrincipal("admin", auth.RoleAdmin, nil, auth.Digest(adminToken))})
	api := New(b, a, Options{
		MaxKeyBytes: 1024, MaxValueBytes: 1024, Version: "test", Snapshot: lim,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	srv := httptest.NewUnstartedServer(api)
	srv.Listener = smallBufListener{srv.Listener}
	srv.Start()
	t.Cleanup(func() {
		api.BeginShutdown()
		srv.CloseClientConnections()
		srv.Close()
	})
	return srv, b.Store
}

// stallSnapshot starts a snapshot download on a connection with a small
// receive buffer, reads the response header and then stops reading.
func stallSnapshot(t *testing.T, srv *httptest.Server) (net.Conn, *http.Response) {
	t.Helper()
	d := net.Dialer{Control: func(_, _ string, rc syscall.RawConn) error {
		return rc.Control(func(fd uintptr) { _ = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 4096) })
	}}
	conn, err := d.Dial("tcp", srv.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	if _, err := io.WriteString(conn, "GET /api/v1/snapshot HTTP/1.1\r\nHost: kvstore\r\nAuthorization: Bearer "+adminToken+"\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReaderSize(conn, 512), nil)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("stalled snapshot: %s", resp.Status)
	}
	return conn, resp
}

func getSnapshot(t *testing.T, srv *httptest.Server) (*http.Response, []byte, error) {
	t.Helper()
	r, _ := http.NewRequest("GET", srv.URL+"/api/v1/snapshot", nil)
	r.Header.Set("Authorization", "Bearer "+adminToken)
	resp, err := srv.Client().Do(r)
	if err != nil {
		return nil, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp, b, err
}

// TestSnapshotStreamsAreBounded: while max_concurrent streams run, one more
// is 429 too_many_requests with Retry-After; a client that stops reading
// is cut off after the stall timeout, which frees its slot (and its read
// transaction), and writes and flushes go on.
func TestSnapshotStreamsAreBounded(t *testing.T) {
	t.Run("one more is 429", func(t *testing.T) {
		srv, _ := newSnapshotServer(t, SnapshotLimits{MaxConcurrent: 1, StallTimeout: time.Minute})
		conn, _ := stallSnapshot(t, srv)
		resp, body, err := getSnapshot(t, srv)
		if err != nil {
			t.Fatal(err)
		}
		if resp.StatusCode != http.StatusTooManyRequests || resp.Header.Get("Retry-After") == "" || !strings.Contains(string(body), `"code":"too_many_requests"`) {
			t.Fatalf("second snapshot: %s, Retry-After %q, %s", resp.Status, resp.Header.Get("Retry-After"), truncate(string(body), 200))
		}
		conn.Close() // the client goes away: its slot is freed
		pollUntil(t, "a snapshot after the first client left", func() bool {
			resp, _, err := getSnapshot(t, srv)
			return err == nil && resp.StatusCode == http.StatusOK
		})
	})
	t.Run("a stalled client is cut off", func(t *testing.T) {
		srv, st := newSnapshotServer(t, SnapshotLimits{MaxConcurrent: 1, MinBytesPerSecond: 64 << 10, StallTimeout: 200 * time.Millisecond})
		_, stalled := stallSnapshot(t, srv)
		// The slot comes free only when the stalled stream has ended.
		var full []byte
		pollUntil(t, "a snapshot while a client has stopped reading", func() bool {
			resp, b, err := getSnapshot(t, srv)
			full = b
			return err == nil && resp.StatusCode == http.StatusOK
		})
		if _, err := store.Verify(writeTemp(t, full)); err != nil {
			t.Fatalf("the snapshot after the cut-off is not sound: %v", err)
		}
		if err := st.Flush(); err != nil {
			t.Fatalf("flush after the cut-off: %v", err)
		}
		// The stalled client, reading again, finds its stream cut short.
		got, err := io.ReadAll(stalled.Body)
		if err == nil {
			t.Fatalf("the stalled client received the whole snapshot (%d bytes): it was never cut off", len(got))
		}
		if len(got) >= len(full) {
			t.Errorf("stalled client got %d of %d bytes", len(got), len(full))
		}
	})
}

func writeTemp(t *testing.T, b []byte) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "snap.db")
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// pollUntil polls cond until it holds, failing the test after 20 s.
func pollUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within 20s", what)
		}
		<-time.After(20 * time.Millisecond)
	}
}
