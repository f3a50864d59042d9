// Package inprocess runs a whole server (internal/server.Run) in the test's
// process. It is apart from package harness so that the unit tests of the
// packages the server is built from can import harness without a cycle.
package inprocess

import (
	"context"
	"net"
	"testing"
	"time"

	"kvstore.dev/kvstore/internal/config"
	"kvstore.dev/kvstore/internal/server"
	"kvstore.dev/kvstore/internal/testlog"
)

// Server is a server run by server.Run in the test's process.
type Server struct {
	URL  string          // "http://" (or "https://" with api.tls) + the API's address
	Logs *testlog.Buffer // the server's log
}

// Start runs server.Run with cfg, after Validate, and returns once
// the API listens. cfg.DataDir, when empty or config.Default's, becomes a
// new t.TempDir(). The server is
// stopped when the test ends, which fails if Run returns an error or does
// not return within 20s; a failed test prints the server's log.
func Start(t testing.TB, cfg config.Config) *Server {
	t.Helper()
	if cfg.DataDir == "" || cfg.DataDir == config.Default().DataDir {
		cfg.DataDir = t.TempDir()
	}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	s := &Server{Logs: &testlog.Buffer{}}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	ready := make(chan string, 1)
	go func() {
		done <- server.Run(ctx, cfg, server.NewLogger(cfg.Log, s.Logs), func(api, _ net.Addr) { ready <- api.String() })
	}()
	select {
	case addr := <-ready:
		s.URL = "http://" + addr
		if cfg.API.TLS.Enabled() {
			s.URL = "https://" + addr
		}
	case err := <-done:
		cancel()
		t.Fatalf("server.Run: %v\n%s", err, s.Logs)
	case <-time.After(10 * time.Second):
		cancel()
		t.Fatalf("server not ready after 10s\n%s", s.Logs)
	}
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("server.Run returned %v", err)
			}
		case <-time.After(20 * time.Second):
			t.Error("server did not stop")
		}
		if t.Failed() {
			t.Logf("server log:\n%s", s.Logs)
		}
	})
	return s
}
