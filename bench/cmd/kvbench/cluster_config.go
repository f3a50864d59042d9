package main

import (
	"cmp"
	"errors"
	"flag"
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
	leaderOnly  bool
	commonFlags // its targets are the -systems
	localFlags

	failoverReps    int
	failoverClients int
	failoverTimeout time.Duration
	failoverWarmup  time.Duration

	profileDir string
}

// setup parses the flags of "kvbench cluster".
func (cfg *clusterConfig) setup(args []string) error {
	fs := flag.NewFlagSet("kvbench "+clusterCommand, flag.ContinueOnError)
	cfg.commonFlags.register(fs, flagText{targetFlag: "systems", targetHelp: "comma-separated systems to run: ",
		known: []string{report.KVStore, report.Etcd, report.KVStoreMTLS}, clients: "comma-separated concurrency levels (the same as the single-node PUT benchmark)",
		judged: "the target is", duration: 10 * time.Second, phases: "PUT phase", section: "three-node"})
	cfg.localFlags.register(fs, "number of etcd clients (each over all endpoints) the benchmark clients share")
	fs.BoolVar(&cfg.leaderOnly, "leader-only", true, "also measure every system with all clients talking to the leader")
	fs.IntVar(&cfg.failoverReps, "failover-reps", 3, "leader kills per system (0 skips the failover measurement)")
	fs.IntVar(&cfg.failoverClients, "failover-clients", 8, "concurrency of the write load during the failover measurement")
	fs.DurationVar(&cfg.failoverTimeout, "failover-timeout", 15*time.Second, "how long after a kill a write must be acknowledged")
	fs.DurationVar(&cfg.failoverWarmup, "failover-warmup", 2*time.Second, "write load before each kill")
	fs.StringVar(&cfg.profileDir, "profile-dir", "", "save CPU profiles of the kvstore nodes during the kvstore run at -judge-clients, clients spread, into this directory (diagnosis only: profiling costs CPU)")
	switch err := cmp.Or(cfg.commonFlags.parse(fs, args), cfg.localFlags.validate()); {
	case err != nil:
		return err
	case cfg.failoverReps < 0 || cfg.failoverReps > 20:
		return errors.New("-failover-reps must be in [0, 20]")
	case cfg.failoverClients < 1:
		return errors.New("-failover-clients must be positive")
	case cfg.failoverTimeout <= 0:
		return errors.New("-failover-timeout must be positive")
	case cfg.failoverWarmup < 0:
		return errors.New("-failover-warmup must not be negative")
	}
	return nil
}
