package main

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"kvstore.dev/kvstore/bench/internal/mdsection"
)

// A scenario is one mode of kvbench: the subcommand that selects it (""
// for the default, the single-node comparison), and its run, which parses
// and validates the flags, measures, and writes the report.
type scenario struct {
	name string
	run  func(name string, args []string) int
}

// scenarios are kvbench's modes. "bare-http" is not one: it is the bare
// server that the default scenario starts as a process.
var scenarios = []scenario{
	newScenario(composeCommand, parseComposeFlags, runCompose),
	newScenario(clusterCommand, parseClusterFlags, runCluster),
	newScenario("", parseFlags, run),
}

// newScenario makes a scenario of a flag parser (which also validates)
// and a run.
func newScenario[C any](name string, parse func([]string) (C, error), run func(context.Context, C) error) scenario {
	return scenario{name: name, run: func(name string, args []string) int {
		prefix := strings.TrimSpace("kvbench " + name)
		cfg, err := parse(args)
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		if err != nil {
			fmt.Fprintf(os.Stderr, "%s: %v\n", prefix, err)
			return 2
		}
		ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
		defer stop()
		if err := run(ctx, cfg); err != nil {
			fmt.Fprintf(os.Stderr, "%s: %v\n", prefix, err)
			return 1
		}
		return 0
	}}
}

// runScenario runs the scenario args name (or the default) until it ends
// or SIGINT/SIGTERM arrives; it returns the exit status: 0, 1 when the run
// failed, 2 for bad flags.
func runScenario(args []string) int {
	if len(args) > 0 && args[0] == bareCommand {
		if err := runBare(args[1:]); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		return 0
	}
	for _, s := range scenarios {
		if s.name == "" {
			return s.run(s.name, args)
		}
		if len(args) > 0 && args[0] == s.name {
			return s.run(s.name, args[1:])
		}
	}
	return 2 // unreachable: the default scenario is last
}

// ensureSeed sets a zero key space seed to a random odd one.
func ensureSeed(seed *uint64) error {
	if *seed != 0 {
		return nil
	}
	var b [8]byte
	if _, err := rand.Read(b[:]); err != nil {
		return fmt.Errorf("seed: %w", err)
	}
	*seed = binary.LittleEndian.Uint64(b[:]) | 1
	return nil
}

// prepareRun sets a zero *seed to a random one (ensureSeed) and creates
// a fresh directory under -work-dir ("" means $TMPDIR) for a run's data
// directories and logs. The run calls done at its end, which removes the
// directory unless it failed or -keep-work-dir is set.
func (l *localFlags) prepareRun(seed *uint64, prefix string) (dir string, done func(failed bool), err error) {
	if err := ensureSeed(seed); err != nil {
		return "", nil, err
	}
	dir, err = os.MkdirTemp(l.workDir, prefix)
	if err != nil {
		return "", nil, fmt.Errorf("create work dir: %w", err)
	}
	return dir, func(failed bool) {
		if failed || l.keepWorkDir {
			infof("data directories and logs kept in %s", dir)
			return
		}
		if err := os.RemoveAll(dir); err != nil {
			warnf("remove %s: %v", dir, err)
		}
	}, nil
}

// publish prints md and, unless refuse says why not, writes it into
// section sec of the file out ("" means stdout only); then it returns
// failure, the error of a run whose report is still worth recording.
func publish(md, out string, sec mdsection.Section, refuse, failure error) error {
	fmt.Println(md)
	if refuse != nil {
		if out != "" {
			return fmt.Errorf("%w; %s left unchanged", refuse, out)
		}
		return refuse
	}
	if out != "" {
		if err := sec.WriteFile(out, md); err != nil {
			return err
		}
		infof("updated the section %s of %s", sec.Begin, out)
	}
	return failure
}

// unmeasured is the reason a run in which some target failed leaves the
// report file alone.
func unmeasured(failed bool) error {
	if failed {
		return errors.New("some targets could not be measured")
	}
	return nil
}
