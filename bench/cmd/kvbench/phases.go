package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"kvstore.dev/kvstore/bench/internal/keyspace"
	"kvstore.dev/kvstore/bench/internal/load"
	"kvstore.dev/kvstore/bench/internal/procstat"
	"kvstore.dev/kvstore/bench/internal/report"
)

// maxErrorsPerPhase stops a phase early once a target is clearly broken.
const maxErrorsPerPhase = 1000

// runTarget starts a fresh instance of t, runs a PUT phase and then a GET
// phase over the keys just written, and records the server's peak RSS.
func runTarget(ctx context.Context, cfg *config, t target, clients int, dir string) (report.Row, error) {
	row := report.Row{Target: t.name, Clients: clients}
	srv, err := t.start(ctx, cfg, dir, clients)
	if err != nil {
		return row, err
	}
	defer closeOrWarn(srv)
	ks := keyspace.New(cfg.seed)
	lc := load.Config{Clients: clients, Duration: cfg.duration, MaxOps: cfg.maxOps, OpTimeout: cfg.opTimeout, MaxErrors: maxErrorsPerPhase}
	bg, err := procstat.StartBackground(os.Getpid(), srv.proc.PID())
	if err != nil {
		return row, err
	}

	put, err := load.Run(ctx, lc, putOp(srv.client, ks, cfg.valueSize))
	if err != nil {
		return row, fmt.Errorf("PUT phase: %w", err)
	}
	row.Put = put.Summary
	if put.Issued == 0 {
		return row, errors.New("PUT phase wrote no keys")
	}

	get, err := load.Run(ctx, lc, getOp(srv.client, ks, cfg.valueSize, put.Issued, t.verify))
	if err != nil {
		return row, fmt.Errorf("GET phase: %w", err)
	}
	row.Get = get.Summary
	if row.BackgroundCPU, err = bg.Stop(); err != nil {
		return row, err
	}

	mem, err := srv.proc.Memory()
	if err != nil {
		return row, err
	}
	row.PeakRSS = mem.PeakRSS
	return row, nil
}

// putOp returns per-client PUT operations writing key i with value i.
func putOp(c kvClient, ks keyspace.Space, valueSize int) func(int) load.Op {
	return func(int) load.Op {
		key := make([]byte, keyspace.KeySize)
		val := make([]byte, valueSize)
		return func(ctx context.Context, seq uint64) error {
			k := ks.Key(key, seq)
			ks.Value(val, seq)
			return c.Put(ctx, k, val)
		}
	}
}

// getOp returns per-client GET operations reading scattered keys among
// the first written ones and checking what comes back: the exact value
// when verify is set, otherwise only its length.
func getOp(c kvClient, ks keyspace.Space, valueSize int, written uint64, verify bool) func(int) load.Op {
	return func(int) load.Op {
		key := make([]byte, keyspace.KeySize)
		want := make([]byte, valueSize)
		buf := make([]byte, 0, valueSize+64)
		return func(ctx context.Context, seq uint64) error {
			i := keyspace.Pick(seq, written)
			k := ks.Key(key, i)
			got, err := c.Get(ctx, k, buf)
			if err != nil {
				return err
			}
			buf = got[:0] // keep a grown buffer
			if len(got) != valueSize {
				return fmt.Errorf("GET %s: got %d bytes, want %d", k, len(got), valueSize)
			}
			if verify {
				ks.Value(want, i)
				if !bytes.Equal(got, want) {
					return fmt.Errorf("GET %s: value differs from what was PUT", k)
				}
			}
			return nil
		}
	}
}

// loadCheckSample is how many loaded keys are read back after the bulk load.
const loadCheckSample = 1000

// runLoad loads cfg.loadValues values into a fresh kvstore and reports
// its peak RSS afterwards, then reads back a sample of keys.
func runLoad(ctx context.Context, cfg *config, dir string) (report.Load, error) {
	res := report.Load{Target: report.KVStore, Clients: cfg.loadClients, Want: cfg.loadValues}
	t, _ := findTarget(report.KVStore)
	srv, err := t.start(ctx, cfg, dir, cfg.loadClients)
	if err != nil {
		return res, err
	}
	defer closeOrWarn(srv)
	ks := keyspace.New(cfg.seed ^ 0x5bd1e995)
	lc := load.Config{Clients: cfg.loadClients, Duration: cfg.loadTimeout, MaxOps: cfg.loadValues, OpTimeout: cfg.opTimeout, MaxErrors: maxErrorsPerPhase}
	bg, err := procstat.StartBackground(os.Getpid(), srv.proc.PID())
	if err != nil {
		return res, err
	}
	put, err := load.Run(ctx, lc, putOp(srv.client, ks, cfg.valueSize))
	if err != nil {
		return res, fmt.Errorf("bulk load: %w", err)
	}
	res.Put = put.Summary
	if res.BackgroundCPU, err = bg.Stop(); err != nil {
		return res, err
	}
	mem, err := srv.proc.Memory()
	if err != nil {
		return res, err
	}
	res.PeakRSS, res.RSS = mem.PeakRSS, mem.RSS
	res.RSSAnon, res.RSSFile = mem.Anon, mem.File

	if put.Issued > 0 {
		check := getOp(srv.client, ks, cfg.valueSize, put.Issued, true)(0)
		for n := range uint64(min(loadCheckSample, put.Issued)) {
			octx, cancel := context.WithTimeout(ctx, cfg.opTimeout)
			err := check(octx, n)
			cancel()
			res.Checked++
			if err != nil {
				if ctx.Err() != nil {
					return res, fmt.Errorf("bulk load read-back: %w", ctx.Err())
				}
				if res.Mismatched == 0 {
					warnf("bulk load read-back: %v", err)
				}
				res.Mismatched++
			}
		}
	}
	return res, nil
}

// targetDir returns (and creates) the work directory of one server run.
func targetDir(work, name string) (string, error) {
	dir := filepath.Join(work, name)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", fmt.Errorf("create %s: %w", dir, err)
	}
	return dir, nil
}
