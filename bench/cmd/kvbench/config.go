package main

import (
	"cmp"
	"errors"
	"flag"
	"time"
)

// config holds kvbench's command-line settings.
type config struct {
	commonFlags
	localFlags
	loadValues  uint64
	loadClients int
	loadTimeout time.Duration
}

// setup parses kvbench's flags from args (without the program name).
func (cfg *config) setup(args []string) error {
	fs := flag.NewFlagSet("kvbench", flag.ContinueOnError)
	cfg.commonFlags.register(fs, flagText{targetFlag: "targets", targetHelp: "comma-separated targets to run: ", known: targetNames(),
		clients: "comma-separated concurrency levels", judged: "the project targets are",
		duration: 5 * time.Second, phases: "PUT and GET phase", section: "kvbench"})
	cfg.localFlags.register(fs, "number of etcd client connections the clients share")
	fs.Uint64Var(&cfg.loadValues, "load-values", 1_000_000, "values loaded into a fresh kvstore before measuring its peak RSS (0 skips the phase)")
	fs.IntVar(&cfg.loadClients, "load-clients", 64, "concurrency of the bulk-load phase")
	fs.DurationVar(&cfg.loadTimeout, "load-timeout", 5*time.Minute, "time bound of the bulk-load phase")
	switch err := cmp.Or(cfg.commonFlags.parse(fs, args), cfg.localFlags.validate()); {
	case err != nil:
		return err
	case cfg.loadClients < 1:
		return errors.New("-load-clients must be positive")
	case cfg.loadValues > 0 && cfg.loadTimeout <= 0:
		return errors.New("-load-timeout must be positive")
	}
	return nil
}

// parseTargets validates a comma-separated list of the local targets.
func parseTargets(s string) ([]string, error) {
	return parseTargetList("-targets", s, targetNames())
}

// targetNames lists the names of the local targets, in run order.
func targetNames() []string {
	names := make([]string, len(targets))
	for i, t := range targets {
		names[i] = t.name
	}
	return names
}
