// Package server assembles a running kvstore node from its configuration:
// the store and its write path (a Raft node, a one-server cluster of its
// own without cluster mode: backend.go; a data dir of the former
// single-node WAL is replayed once: legacywal.go), the TTL sweeper, the
// API and debug listeners (the API speaking HTTP/1.1 and HTTP/2: http2.go;
// optionally over TLS, its certificate
// re-read when it changes, and the tokens re-read from their files:
// security.go), and an orderly shutdown (hand off Raft
// leadership, stop accepting, drain requests, end watches, commit what is
// queued, close the database). Restore is the offline restore; a recovery
// from a lost quorum requested through the API restarts the server and
// runs at its next start (recovery.go).
package server

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"

	"golang.org/x/net/netutil"

	"kvstore.dev/kvstore/internal/auth"
	"kvstore.dev/kvstore/internal/config"
	"kvstore.dev/kvstore/internal/httpapi"
	"kvstore.dev/kvstore/internal/metrics"
	"kvstore.dev/kvstore/internal/store"
	"kvstore.dev/kvstore/web"
	"kvstore.dev/kvstore/wire"
)

// Version is the server's version, set at build time with
// -ldflags "-X kvstore.dev/kvstore/internal/server.Version=...".
var Version = "dev"

// NewLogger returns the structured logger cfg asks for, writing to w.
func NewLogger(cfg config.Log, w io.Writer) *slog.Logger {
	var level slog.Level
	_ = level.UnmarshalText([]byte(cfg.Level))
	opts := &slog.HandlerOptions{Level: level}
	if cfg.Format == "text" {
		return slog.New(slog.NewTextHandler(w, opts))
	}
	return slog.New(slog.NewJSONHandler(w, opts))
}

// Run serves until ctx is cancelled, then shuts down gracefully. It returns
// once the database is closed. ready, if not nil, is called with the bound
// addresses once both listeners accept connections.
func Run(ctx context.Context, cfg config.Config, log *slog.Logger, ready func(api, debug net.Addr)) error {
	if _, err := cfg.Principals(); err != nil { // before any I/O of ours
		return err
	}
	tlsConfig, err := apiTLS(cfg.API.TLS, log)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return fmt.Errorf("data_dir: %w", err)
	}
	ps, err := principals(&cfg, log)
	if err != nil {
		return err
	}
	authn := auth.NewAuthenticator(ps)

	// The API listener serves from the start, with httpapi.Starting until
	// the write path is up: joining a cluster, or a recovery, can take
	// minutes on a loaded machine, and such a server is alive (its
	// /healthz answers), not ready (its /readyz fails).
	apiLn, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	apiLn = netutil.LimitListener(apiLn, cfg.HTTP.MaxConnections)
	handler := &swapHandler{}
	handler.set(httpapi.Starting())
	apiSrv := &http.Server{
		Handler:           handler,
		ReadHeaderTimeout: cfg.HTTP.ReadHeaderTimeout.D(),
		ReadTimeout:       cfg.HTTP.ReadTimeout.D(),
		WriteTimeout:      cfg.HTTP.WriteTimeout.D(),
		IdleTimeout:       cfg.HTTP.IdleTimeout.D(),
		MaxHeaderBytes:    cfg.HTTP.MaxHeaderBytes,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
		TLSConfig:         tlsConfig,
		Protocols:         apiProtocols(),
		HTTP2:             apiHTTP2(),
	}
	var wg sync.WaitGroup
	serveErr := make(chan error, 2)
	serve := func(srv *http.Server, ln net.Listener) {
		wg.Go(func() {
			var err error
			if srv.TLSConfig != nil {
				err = srv.ServeTLS(ln, "", "") // the certificate comes from TLSConfig.GetCertificate
			} else {
				err = srv.Serve(ln)
			}
			if !errors.Is(err, http.ErrServerClosed) {
				serveErr <- err
			}
		})
	}
	serve(apiSrv, apiLn)
	log.Info("listening", "listener", "api", "addr", apiLn.Addr().String(), "tls", tlsConfig != nil)
	stopAPI := func() {
		apiSrv.Close()
		wg.Wait()
	}

	var rc *recoverer
	if cfg.Cluster.Enabled {
		// A recovery the API accepted runs now, before the store and Raft
		// are opened (recovery.go).
		if err := recoverOnStart(cfg, log); err != nil {
			stopAPI()
			return fmt.Errorf("recovery: %w", err)
		}
		rc = newRecoverer(cfg.DataDir, log)
	}
	var m *metrics.Metrics
	st, err := store.Open(filepath.Join(cfg.DataDir, store.DBFile), store.Options{
		WatchHistoryEvents: cfg.Watch.HistoryEvents,
		WatchHistoryBytes:  cfg.Watch.HistoryBytes,
		OnFlush:            func(s store.FlushStats) { m.ObserveFlush(s) },
	})
	if err != nil {
		stopAPI()
		return err
	}
	m = metrics.New(st.Status)

	be, err := openBackend(ctx, cfg, st, m, log)
	if err != nil {
		stopAPI()
		return errors.Join(err, st.Close())
	}
	status := st.Status()
	log.Info("store opened", "path", st.Path(), "revision", status.Revision, "keys", status.Keys)

	var console http.Handler
	if cfg.Console.Enabled {
		console = web.Handler()
	}
	var recoverFn func(wire.RecoverRequest, wire.NodeStatus) error
	var restart <-chan struct{} // nil without cluster mode: never ready
	if rc != nil {
		recoverFn, restart = rc.request, rc.restart
	}
	api := httpapi.New(be, authn, httpapi.Options{
		MaxKeyBytes:      cfg.Limits.MaxKeyBytes,
		MaxValueBytes:    cfg.Limits.MaxValueBytes,
		MaxListPageBytes: cfg.Limits.MaxListPageBytes,
		Heartbeat:        cfg.Watch.Heartbeat.D(),
		WriteTimeout:     cfg.HTTP.WriteTimeout.D(),
		Version:          Version,
		Logger:           log,
		Observer:         m,
		Console:          console,
		Recover:          recoverFn,
		Snapshot: httpapi.SnapshotLimits{
			MaxConcurrent: cfg.Snapshot.MaxConcurrent, MinBytesPerSecond: cfg.Snapshot.MinBytesPerSecond, StallTimeout: cfg.Snapshot.StallTimeout.D(),
		},
	})
	apiSrv.RegisterOnShutdown(api.BeginShutdown)
	handler.set(api)
	servers := []*http.Server{apiSrv}
	var debugAddr net.Addr
	if cfg.DebugListen != "" {
		debugLn, err := net.Listen("tcp", cfg.DebugListen)
		if err != nil {
			stopAPI()
			return errors.Join(fmt.Errorf("debug_listen: %w", err), be.Close())
		}
		debugAddr = debugLn.Addr()
		debugLn = netutil.LimitListener(debugLn, cfg.HTTP.MaxConnections)
		debugSrv := &http.Server{
			Handler:           debugMux(m, cfg.Pprof),
			ReadHeaderTimeout: cfg.HTTP.ReadHeaderTimeout.D(),
			IdleTimeout:       cfg.HTTP.IdleTimeout.D(),
			ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
		}
		servers = append(servers, debugSrv)
		serve(debugSrv, debugLn)
		log.Info("listening", "listener", "debug", "addr", debugAddr.String())
	}

	sweepCtx, stopSweep := context.WithCancel(context.Background())
	wg.Go(func() {
		(&store.Sweeper{Store: st, Proposer: be, Interval: cfg.TTL.SweepInterval.D(), Logger: log, Active: be.Sweeps}).Run(sweepCtx)
	})
	if cfg.Auth.Reloadable() {
		wg.Go(func() { reloadTokens(sweepCtx, &cfg, authn, log) })
	}
	if ready != nil {
		ready(apiLn.Addr(), debugAddr)
	}

	var runErr error
	select {
	case <-ctx.Done():
		log.Info("shutting down", "timeout", cfg.HTTP.ShutdownTimeout.D().String())
	case runErr = <-serveErr:
		log.Error("server failed; shutting down", "err", runErr)
	case <-restart:
		runErr = ErrRestartToRecover
		log.Warn("recovery request recorded; shutting down so that the next start carries it out", "timeout", cfg.HTTP.ShutdownTimeout.D().String())
	}
	// A leader first hands its leadership to another voter, while this
	// node still takes requests: writes arriving meanwhile wait a moment
	// and then go to the new leader, so clients see no election timeout.
	// (A single node's HandOff returns at once: no other voter.)
	api.BeginShutdown() // /readyz fails from now on
	if d := cfg.Cluster.HandoffTimeout.D(); d > 0 {
		hctx, hcancel := context.WithTimeout(context.Background(), d)
		if err := be.HandOff(hctx); err != nil {
			log.Warn("leadership hand-off failed; stopping as leader", "err", err)
		}
		hcancel()
	}
	shutdownCtx, cancel := context.WithTimeout(context.Background(), cfg.HTTP.ShutdownTimeout.D())
	defer cancel()
	for _, srv := range servers {
		if err := srv.Shutdown(shutdownCtx); err != nil {
			log.Warn("shutdown did not drain in time; closing connections", "err", err)
			srv.Close()
		}
	}
	stopSweep()
	wg.Wait()
	if err := be.Close(); err != nil {
		return errors.Join(runErr, err)
	}
	log.Info("stopped cleanly")
	return runErr
}

// swapHandler serves with the handler set last: httpapi.Starting, then the
// API.
type swapHandler struct{ h atomic.Pointer[http.Handler] }

func (s *swapHandler) set(h http.Handler) { s.h.Store(&h) }

func (s *swapHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	(*s.h.Load()).ServeHTTP(w, r)
}

// debugMux serves /metrics and, when withPprof, pprof; it is meant for a
// loopback or cluster-internal listener only.
func debugMux(m *metrics.Metrics, withPprof bool) http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", m.Handler())
	if !withPprof {
		return mux
	}
	mux.HandleFunc("GET /debug/pprof/", pprof.Index)
	mux.HandleFunc("GET /debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("GET /debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("GET /debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("GET /debug/pprof/trace", pprof.Trace)
	return mux
}
