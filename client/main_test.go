package client_test

import (
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"testing"
	"time"

	"kvstore.dev/kvstore/internal/config"
	kvserver "kvstore.dev/kvstore/internal/server"
)

// exampleURL and exampleToken are the server the Examples talk to, run by
// TestMain in this process (bbolt in a temporary directory).
var exampleURL, exampleToken = "", "example-admin-token-0123456789"

func TestMain(m *testing.M) {
	stop, err := startExampleServer()
	if err != nil {
		fmt.Fprintln(os.Stderr, "starting the examples' server:", err)
		os.Exit(1)
	}
	code := m.Run()
	stop()
	os.Exit(code)
}

func startExampleServer() (stop func(), err error) {
	dir, err := os.MkdirTemp("", "kvstore-client-example-")
	if err != nil {
		return nil, err
	}
	cfg := config.Default()
	cfg.Listen, cfg.DebugListen, cfg.DataDir = "127.0.0.1:0", "", dir
	cfg.Console.Enabled = false
	cfg.Auth.Tokens = []config.Token{{Name: "admin", Token: exampleToken, Role: "admin"}}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	ready, done := make(chan string, 1), make(chan error, 1)
	go func() {
		done <- kvserver.Run(ctx, cfg, kvserver.NewLogger(cfg.Log, io.Discard), func(api, _ net.Addr) { ready <- api.String() })
	}()
	stop = func() {
		cancel()
		<-done
		os.RemoveAll(dir)
	}
	select {
	case addr := <-ready:
		exampleURL = "http://" + addr
		return stop, nil
	case err := <-done:
		cancel()
		os.RemoveAll(dir)
		return nil, err
	case <-time.After(30 * time.Second):
		stop()
		return nil, fmt.Errorf("not ready after 30s")
	}
}
