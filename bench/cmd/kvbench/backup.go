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
	"strings"
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
	// maxRates are the limits of the limited backups, bytes per second.
	maxRates   []int64
	maxRateArg string
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
	fs.StringVar(&cfg.maxRateArg, "max-rate", backup.FormatRate(backup.DefaultMaxRate)+","+backup.FormatRate(backup.DefaultMaxRate*4),
		"comma-separated bandwidth limits of the limited backups, bytes per second with a unit (kvstore backup --max-rate; default its default and four times it); unlimited backups are measured too")
	switch err := cmp.Or(cfg.commonFlags.parse(fs, args), cfg.localFlags.validate()); {
	case err != nil:
		return err
	case cfg.preloadMiB < 0 || cfg.preloadMiB > 4096:
		return errors.New("-preload-mib must be in [0, 4096]")
	case cfg.preloadValue < 1 || cfg.preloadValue > 1<<20:
		return errors.New("-preload-value-size must be in [1, 1MiB]")
	}
	cfg.maxRates = nil
	for _, arg := range strings.Split(cfg.maxRateArg, ",") {
		rate, err := backup.ParseRate(strings.TrimSpace(arg))
		if err == nil && rate == 0 {
			err = errors.New("0 is no limit, measured anyway")
		}
		if err == nil {
			err = backup.CheckRate(rate)
		}
		if err != nil {
			return fmt.Errorf("-max-rate: %w", err)
		}
		cfg.maxRates = append(cfg.maxRates, rate)
	}
	if len(cfg.maxRates) > 4 {
		return errors.New("-max-rate: at most 4 limits")
	}
	return nil
}

// backupRow is one client count and one rate limit: the PUT phase
// without a backup (shared by the client count's rows) and the one during
// backups at that limit.
type backupRow struct {
	Clients       int
	MaxRate       int64 // bytes per second; 0: no limit
	Plain, During load.Result
	// CPU shares of the machine during each phase: the follower the
	// backups stream from, the leader, the other follower, kvbench (the
	// load and the backup writer), everything else.
	CPUPlain, CPUDuring procstat.Shares
	Snapshots           int           // backups completed during the phase
	SnapshotBytes       int64         // their bytes
	SnapshotTook        time.Duration // their total duration
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

// meanBackup is how long one backup completed during the phase took.
func (r backupRow) meanBackup() time.Duration {
	if r.Snapshots == 0 {
		return 0
	}
	return r.SnapshotTook / time.Duration(r.Snapshots)
}

// run starts one fresh three-node cluster, preloads it, then for every
// client count measures PUT phases without a backup, while unlimited
// backups of a follower's snapshot (GET /api/v1/snapshot, the backup
// package's Source and Write, as `kvstore backup` takes them) stream into
// a directory back to back, and while backups limited to each of
// cfg.maxRates do; the order of the phases rotates between client counts.
// It prints the report and writes it into the backup section of cfg.out.
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
	m, err := oneBackup(ctx, src, dest, 0)
	if err != nil {
		return fmt.Errorf("a first backup from %s: %w", cl.ids[follower], err)
	}
	infof("backup: one backup from %s: %s in %v", cl.ids[follower], report.Bytes(uint64(m.size)), m.took.Round(time.Millisecond))

	other := 3 - leader - follower
	groups := []procstat.Group{{Name: "source", PIDs: []int{cl.pid(follower)}}, {Name: "leader", PIDs: []int{cl.pid(leader)}},
		{Name: "follower", PIDs: []int{cl.pid(other)}}, {Name: "kvbench", PIDs: []int{os.Getpid()}}}
	rates := append([]int64{0}, cfg.maxRates...)
	var rows []backupRow
	for level, c := range cfg.clients {
		var plain load.Result
		var cpuPlain procstat.Shares
		during := make([]backupRow, len(rates))
		ks := keyspace.New(runSeed(cfg.seed, level))
		var seq uint64 // keys of every phase are fresh writes
		// phase runs the PUT phase without a backup (i < 0) or during
		// backups at rates[i].
		phase := func(i int) error {
			lc := load.Config{Clients: c, Duration: cfg.duration, MaxOps: cfg.maxOps, OpTimeout: cfg.opTimeout, MaxErrors: maxErrorsPerPhase}
			op := offsetPutOp(cl.spread(), ks, cfg.valueSize, seq)
			sampler, err := procstat.StartShares(groups)
			if err != nil {
				return err
			}
			if i < 0 {
				res, err := load.Run(ctx, lc, op)
				plain, seq = res, seq+res.Issued
				sh, serr := sampler.Stop()
				cpuPlain = sh
				return cmp.Or(err, serr)
			}
			bctx, stop := context.WithCancel(ctx)
			done := make(chan backupLoop, 1)
			go func() { done <- loopBackups(bctx, src, dest, rates[i]) }()
			res, err := load.Run(ctx, lc, op)
			stop()
			bl := <-done
			sh, serr := sampler.Stop()
			row := &during[i]
			row.CPUDuring, row.During, seq = sh, res, seq+res.Issued
			row.Snapshots, row.SnapshotBytes, row.SnapshotTook, row.SnapshotActive = bl.n, bl.bytes, bl.took, bl.active
			return cmp.Or(err, bl.err, serr)
		}
		order := []int{-1} // no backup, unlimited, limited; rotated
		for i := range rates {
			order = append(order, i)
		}
		for range level % len(order) {
			order = append(order[1:], order[0])
		}
		var perr error
		for _, i := range order {
			if perr = phase(i); perr != nil {
				break
			}
		}
		if perr != nil {
			if ctx.Err() != nil {
				return fmt.Errorf("interrupted: %w", ctx.Err())
			}
			failed = true
			warnf("backup, %d clients: %v", c, perr)
			rows = append(rows, backupRow{Clients: c, Err: perr.Error()})
			continue
		}
		for i := range during {
			row := &during[i]
			row.Clients, row.MaxRate, row.Plain, row.CPUPlain = c, rates[i], plain, cpuPlain
			infof("backup, %d clients, max rate %s: PUT %s ops/s without a backup, %s ops/s during %d backups (%s, %v each, streaming %v of the phase): %s",
				c, rateText(row.MaxRate), report.Rate(row.Plain.OpsPerSec()), report.Rate(row.During.OpsPerSec()), row.Snapshots,
				report.Bytes(uint64(row.SnapshotBytes)), row.meanBackup().Round(time.Millisecond), row.SnapshotActive.Round(time.Millisecond), report.Percent(row.ratio()))
		}
		rows = append(rows, during...)
	}
	meta.LoadAvg = meta.LoadAvg + "; at the end " + procstat.LoadAvg()
	md := backupMarkdown(meta, cfg, m, cl.ids[follower], cl.ids[leader], rows, time.Since(start))
	var refuse error
	if cfg.out != "" && failed && len(rows) == 0 {
		refuse = errors.New("nothing could be measured")
	}
	return publish(md, cfg.out, backupSection, refuse, unmeasured(failed))
}

// rateText is a limit as the report writes it: "none" or "64MiB/s".
func rateText(rate int64) string {
	if rate == 0 {
		return "none"
	}
	return backup.FormatRate(rate) + "/s"
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
// data object, its SHA-256, the manifest) at most maxRate bytes a second
// (0: no limit), then deletes both objects so that a loop of them needs
// no more disk than one.
func oneBackup(ctx context.Context, src *backup.Source, dest backup.Destination, maxRate int64) (backupTaken, error) {
	t0 := time.Now()
	body, info, err := src.Snapshot(ctx)
	if err != nil {
		return backupTaken{}, err
	}
	info.MaxBytesPerSecond = maxRate
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
	took   time.Duration // of the n completed backups
	active time.Duration // of those and the interrupted one
	err    error
}

// loopBackups takes backups back to back until ctx ends; the one ctx
// interrupts is not counted (its time is: it streamed).
func loopBackups(ctx context.Context, src *backup.Source, dest backup.Destination, maxRate int64) backupLoop {
	var l backupLoop
	for ctx.Err() == nil {
		b, err := oneBackup(ctx, src, dest, maxRate)
		l.active += b.took
		if err != nil {
			if ctx.Err() == nil {
				l.err = fmt.Errorf("backup during the PUT phase: %w", err)
			}
			break
		}
		l.n++
		l.bytes += b.size
		l.took += b.took
	}
	return l
}
