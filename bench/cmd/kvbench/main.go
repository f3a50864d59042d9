// Command kvbench compares the kvstore server with etcd and with a bare
// net/http server on the same machine, at the same concurrency levels, and
// writes the results to docs/benchmarks.md.
//
// For every target and client count it starts a fresh server process,
// runs a PUT phase writing unique keys and then a GET phase reading keys
// that exist, each bounded in time and operation count, and records
// throughput, p50/p99 latency and the server's peak RSS (VmHWM). A final
// phase loads one million values into a fresh kvstore and records its
// peak RSS. The results are judged against the project's targets.
//
// Usage (from the repository root; see hack/bench.sh):
//
//	bin/kvbench [-duration 5s] [-clients 1,16,64] [-load-values 1000000] ...
//
// "kvbench compose -ca FILE -token-file FILE ..." instead drives a running
// compose stack, the API through nginx over HTTPS against the app's own
// port, and writes its own section of docs/benchmarks.md (see
// hack/bench-compose.sh).
//
// "kvbench cluster ..." instead compares a three-node kvstore cluster with
// a three-member etcd cluster on loopback, PUT throughput and leader
// failover, and writes its own section of docs/benchmarks.md (see
// hack/bench-cluster.sh).
//
// "kvbench bare-http -listen ADDR" is an internal subcommand: the bare
// HTTP server, run in its own process.
package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"time"

	"kvstore.dev/kvstore/bench/internal/mdsection"
	"kvstore.dev/kvstore/bench/internal/report"
)

// wrapperEnv names the environment variable through which a wrapper
// script (hack/bench.sh) records that it produced the run.
const wrapperEnv = "KVBENCH_WRAPPER"

func main() {
	os.Exit(runScenario(os.Args[1:]))
}

// run executes every phase, prints the report and updates cfg.out.
func (cfg *config) run(ctx context.Context) (err error) {
	if err := cfg.checkBinaries(cfg.targets); err != nil {
		return err
	}
	if _, err := os.Stat(cfg.kvstoreBin); cfg.loadValues > 0 && err != nil {
		return fmt.Errorf("kvstore binary (needed by the bulk-load phase; -load-values 0 skips it): %w", err)
	}
	work, cleanup, err := cfg.prepareRun(&cfg.seed, "kvbench-")
	if err != nil {
		return err
	}
	failed := false
	defer func() { cleanup(failed || err != nil) }()

	rep := report.Report{Meta: collectMeta(&cfg.commonFlags, &cfg.localFlags, work, cfg.loadValues > 0), JudgeClients: cfg.judgeClients}
	// All targets run back to back at one client count before the next,
	// so the rows a ratio compares are measured close together in time.
	for _, c := range cfg.clients {
		for _, name := range cfg.targets {
			t, _ := findTarget(name)
			row, err := runOne(ctx, cfg, t, c, work)
			if ctx.Err() != nil {
				return fmt.Errorf("interrupted: %w", ctx.Err())
			}
			if err != nil {
				failed = true
				row.Err = err.Error()
				warnf("%s, %d clients: %v", name, c, err)
			}
			rep.Rows = append(rep.Rows, row)
		}
	}
	// Present the rows grouped by target.
	slices.SortStableFunc(rep.Rows, func(a, b report.Row) int {
		return slices.Index(cfg.targets, a.Target) - slices.Index(cfg.targets, b.Target)
	})
	if cfg.loadValues > 0 {
		l, err := runLoadPhase(ctx, cfg, work)
		if ctx.Err() != nil {
			return fmt.Errorf("interrupted: %w", ctx.Err())
		}
		if err != nil {
			failed = true
			l.Err = err.Error()
			warnf("bulk load: %v", err)
		}
		rep.Load = &l
	}

	return publish(rep.Markdown(), cfg.out, mdsection.KVBench, unmeasured(failed), nil)
}

// runOne measures target t at c clients in its own directory, whose data
// is removed afterwards (logs stay until the work dir is removed).
func runOne(ctx context.Context, cfg *config, t target, c int, work string) (report.Row, error) {
	dir, err := targetDir(work, fmt.Sprintf("%s-c%d", t.name, c))
	if err != nil {
		return report.Row{Target: t.name, Clients: c}, err
	}
	infof("%s, %d clients: starting", t.name, c)
	row, err := runTarget(ctx, cfg, t, c, dir)
	if err == nil {
		infof("%s, %d clients: PUT %s ops/s (p50 %s, p99 %s, %d errors); GET %s ops/s (p50 %s, p99 %s, %d errors); peak RSS %s; other CPU %s",
			t.name, c,
			report.Rate(row.Put.OpsPerSec()), report.Latency(row.Put.P50), report.Latency(row.Put.P99), row.Put.Errors,
			report.Rate(row.Get.OpsPerSec()), report.Latency(row.Get.P50), report.Latency(row.Get.P99), row.Get.Errors,
			report.Bytes(row.PeakRSS), report.Percent(row.BackgroundCPU))
		_ = os.RemoveAll(filepath.Join(dir, "data"))
	}
	return row, err
}

// runLoadPhase runs the bulk-load memory phase in its own directory.
func runLoadPhase(ctx context.Context, cfg *config, work string) (report.Load, error) {
	dir, err := targetDir(work, "kvstore-load")
	if err != nil {
		return report.Load{Want: cfg.loadValues, Clients: cfg.loadClients}, err
	}
	infof("bulk load: %s values with %d clients into a fresh kvstore (at most %v)", report.Count(cfg.loadValues), cfg.loadClients, cfg.loadTimeout)
	l, err := runLoad(ctx, cfg, dir)
	if err == nil {
		infof("bulk load: stored %s values in %v (%s ops/s, %d errors); peak RSS %s, RSS %s; read-back %d/%d ok; other CPU %s",
			report.Count(uint64(l.Put.Ops)), l.Put.Elapsed.Round(time.Millisecond), report.Rate(l.Put.OpsPerSec()), l.Put.Errors,
			report.Bytes(l.PeakRSS), report.Bytes(l.RSS), l.Checked-l.Mismatched, l.Checked, report.Percent(l.BackgroundCPU))
		_ = os.RemoveAll(filepath.Join(dir, "data"))
	}
	return l, err
}

// infof prints progress to stderr.
func infof(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "kvbench: "+format+"\n", args...)
}

// warnf prints a warning to stderr.
func warnf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "kvbench: warning: "+format+"\n", args...)
}
