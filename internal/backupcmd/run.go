// Package backupcmd is the `kvstore backup` subcommand: it takes a
// snapshot from a running server (GET /api/v1/snapshot with an admin
// token), streams it to a destination of package backup, and applies the
// retention; once, or on a cron schedule while serving Prometheus metrics.
// A failure is loud: logged at error, counted in
// kvstore_backup_failures_total, and in run-once mode the exit status.
package backupcmd

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"

	"kvstore.dev/kvstore/internal/backup"
	"kvstore.dev/kvstore/internal/server"
)

// Run parses args (see Load) and backs up once, or on the schedule until
// ctx is done. ready, when not nil, is called with the metrics listener's
// address once it listens (scheduled mode with metrics_listen).
func Run(ctx context.Context, args []string, getenv func(string) string, stderr io.Writer, ready func(metrics net.Addr)) error {
	cfg, err := Load(args, getenv, stderr)
	if err != nil {
		return err
	}
	log := server.NewLogger(cfg.Log, stderr).With("component", "backup")
	if cfg.Schedule == "" {
		return once(ctx, cfg, getenv, log)
	}
	r, err := NewRunner(cfg, getenv, log)
	if err != nil {
		return fmt.Errorf("backup: %w", err)
	}
	sched, _ := cronParser.Parse(cfg.Schedule) // Validate parsed it
	log.InfoContext(ctx, "backup schedule", "schedule", cfg.Schedule, "destination", r.Dest.URI(),
		"retention", r.Retention.String(), "suspend", cfg.Suspend)
	r.LoadLast(ctx) // before /metrics answers
	if cfg.MetricsListen != "" {
		stop, err := serveMetrics(cfg.MetricsListen, r.Metrics, log, ready)
		if err != nil {
			return fmt.Errorf("backup: %w", err)
		}
		defer stop()
	}
	return r.Schedule(ctx, sched, cfg.Suspend)
}

// once takes one backup and, with result_file, writes its outcome there.
func once(ctx context.Context, cfg Config, getenv func(string) string, log *slog.Logger) error {
	var m backup.Manifest
	var pruned []backup.Manifest
	r, err := NewRunner(cfg, getenv, log)
	if err == nil {
		m, pruned, err = r.Once(ctx)
	}
	if cfg.ResultFile != "" {
		if werr := writeResult(cfg.ResultFile, backup.ResultOf(m, pruned, err)); werr != nil {
			log.ErrorContext(ctx, "cannot write the result file", "path", cfg.ResultFile, "err", werr)
			err = errors.Join(err, werr)
		}
	}
	if err != nil {
		return fmt.Errorf("backup: %w", err)
	}
	return nil
}

// writeResult writes res to path in place: a termination message file is
// a mount point, which cannot be replaced by a rename.
func writeResult(path string, res backup.Result) error {
	if err := os.WriteFile(path, res.Encode(), 0o644); err != nil {
		return fmt.Errorf("result_file: %w", err)
	}
	return nil
}

// NewRunner builds the Runner of a validated configuration.
func NewRunner(cfg Config, getenv func(string) string, log *slog.Logger) (*Runner, error) {
	loc, err := backup.ParseURI(cfg.Destination)
	if err != nil {
		return nil, err
	}
	dest, err := backup.New(loc, cfg.S3)
	if err != nil {
		return nil, err
	}
	client, err := backup.NewSourceClient(cfg.ServerCAFile)
	if err != nil {
		return nil, err
	}
	return &Runner{
		Source: &backup.Source{URL: cfg.Server, Client: client, MaxBusyRetries: 30,
			Token: func() (string, error) { return cfg.Token(getenv) }},
		Dest:      dest,
		Retention: cfg.Retention.Retention(),
		Timeout:   cfg.Timeout.D(),
		MaxRate:   cfg.MaxBytesPerSecond(),
		Log:       log,
		Metrics:   NewMetrics(),
	}, nil
}

// serveMetrics serves GET /metrics on addr until stop is called.
func serveMetrics(addr string, m *Metrics, log *slog.Logger, ready func(net.Addr)) (stop func(), err error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("metrics_listen: %w", err)
	}
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(m.Registry, promhttp.HandlerOpts{}))
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second, ReadTimeout: 10 * time.Second,
		WriteTimeout: 30 * time.Second, IdleTimeout: time.Minute}
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error("metrics listener failed", "addr", ln.Addr().String(), "err", err)
		}
	}()
	log.Info("serving metrics", "addr", ln.Addr().String())
	if ready != nil {
		ready(ln.Addr())
	}
	return func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(ctx)
		<-done
	}, nil
}
