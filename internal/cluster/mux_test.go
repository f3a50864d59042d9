package cluster

import (
	"bufio"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"kvstore.dev/kvstore/internal/testlog"
	"kvstore.dev/kvstore/test/harness"
)

const muxTestToken = "mux-test-peer-token"

// fakeClock is a clock that moves only when the test says so.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *fakeClock) add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// muxTestAuth is the token-only authentication of the test muxes.
var muxTestAuth = &peerAuth{token: []byte(muxTestToken)}

// startTestMux serves a peer mux on loopback with a peer HTTP server of h
// (nil: one that answers every request with 200 "ok"), logging into the
// returned buffer.
func startTestMux(t *testing.T, opts muxOptions, h http.Handler) (*peerMux, *testlog.Buffer) {
	t.Helper()
	return startTestMuxAuth(t, muxTestAuth, opts, h)
}

// startTestMuxAuth is startTestMux with the mux authenticating by auth.
func startTestMuxAuth(t *testing.T, auth *peerAuth, opts muxOptions, h http.Handler) (*peerMux, *testlog.Buffer) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	logs := &testlog.Buffer{}
	m := startPeerMux(ln, auth, ln.Addr(), slog.New(slog.NewTextHandler(logs, nil)), opts)
	if h == nil {
		h = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") })
	}
	srv := &http.Server{Handler: h}
	go func() { _ = srv.Serve(httpListener{m}) }()
	t.Cleanup(func() {
		m.close() // first: Serve returns only once the mux's Accept fails
		srv.Close()
	})
	return m, logs
}

// peerGet sends one request over an authenticated connection and reads the
// answer.
func peerGet(conn net.Conn, br *bufio.Reader) error {
	_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
	defer conn.SetDeadline(time.Time{})
	if _, err := fmt.Fprintf(conn, "GET /peer/v1/status HTTP/1.1\r\nHost: x\r\n\r\n"); err != nil {
		return err
	}
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 || string(body) != "ok" {
		return fmt.Errorf("peer answer %d %q", resp.StatusCode, body)
	}
	return nil
}

// closedByServer reports whether the server closed conn (EOF or a reset)
// rather than the read running into the test's deadline.
func closedByServer(conn net.Conn) error {
	_ = conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	var b [1]byte
	_, err := conn.Read(b[:])
	switch {
	case err == nil:
		return errors.New("the server sent a byte")
	case errors.Is(err, os.ErrDeadlineExceeded):
		return errors.New("still open after 10s")
	}
	return nil
}

// TestPeerMuxCapsUnauthenticated: connections that never start a handshake
// hold at most maxUnauthenticated places; the ones over it are closed at
// once, an authenticated peer's connection goes on working, and a place is
// free again once a silent connection goes.
func TestPeerMuxCapsUnauthenticated(t *testing.T) {
	const limit, extra = 4, 3
	clock := &fakeClock{t: time.Unix(1_000_000, 0)}
	m, logs := startTestMux(t, muxOptions{maxUnauthenticated: limit, handshakeTimeout: time.Hour, logEvery: 10 * time.Second, now: clock.now}, nil)
	addr := m.ln.Addr().String()

	peer, err := dial(addr, kindHTTP, muxTestAuth, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer peer.Close()
	peerBR := bufio.NewReader(peer)
	if err := peerGet(peer, peerBR); err != nil {
		t.Fatalf("authenticated peer before the flood: %v", err)
	}

	var silent []net.Conn
	for range limit {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		silent = append(silent, c)
	}
	harness.Eventually(t, "silent connections accepted", 10*time.Second, func() error {
		if n := len(m.unauth); n != limit {
			return fmt.Errorf("%d connections are in their handshake, want %d", n, limit)
		}
		return nil
	})
	for i := range extra {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		if err := closedByServer(c); err != nil {
			t.Errorf("connection %d over the limit: %v", i, err)
		}
	}
	if err := peerGet(peer, peerBR); err != nil {
		t.Errorf("authenticated peer during the flood: %v", err)
	}
	if got := strings.Count(logs.String(), "too many connections"); got != 1 {
		t.Errorf("%d over-the-limit warnings for %d refusals at one instant, want 1:\n%s", got, extra, logs.String())
	}

	silent[0].Close()
	harness.Eventually(t, "a new peer after a silent connection went", 10*time.Second, func() error {
		c, err := dial(addr, kindHTTP, muxTestAuth, 5*time.Second)
		if err != nil {
			return err
		}
		defer c.Close()
		return peerGet(c, bufio.NewReader(c))
	})
}

// TestPeerMuxRateLimitsWrongTokenLog: many wrong answers within the
// interval make one warning; the next one after it says how many were held
// back.
func TestPeerMuxRateLimitsWrongTokenLog(t *testing.T) {
	const n = 5
	clock := &fakeClock{t: time.Unix(1_000_000, 0)}
	m, logs := startTestMux(t, muxOptions{maxUnauthenticated: 64, handshakeTimeout: time.Hour, logEvery: 10 * time.Second, now: clock.now}, nil)
	addr := m.ln.Addr().String()
	wrong := func() {
		t.Helper()
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		if err := answerChallenge(c, kindHTTP, []byte("not-the-token")); err != nil {
			t.Fatal(err)
		}
		if err := closedByServer(c); err != nil { // logged before the close
			t.Fatalf("wrong token: %v", err)
		}
	}
	warnings := func() []string {
		var out []string
		for l := range strings.Lines(logs.String()) {
			if strings.Contains(l, "wrong token") {
				out = append(out, l)
			}
		}
		return out
	}

	for range n {
		wrong()
	}
	if w := warnings(); len(w) != 1 || !strings.Contains(w[0], "suppressed=0") {
		t.Fatalf("after %d wrong tokens at one instant, warnings %q, want one with suppressed=0", n, w)
	}
	clock.add(10 * time.Second)
	wrong()
	w := warnings()
	if len(w) != 2 || !strings.Contains(w[1], fmt.Sprintf("suppressed=%d", n-1)) {
		t.Fatalf("after the interval, warnings %q, want a second one with suppressed=%d", w, n-1)
	}
}

// answerChallenge runs the client's side of the handshake over conn with
// token, without checking the server's proof (as an attacker would), and
// returns once the answer is sent.
func answerChallenge(conn net.Conn, kind byte, token []byte) error {
	_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
	defer conn.SetDeadline(time.Time{})
	nc := make([]byte, nonceLen)
	if _, err := conn.Write(append([]byte{handshakeVersion}, nc...)); err != nil {
		return err
	}
	msg := make([]byte, nonceLen+32)
	if _, err := io.ReadFull(conn, msg); err != nil {
		return fmt.Errorf("read the challenge: %w", err)
	}
	_, err := conn.Write(append([]byte{kind}, proof(token, clientLabel, nc, msg[:nonceLen], []byte{kind})...))
	return err
}

// recordingConn keeps a copy of everything written to it.
type recordingConn struct {
	net.Conn
	sent []byte
}

func (c *recordingConn) Write(b []byte) (int, error) {
	c.sent = append(c.sent, b...)
	return c.Conn.Write(b)
}

// TestPeerHandshakeReplayIsRefused: what a client sent to authenticate one
// connection (captured off the wire) does not authenticate another, and
// neither does the former constant preamble (a kind byte and the token's
// SHA-256).
func TestPeerHandshakeReplayIsRefused(t *testing.T) {
	m, logs := startTestMux(t, defaultMuxOptions(), nil)
	addr := m.ln.Addr().String()

	raw, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	rec := &recordingConn{Conn: raw}
	conn, err := muxTestAuth.clientHandshake(rec, kindHTTP, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	captured := append([]byte(nil), rec.sent...)
	if err := peerGet(conn, bufio.NewReader(conn)); err != nil {
		t.Fatalf("the captured connection: %v", err)
	}

	digest := sha256.Sum256([]byte(muxTestToken))
	for name, sent := range map[string][]byte{
		"replayed handshake": captured,
		"constant preamble":  append([]byte{kindHTTP}, digest[:]...),
	} {
		t.Run(name, func(t *testing.T) {
			c, err := net.Dial("tcp", addr)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			_ = c.SetDeadline(time.Now().Add(10 * time.Second))
			if _, err := c.Write(sent); err != nil {
				t.Fatal(err)
			}
			if _, err := io.ReadFull(c, make([]byte, nonceLen+sha256.Size)); err != nil {
				if errors.Is(err, os.ErrDeadlineExceeded) {
					t.Fatalf("read the challenge: %v", err)
				}
				return // closed before the challenge: refused
			}
			fmt.Fprintf(c, "GET /peer/v1/status HTTP/1.1\r\nHost: x\r\n\r\n")
			if err := closedByServer(c); err != nil {
				t.Fatalf("%s: %v", name, err)
			}
		})
	}
	if !strings.Contains(logs.String(), "wrong token") {
		t.Errorf("no refusal logged:\n%s", logs)
	}
}
