package main

import (
	"errors"
	"flag"
	"fmt"
	"strings"
	"time"

	"kvstore.dev/kvstore/bench/internal/report"
)

// clusterCommand is the subcommand that compares a three-node kvstore
// cluster with a three-member etcd cluster on loopback: PUT throughput
// and latency, and leader failover.
const clusterCommand = "cluster"

// clusterNodes is the size of both clusters.
const clusterNodes = 3

// clusterConfig holds the settings of "kvbench cluster".
type clusterConfig struct {
	systems      []string
	clients      []int
	judgeClients int
	leaderOnly   bool
	duration     time.Duration
	maxOps       uint64
	opTimeout    time.Duration
	valueSize    int
	kvstoreBin   string
	etcdBin      string
	etcdConns    int

	failoverReps    int
	failoverClients int
	failoverTimeout time.Duration
	failoverWarmup  time.Duration

	profileDir  string
	workDir     string
	keepWorkDir bool
	out         string
	seed        uint64
}

// parseClusterFlags parses the flags of "kvbench cluster".
func parseClusterFlags(args []string) (*clusterConfig, error) {
	cfg := &clusterConfig{}
	fs := flag.NewFlagSet("kvbench "+clusterCommand, flag.ContinueOnError)
	systemList := fs.String("systems", report.KVStore+","+report.Etcd, "comma-separated systems to run: "+report.KVStore+", "+report.Etcd)
	clientList := fs.String("clients", "1,16,64", "comma-separated concurrency levels (the same as the single-node PUT benchmark)")
	fs.IntVar(&cfg.judgeClients, "judge-clients", 64, "concurrency level the target is judged at")
	fs.BoolVar(&cfg.leaderOnly, "leader-only", true, "also measure every system with all clients talking to the leader")
	fs.DurationVar(&cfg.duration, "duration", 10*time.Second, "time bound of each PUT phase")
	fs.Uint64Var(&cfg.maxOps, "max-ops", 2_000_000, "operation bound of each PUT phase")
	fs.DurationVar(&cfg.opTimeout, "op-timeout", 10*time.Second, "timeout of a single operation")
	fs.IntVar(&cfg.valueSize, "value-size", 256, "value size in bytes (keys are always 16 bytes)")
	fs.StringVar(&cfg.kvstoreBin, "kvstore-bin", "bin/kvstore", "kvstore server binary")
	fs.StringVar(&cfg.etcdBin, "etcd-bin", "bin/etcd", "etcd server binary")
	fs.IntVar(&cfg.etcdConns, "etcd-conns", 1, "number of etcd clients (each over all endpoints) the benchmark clients share")
	fs.IntVar(&cfg.failoverReps, "failover-reps", 3, "leader kills per system (0 skips the failover measurement)")
	fs.IntVar(&cfg.failoverClients, "failover-clients", 8, "concurrency of the write load during the failover measurement")
	fs.DurationVar(&cfg.failoverTimeout, "failover-timeout", 15*time.Second, "how long after a kill a write must be acknowledged")
	fs.DurationVar(&cfg.failoverWarmup, "failover-warmup", 2*time.Second, "write load before each kill")
	fs.StringVar(&cfg.profileDir, "profile-dir", "", "save CPU profiles of the kvstore nodes during the kvstore run at -judge-clients, clients spread, into this directory (diagnosis only: profiling costs CPU)")
	fs.StringVar(&cfg.workDir, "work-dir", "", "directory for data directories and logs (default $TMPDIR)")
	fs.BoolVar(&cfg.keepWorkDir, "keep-work-dir", false, "keep data directories and logs after a successful run")
	fs.StringVar(&cfg.out, "out", "docs/benchmarks.md", "markdown file whose three-node section is replaced (empty: stdout only)")
	fs.Uint64Var(&cfg.seed, "seed", 0, "key space seed (0: random)")
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected arguments: %q", fs.Args())
	}
	var err error
	if cfg.systems, err = parseTargetList(*systemList, []string{report.KVStore, report.Etcd}); err != nil {
		return nil, errors.New(strings.Replace(err.Error(), "-targets", "-systems", 1))
	}
	if cfg.clients, err = parseClients(*clientList); err != nil {
		return nil, err
	}
	switch {
	case cfg.duration <= 0:
		return nil, errors.New("-duration must be positive")
	case cfg.maxOps < 1:
		return nil, errors.New("-max-ops must be positive")
	case cfg.opTimeout <= 0:
		return nil, errors.New("-op-timeout must be positive")
	case cfg.valueSize < 1 || cfg.valueSize > 1<<20:
		return nil, errors.New("-value-size must be in [1, 1MiB]")
	case cfg.etcdConns < 1:
		return nil, errors.New("-etcd-conns must be positive")
	case cfg.failoverReps < 0 || cfg.failoverReps > 20:
		return nil, errors.New("-failover-reps must be in [0, 20]")
	case cfg.failoverClients < 1:
		return nil, errors.New("-failover-clients must be positive")
	case cfg.failoverTimeout <= 0:
		return nil, errors.New("-failover-timeout must be positive")
	case cfg.failoverWarmup < 0:
		return nil, errors.New("-failover-warmup must not be negative")
	}
	return cfg, nil
}
