package main

import (
	"errors"
	"flag"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"kvstore.dev/kvstore/bench/internal/report"
)

// config holds kvbench's command-line settings.
type config struct {
	targets      []string
	clients      []int
	judgeClients int
	duration     time.Duration
	maxOps       uint64
	opTimeout    time.Duration
	valueSize    int
	kvstoreBin   string
	etcdBin      string
	etcdConns    int
	loadValues   uint64
	loadClients  int
	loadTimeout  time.Duration
	workDir      string
	keepWorkDir  bool
	out          string
	seed         uint64
}

// parseFlags parses kvbench's flags from args (without the program name).
func parseFlags(args []string) (*config, error) {
	cfg := &config{}
	fs := flag.NewFlagSet("kvbench", flag.ContinueOnError)
	targetList := fs.String("targets", strings.Join([]string{report.BareHTTP, report.Etcd, report.KVStore}, ","), "comma-separated targets to run: "+report.BareHTTP+", "+report.Etcd+", "+report.KVStore)
	clientList := fs.String("clients", "1,16,64", "comma-separated concurrency levels")
	fs.IntVar(&cfg.judgeClients, "judge-clients", 64, "concurrency level the project targets are judged at")
	fs.DurationVar(&cfg.duration, "duration", 5*time.Second, "time bound of each PUT and GET phase")
	fs.Uint64Var(&cfg.maxOps, "max-ops", 2_000_000, "operation bound of each PUT and GET phase")
	fs.DurationVar(&cfg.opTimeout, "op-timeout", 10*time.Second, "timeout of a single operation")
	fs.IntVar(&cfg.valueSize, "value-size", 256, "value size in bytes (keys are always 16 bytes)")
	fs.StringVar(&cfg.kvstoreBin, "kvstore-bin", "bin/kvstore", "kvstore server binary")
	fs.StringVar(&cfg.etcdBin, "etcd-bin", "bin/etcd", "etcd server binary")
	fs.IntVar(&cfg.etcdConns, "etcd-conns", 1, "number of etcd client connections the clients share")
	fs.Uint64Var(&cfg.loadValues, "load-values", 1_000_000, "values loaded into a fresh kvstore before measuring its peak RSS (0 skips the phase)")
	fs.IntVar(&cfg.loadClients, "load-clients", 64, "concurrency of the bulk-load phase")
	fs.DurationVar(&cfg.loadTimeout, "load-timeout", 5*time.Minute, "time bound of the bulk-load phase")
	fs.StringVar(&cfg.workDir, "work-dir", "", "directory for data directories and logs (default $TMPDIR)")
	fs.BoolVar(&cfg.keepWorkDir, "keep-work-dir", false, "keep data directories and logs after a successful run")
	fs.StringVar(&cfg.out, "out", "docs/benchmarks.md", "markdown file whose kvbench section is replaced (empty: stdout only)")
	fs.Uint64Var(&cfg.seed, "seed", 0, "key space seed (0: random)")
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected arguments: %q", fs.Args())
	}
	var err error
	if cfg.targets, err = parseTargets(*targetList); err != nil {
		return nil, err
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
	case cfg.loadClients < 1:
		return nil, errors.New("-load-clients must be positive")
	case cfg.loadValues > 0 && cfg.loadTimeout <= 0:
		return nil, errors.New("-load-timeout must be positive")
	}
	return cfg, nil
}

// parseTargets validates a comma-separated list of the local targets.
func parseTargets(s string) ([]string, error) {
	names := make([]string, len(targets))
	for i, t := range targets {
		names[i] = t.name
	}
	return parseTargetList(s, names)
}

// parseTargetList validates a comma-separated list of names from known and
// returns them once each, in the order of known (presentation order).
func parseTargetList(s string, known []string) ([]string, error) {
	var seen []string
	for name := range strings.SplitSeq(s, ",") {
		name = strings.TrimSpace(name)
		if name == "" {
			continue
		}
		if !slices.Contains(known, name) {
			return nil, fmt.Errorf("-targets: unknown target %q (want %s)", name, strings.Join(known, ", "))
		}
		seen = append(seen, name)
	}
	var out []string
	for _, name := range known {
		if slices.Contains(seen, name) {
			out = append(out, name)
		}
	}
	if len(out) == 0 {
		return nil, errors.New("-targets: no target given")
	}
	return out, nil
}

// parseClients parses a comma-separated list of positive client counts.
func parseClients(s string) ([]int, error) {
	var out []int
	for f := range strings.SplitSeq(s, ",") {
		f = strings.TrimSpace(f)
		if f == "" {
			continue
		}
		n, err := strconv.Atoi(f)
		if err != nil || n < 1 || n > 4096 {
			return nil, fmt.Errorf("-clients: %q is not a client count in [1, 4096]", f)
		}
		if !slices.Contains(out, n) {
			out = append(out, n)
		}
	}
	if len(out) == 0 {
		return nil, errors.New("-clients: no client count given")
	}
	return out, nil
}
