package main

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"time"

	"kvstore.dev/kvstore/bench/internal/keyspace"
	"kvstore.dev/kvstore/bench/internal/load"
	"kvstore.dev/kvstore/bench/internal/mdsection"
	"kvstore.dev/kvstore/bench/internal/procstat"
	"kvstore.dev/kvstore/bench/internal/report"
)

// readBackSample is how many acknowledged writes of a PUT phase are read
// back on every node afterwards.
const readBackSample = 1000

// run measures, for every client count, each system's PUT
// throughput on a fresh three-node cluster with the clients spread over
// the nodes (and, with -leader-only, all on the leader), the systems one
// after the other (in an order reversed at every other client count, so
// neither always goes first); then each system's leader failover. It prints the
// report and writes it into the three-node section of cfg.out.
func (cfg *clusterConfig) run(ctx context.Context) (err error) {
	if err := cfg.checkBinaries(cfg.targets); err != nil {
		return err
	}
	work, cleanup, err := cfg.prepareRun(&cfg.seed, "kvbench-cluster-")
	if err != nil {
		return err
	}
	failed := false
	defer func() { cleanup(failed || err != nil) }()

	start := time.Now()
	rep := report.ClusterReport{JudgeClients: cfg.judgeClients, Meta: report.ClusterMeta{
		Meta: collectMeta(&cfg.commonFlags, &cfg.localFlags, work, false), Nodes: clusterNodes,
		FailoverClients: cfg.failoverClients, FailoverReps: cfg.failoverReps, FailoverTimeout: cfg.failoverTimeout}}
	modes := []string{report.Spread}
	if cfg.leaderOnly {
		modes = append(modes, report.LeaderOnly)
	}
	run := 0
	for level, c := range cfg.clients {
		for _, mode := range modes {
			for _, system := range targetOrder(cfg.targets, level) {
				run++
				dir, err := targetDir(work, fmt.Sprintf("%s-%s-c%d", system, mode, c))
				if err != nil {
					return err
				}
				row := report.ClusterRow{System: system, Mode: mode, Clients: c}
				infof("%s, %d clients, %s: starting a fresh 3-node cluster", system, c, mode)
				if err := runClusterRow(ctx, cfg, &row, dir, keyspace.New(runSeed(cfg.seed, run))); err != nil {
					if ctx.Err() != nil {
						return fmt.Errorf("interrupted: %w", ctx.Err())
					}
					row.Err = err.Error()
					failed = true
					warnf("%s, %d clients, %s: %v", system, c, mode, err)
				} else {
					infof("%s, %d clients, %s: PUT %s ops/s (p50 %s, p99 %s, %d errors), leader %s, read-back %d/%d ok; CPU leader %s, followers %s, kvbench %s, other %s",
						system, c, mode, report.Rate(row.Put.OpsPerSec()), report.Latency(row.Put.P50), report.Latency(row.Put.P99), row.Put.Errors,
						row.Leader, row.Checked-row.Mismatched, row.Checked,
						report.Percent(row.CPULeader), report.Percent(row.CPUFollowers), report.Percent(row.CPUKVBench), report.Percent(row.CPUOther))
					_ = os.RemoveAll(filepath.Join(dir)) // data and logs of a good run
				}
				rep.Rows = append(rep.Rows, row)
			}
		}
	}
	// Present the rows by client count, mode, then system.
	slices.SortStableFunc(rep.Rows, func(a, b report.ClusterRow) int {
		return cmp.Or(
			cmp.Compare(slices.Index(cfg.clients, a.Clients), slices.Index(cfg.clients, b.Clients)),
			cmp.Compare(slices.Index(modes, a.Mode), slices.Index(modes, b.Mode)),
			cmp.Compare(slices.Index(cfg.targets, a.System), slices.Index(cfg.targets, b.System)))
	})
	if cfg.failoverReps > 0 {
		for _, system := range cfg.targets {
			run++
			dir, err := targetDir(work, system+"-failover")
			if err != nil {
				return err
			}
			infof("%s failover: starting a fresh 3-node cluster; %d clients; %d leader kills", system, cfg.failoverClients, cfg.failoverReps)
			f := runFailover(ctx, cfg, system, dir, keyspace.New(runSeed(cfg.seed, run)))
			if ctx.Err() != nil {
				return fmt.Errorf("interrupted: %w", ctx.Err())
			}
			if f.Err != "" || f.Lost > 0 {
				failed = true
			}
			rep.Failovers = append(rep.Failovers, f)
		}
	}
	rep.Meta.Took = time.Since(start)
	rep.Meta.LoadEnd = procstat.LoadAvg()

	// Missed targets, failed rows and even lost writes are results worth
	// recording; only a run that measured nothing leaves the file alone.
	var refuse, failure error
	if cfg.out != "" && measuredNothing(rep) {
		refuse = errors.New("nothing could be measured")
	}
	if cfg.out != "" && failed {
		failure = errors.New("some measurements failed or lost writes (recorded in the report)")
	}
	return publish(rep.Markdown(), cfg.out, mdsection.Cluster, refuse, failure)
}

// measuredNothing reports whether every row and failover failed.
func measuredNothing(r report.ClusterReport) bool {
	for _, row := range r.Rows {
		if row.Err == "" {
			return false
		}
	}
	for _, f := range r.Failovers {
		if len(f.Reps) > 0 {
			return false
		}
	}
	return true
}

// startBenchCluster starts a fresh cluster of system under dir.
func startBenchCluster(ctx context.Context, cfg *clusterConfig, system, dir string, clients int) (benchCluster, error) {
	switch system {
	case report.KVStore:
		return startKVCluster(ctx, cfg.kvstoreBin, dir, clients, false)
	case report.KVStoreMTLS:
		return startKVCluster(ctx, cfg.kvstoreBin, dir, clients, true)
	case report.Etcd:
		return startEtcdCluster(ctx, cfg.etcdBin, dir, cfg.etcdConns)
	}
	return nil, fmt.Errorf("unknown system %q", system)
}

// runClusterRow measures one row on a fresh cluster: one PUT phase, then
// a read-back of a sample of the acknowledged writes on every node.
func runClusterRow(ctx context.Context, cfg *clusterConfig, row *report.ClusterRow, dir string, ks keyspace.Space) error {
	cl, err := startBenchCluster(ctx, cfg, row.System, dir, row.Clients)
	if err != nil {
		return err
	}
	defer closeOrWarn(cl)
	leader, err := cl.leader(ctx)
	if err != nil {
		return err
	}
	row.Leader = cl.names()[leader]
	targets := cl.spread()
	if row.Mode == report.LeaderOnly {
		lc, err := cl.leaderClient(leader)
		if err != nil {
			return err
		}
		targets = []kvClient{lc}
	}

	var followers []int
	for i := range cl.names() {
		if i != leader {
			followers = append(followers, cl.pid(i))
		}
	}
	sampler, err := procstat.StartShares([]procstat.Group{
		{Name: "leader", PIDs: []int{cl.pid(leader)}},
		{Name: "followers", PIDs: followers},
		{Name: "kvbench", PIDs: []int{os.Getpid()}},
	})
	if err != nil {
		return err
	}
	profDone := make(chan error, 1)
	if kc, ok := cl.(*kvCluster); ok && cfg.profileDir != "" && row.Mode == report.Spread && row.Clients == cfg.judgeClients {
		secs := max(1, int((cfg.duration - time.Second).Seconds()))
		go func() {
			profDone <- kc.profile(ctx, cfg.profileDir, fmt.Sprintf("kvstore-c%d", row.Clients), leader, secs)
		}()
	} else {
		profDone <- nil
	}

	termBefore, err := cl.term(ctx, leader)
	if err != nil {
		return err
	}

	failedSeqs := make([][]uint64, row.Clients)
	lc := load.Config{Clients: row.Clients, Duration: cfg.duration, MaxOps: cfg.maxOps, OpTimeout: cfg.opTimeout, MaxErrors: maxErrorsPerPhase}
	res, err := load.Run(ctx, lc, spreadPutOp(targets, ks, cfg.valueSize, failedSeqs))
	if err != nil {
		return fmt.Errorf("PUT phase: %w", err)
	}
	row.Put = res.Summary
	sh, err := sampler.Stop()
	if err != nil {
		return err
	}
	row.CPULeader, row.CPUFollowers, row.CPUKVBench, row.CPUOther = sh.Groups[0], sh.Groups[1], sh.Groups[2], sh.Other
	if err := <-profDone; err != nil {
		warnf("CPU profiles: %v", err)
	}
	if res.Issued == 0 || row.Put.Ops == 0 {
		return errors.New("the PUT phase acknowledged no write")
	}
	// No fault is injected here, so every election during the phase is a
	// false one (a follower that stopped hearing from a live leader).
	after, err := cl.leader(ctx)
	if err != nil {
		return err
	}
	termAfter, err := cl.term(ctx, after)
	if err != nil {
		return err
	}
	row.Elections = int(termAfter - termBefore)

	// Read back a sample of the acknowledged writes on every node.
	failed := map[uint64]bool{}
	for _, s := range failedSeqs {
		for _, seq := range s {
			failed[seq] = true
		}
	}
	var sample []uint64
	for n := uint64(0); len(sample) < readBackSample && n < 4*readBackSample; n++ {
		if seq := keyspace.Pick(n, res.Issued); !failed[seq] {
			sample = append(sample, seq)
		}
	}
	for i := range cl.names() {
		r, err := cl.reader(i)
		if err != nil {
			return err
		}
		checked, bad, first := verifyWrites(ctx, r, ks, cfg.valueSize, cfg.opTimeout, sample, 8)
		row.Checked += checked
		row.Mismatched += bad
		if first != "" {
			warnf("%s, %d clients, %s: read-back on %s: %s", row.System, row.Clients, row.Mode, cl.names()[i], first)
		}
	}
	return nil
}

// spreadPutOp returns per-client PUT operations writing key seq with value
// seq; client c sends its k-th write through targets[(c+k)%len(targets)],
// and records the sequence numbers of failed writes in failed[c].
func spreadPutOp(targets []kvClient, ks keyspace.Space, valueSize int, failed [][]uint64) func(int) load.Op {
	return func(client int) load.Op {
		key := make([]byte, keyspace.KeySize)
		val := make([]byte, valueSize)
		k := client
		return func(ctx context.Context, seq uint64) error {
			t := targets[k%len(targets)]
			k++
			kk := ks.Key(key, seq)
			ks.Value(val, seq)
			err := t.Put(ctx, kk, val)
			if err != nil && failed != nil {
				failed[client] = append(failed[client], seq)
			}
			return err
		}
	}
}

// verifyWrites reads the keys of seqs through r with the given
// concurrency and compares them with the values written; it returns how
// many it checked, how many were missing or wrong, and the first problem.
func verifyWrites(ctx context.Context, r kvClient, ks keyspace.Space, valueSize int, opTimeout time.Duration, seqs []uint64, workers int) (checked, bad int, first string) {
	type result struct {
		checked, bad int
		first        string
	}
	results := make(chan result, workers)
	for w := range workers {
		go func() {
			var res result
			key := make([]byte, keyspace.KeySize)
			want := make([]byte, valueSize)
			buf := make([]byte, 0, valueSize+64)
			for i := w; i < len(seqs); i += workers {
				if ctx.Err() != nil {
					break
				}
				seq := seqs[i]
				k := ks.Key(key, seq)
				ks.Value(want, seq)
				octx, cancel := context.WithTimeout(ctx, opTimeout)
				got, err := r.Get(octx, k, buf)
				cancel()
				res.checked++
				switch {
				case err != nil:
					res.bad++
					if res.first == "" {
						res.first = err.Error()
					}
				case !bytes.Equal(got, want):
					res.bad++
					if res.first == "" {
						res.first = fmt.Sprintf("GET %s: value differs from what was acknowledged (%d bytes)", k, len(got))
					}
				default:
					buf = got[:0]
				}
			}
			results <- res
		}()
	}
	for range workers {
		r := <-results
		checked += r.checked
		bad += r.bad
		if first == "" {
			first = r.first
		}
	}
	return checked, bad, first
}
