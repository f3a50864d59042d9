package main

import (
	"cmp"
	"context"
	"errors"
	"flag"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"kvstore.dev/kvstore/bench/internal/keyspace"
	"kvstore.dev/kvstore/bench/internal/load"
	"kvstore.dev/kvstore/bench/internal/mdsection"
	"kvstore.dev/kvstore/bench/internal/procstat"
	"kvstore.dev/kvstore/bench/internal/report"
	"kvstore.dev/kvstore/internal/backup"
)

// backupCommand is the subcommand that measures PUT throughput on a
// three-node cluster without a backup and while backups stream from a
// follower, side by side.
const backupCommand = "backup"

// backupTarget is the share of the no-backup throughput a PUT phase must
// keep while a backup streams (issue 14).
const backupTarget = 0.80

// backupSection is the section of docs/benchmarks.md the run replaces.
var backupSection = mdsection.Section{Heading: "## PUT throughput during a backup (three nodes)",
	Begin: "<!-- backup-bench:begin -->", End: "<!-- backup-bench:end -->"}

// backupConfig holds the settings of "kvbench backup".
type backupConfig struct {
	commonFlags // its one target is kvstore
	localFlags

	preloadMiB   int
	preloadValue int
}

// setup parses the flags of "kvbench backup".
func (cfg *backupConfig) setup(args []string) error {
	fs := flag.NewFlagSet("kvbench "+backupCommand, flag.ContinueOnError)
	cfg.commonFlags.register(fs, flagText{targetFlag: "systems", targetHelp: "the system (one): ",
		known: []string{report.KVStore}, clients: "comma-separated concurrency levels of the PUT phases",
		judged: "the target is", duration: 10 * time.Second, phases: "PUT phase", section: "backup"})
	cfg.localFlags.register(fs, "unused (kvstore only)")
	fs.IntVar(&cfg.preloadMiB, "preload-mib", 64, "MiB of values written before the measurement, so that a snapshot streams for a while")
	fs.IntVar(&cfg.preloadValue, "preload-value-size", 32<<10, "value size in bytes of the preload")
	switch err := cmp.Or(cfg.commonFlags.parse(fs, args), cfg.localFlags.validate()); {
	case err != nil:
		return err
	case cfg.preloadMiB < 0 || cfg.preloadMiB > 4096:
		return errors.New("-preload-mib must be in [0, 4096]")
	case cfg.preloadValue < 1 || cfg.preloadValue > 1<<20:
		return errors.New("-preload-value-size must be in [1, 1MiB]")
	}
	return nil
}

// backupRow is one client count: the PUT phase without a backup and the
// one during backups.
type backupRow struct {
	Clients       int
	Plain, During load.Result
	// CPU shares of the machine during each phase: the follower the
	// backups stream from, the leader, the other follower, kvbench (the
	// load and the backup writer), everything else.
	CPUPlain, CPUDuring procstat.Shares
	Snapshots           int           // backups completed during the phase
	SnapshotBytes       int64         // their bytes
	SnapshotActive      time.Duration // how long a snapshot streamed during the phase
	Err                 string
}

// ratio is the PUT throughput during backups over that without.
func (r backupRow) ratio() float64 {
	if r.Plain.OpsPerSec() == 0 {
		return 0
	}
	return r.During.OpsPerSec() / r.Plain.OpsPerSec()
}

// run starts one fresh three-node cluster, preloads it, then for every
// client count measures a PUT phase without a backup and one while
// backups of a follower's snapshot (GET /api/v1/snapshot, the backup
// package's Source and Write, as `kvstore backup` takes them) stream into
// a directory back to back; the order of the two alternates between
// client counts. It prints the report and writes it into the backup
// section of cfg.out.
func (cfg *backupConfig) run(ctx context.Context) (err error) {
	if err := cfg.checkBinaries(cfg.targets); err != nil {
		return err
	}
	work, cleanup, err := cfg.prepareRun(&cfg.seed, "kvbench-backup-")
	if err != nil {
		return err
	}
	failed := false
	defer func() { cleanup(failed || err != nil) }()
	meta := collectMeta(&cfg.commonFlags, &cfg.localFlags, work, true)
	start := time.Now()

	infof("backup: starting a fresh 3-node cluster")
	cl, err := startKVCluster(ctx, cfg.kvstoreBin, filepath.Join(work, "cluster"), max(16, maxInt(cfg.clients)), false)
	if err != nil {
		return err
	}
	defer closeOrWarn(cl)
	leader, err := cl.leader(ctx)
	if err != nil {
		return err
	}
	follower := (leader + 1) % clusterNodes
	dest := backup.NewDir(filepath.Join(work, "backups"))
	src := &backup.Source{URL: "http://" + cl.api[follower], Token: func() (string, error) { return cl.token, nil },
		Client: &http.Client{Transport: &http.Transport{Proxy: nil}}, MaxBusyRetries: 3}

	if cfg.preloadMiB > 0 {
		n := uint64(cfg.preloadMiB) << 20 / uint64(cfg.preloadValue)
		infof("backup: preloading %d values of %d KiB (%d MiB)", n, cfg.preloadValue>>10, cfg.preloadMiB)
		res, err := load.Run(ctx, load.Config{Clients: 8, Duration: 10 * time.Minute, MaxOps: n, OpTimeout: cfg.opTimeout, MaxErrors: maxErrorsPerPhase},
			spreadPutOp(cl.spread(), keyspace.New(runSeed(cfg.seed, 1_000_000)), cfg.preloadValue, nil))
		if err != nil || res.Errors > 0 {
			return fmt.Errorf("preload: %v (%d errors: %s)", err, res.Errors, res.FirstError)
		}
	}
	m, err := oneBackup(ctx, src, dest)
	if err != nil {
		return fmt.Errorf("a first backup from %s: %w", cl.ids[follower], err)
	}
	infof("backup: one backup from %s: %s in %v", cl.ids[follower], report.Bytes(uint64(m.size)), m.took.Round(time.Millisecond))

	other := 3 - leader - follower
	groups := []procstat.Group{{Name: "source", PIDs: []int{cl.pid(follower)}}, {Name: "leader", PIDs: []int{cl.pid(leader)}},
		{Name: "follower", PIDs: []int{cl.pid(other)}}, {Name: "kvbench", PIDs: []int{os.Getpid()}}}
	var rows []backupRow
	for level, c := range cfg.clients {
		row := backupRow{Clients: c}
		ks := keyspace.New(runSeed(cfg.seed, level))
		var seq uint64 // keys of both phases are fresh writes
		phase := func(withBackup bool) error {
			lc := load.Config{Clients: c, Duration: cfg.duration, MaxOps: cfg.maxOps, OpTimeout: cfg.opTimeout, MaxErrors: maxErrorsPerPhase}
			op := offsetPutOp(cl.spread(), ks, cfg.valueSize, seq)
			sampler, err := procstat.StartShares(groups)
			if err != nil {
				return err
			}
			if !withBackup {
				res, err := load.Run(ctx, lc, op)
				row.Plain, seq = res, seq+res.Issued
				sh, serr := sampler.Stop()
				row.CPUPlain = sh
				return cmp.Or(err, serr)
			}
			bctx, stop := context.WithCancel(ctx)
			done := make(chan backupLoop, 1)
			go func() { done <- loopBackups(bctx, src, dest) }()
			res, err := load.Run(ctx, lc, op)
			stop()
			bl := <-done
			sh, serr := sampler.Stop()
			row.CPUDuring = sh
			row.During, seq = res, seq+res.Issued
			row.Snapshots, row.SnapshotBytes, row.SnapshotActive = bl.n, bl.bytes, bl.active
			return cmp.Or(err, bl.err, serr)
		}
		first, second := false, true
		if level%2 == 1 {
			first, second = true, false
		}
		if err := cmp.Or(phase(first), phase(second)); err != nil {
			if ctx.Err() != nil {
				return fmt.Errorf("interrupted: %w", ctx.Err())
			}
			row.Err, failed = err.Error(), true
			warnf("backup, %d clients: %v", c, err)
		} else {
			infof("backup, %d clients: PUT %s ops/s without a backup, %s ops/s during %d backups (%s, streaming %v of the phase): %s",
				c, report.Rate(row.Plain.OpsPerSec()), report.Rate(row.During.OpsPerSec()), row.Snapshots,
				report.Bytes(uint64(row.SnapshotBytes)), row.SnapshotActive.Round(time.Millisecond), report.Percent(row.ratio()))
		}
		rows = append(rows, row)
	}
	meta.LoadAvg = meta.LoadAvg + "; at the end " + procstat.LoadAvg()
	md := backupMarkdown(meta, cfg, m, cl.ids[follower], cl.ids[leader], rows, time.Since(start))
	var refuse error
	if cfg.out != "" && failed && len(rows) == 0 {
		refuse = errors.New("nothing could be measured")
	}
	return publish(md, cfg.out, backupSection, refuse, unmeasured(failed))
}

func maxInt(xs []int) int {
	m := 0
	for _, x := range xs {
		m = max(m, x)
	}
	return m
}

// offsetPutOp is spreadPutOp writing the keys of sequence numbers from
// offset on, so that a second phase on the same cluster writes new keys.
func offsetPutOp(targets []kvClient, ks keyspace.Space, valueSize int, offset uint64) func(int) load.Op {
	put := spreadPutOp(targets, ks, valueSize, nil)
	return func(client int) load.Op {
		op := put(client)
		return func(ctx context.Context, seq uint64) error { return op(ctx, seq+offset) }
	}
}

// backupTaken is one backup: its size and how long it took.
type backupTaken struct {
	size int64
	took time.Duration
}

// oneBackup streams one snapshot from src into dest (backup.Write: the
// data object, its SHA-256, the manifest), then deletes both objects so
// that a loop of them needs no more disk than one.
func oneBackup(ctx context.Context, src *backup.Source, dest backup.Destination) (backupTaken, error) {
	t0 := time.Now()
	body, info, err := src.Snapshot(ctx)
	if err != nil {
		return backupTaken{}, err
	}
	m, err := backup.Write(ctx, dest, body, info)
	body.Close()
	took := time.Since(t0)
	if err != nil {
		return backupTaken{took: took}, err
	}
	for _, key := range []string{m.Object, m.Name + ".json"} {
		if err := dest.Delete(context.WithoutCancel(ctx), key); err != nil {
			return backupTaken{m.SizeBytes, took}, err
		}
	}
	return backupTaken{m.SizeBytes, took}, nil
}

// backupLoop is what loopBackups did.
type backupLoop struct {
	n      int
	bytes  int64
	active time.Duration
	err    error
}

// loopBackups takes backups back to back until ctx ends; the one ctx
// interrupts is not counted (its time is: it streamed).
func loopBackups(ctx context.Context, src *backup.Source, dest backup.Destination) backupLoop {
	var l backupLoop
	for ctx.Err() == nil {
		b, err := oneBackup(ctx, src, dest)
		l.active += b.took
		if err != nil {
			if ctx.Err() == nil {
				l.err = fmt.Errorf("backup during the PUT phase: %w", err)
			}
			break
		}
		l.n++
		l.bytes += b.size
	}
	return l
}
