package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"
)

// bareCommand is the hidden subcommand that runs the bare HTTP server.
const bareCommand = "bare-http"

// runBare serves a constant body of -value-size bytes to every request on
// -listen until SIGTERM or SIGINT. It is the ceiling any Go HTTP server
// can reach on this machine and runs in its own process so it does not
// share the load generator's scheduler and heap.
func runBare(args []string) error {
	fs := flag.NewFlagSet(bareCommand, flag.ContinueOnError)
	listen := fs.String("listen", "127.0.0.1:0", "address to listen on")
	size := fs.Int("value-size", 256, "size of the constant response body in bytes")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *size < 0 {
		return fmt.Errorf("bare-http: negative -value-size %d", *size)
	}
	body := bytes.Repeat([]byte{'v'}, *size)
	handler := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body) // PUTs carry a value; consume it like a real server
		w.Header().Set("Content-Type", "application/octet-stream")
		_, _ = w.Write(body)
	})
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		return fmt.Errorf("bare-http: listen: %w", err)
	}
	if err := serveUntilSignal(&http.Server{Handler: handler, ReadHeaderTimeout: 10 * time.Second}, ln); err != nil {
		return fmt.Errorf("bare-http: %w", err)
	}
	return nil
}

// serveUntilSignal serves srv on ln until SIGTERM or SIGINT, then shuts
// it down within 5s: the life of kvbench's child servers.
func serveUntilSignal(srv *http.Server, ln net.Listener) error {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		return fmt.Errorf("shutdown: %w", err)
	}
	if err := <-errc; !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("serve: %w", err)
	}
	return nil
}
