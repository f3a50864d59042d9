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
	"runtime"
	"slices"
	"strings"
	"syscall"
	"time"

	"kvstore.dev/kvstore/bench/internal/keyspace"
	"kvstore.dev/kvstore/bench/internal/mdsection"
	"kvstore.dev/kvstore/bench/internal/procstat"
	"kvstore.dev/kvstore/bench/internal/report"
)

// A scenario is one mode of kvbench, held by its config: setup defines,
// parses and validates the mode's flags (an error names the flag); run
// measures, prints the report and writes it into the mode's section of
// -out (publish).
type scenario interface {
	setup(args []string) error
	run(ctx context.Context) error
}

// scenarios makes kvbench's modes by subcommand; "" is the default, the
// single-node comparison. "bare-http" is not one: it is the bare server
// that the default scenario starts as a process.
var scenarios = map[string]func() scenario{
	"":             func() scenario { return &config{} },
	composeCommand: func() scenario { return &composeConfig{} },
	clusterCommand: func() scenario { return &clusterConfig{} },
	backupCommand:  func() scenario { return &backupConfig{} },
}

// runScenario runs the scenario args names (or the default) until it ends
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
	name := ""
	if len(args) > 0 && args[0] != "" && scenarios[args[0]] != nil {
		name, args = args[0], args[1:]
	}
	prefix, s := strings.TrimSpace("kvbench "+name), scenarios[name]()
	err := s.setup(args)
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "%s: %v\n", prefix, err)
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := s.run(ctx); err != nil {
		fmt.Fprintf(os.Stderr, "%s: %v\n", prefix, err)
		return 1
	}
	return 0
}

// collectMeta describes a run of a mode with the common flags c and, for
// a mode that starts servers (l not nil), its binaries and its work
// directory; the kvstore binary's Go version is read when a target or
// kvstore (the bulk load) needs the binary.
func collectMeta(c *commonFlags, l *localFlags, work string, kvstore bool) report.Meta {
	m := report.Meta{Command: shellQuote(os.Args), Wrapper: os.Getenv(wrapperEnv), Date: time.Now(),
		NProc: runtime.NumCPU(), CPUModel: procstat.CPUModel(), GoVersion: runtime.Version(), LoadAvg: procstat.LoadAvg(),
		Duration: c.duration, MaxOps: c.maxOps, KeySize: keyspace.KeySize, ValueSize: c.valueSize}
	if l != nil {
		m.DataFS, m.EtcdConns = fsType(work), l.etcdConns
		if kvstore || slices.Contains(c.targets, report.KVStore) {
			m.KVStoreGo = binaryGoVersion(l.kvstoreBin)
		}
		if slices.Contains(c.targets, report.Etcd) {
			m.EtcdVersion = etcdVersion(l.etcdBin)
		}
	}
	return m
}

// checkBinaries fails early if the binary of one of targets is missing.
func (l *localFlags) checkBinaries(targets []string) error {
	bins := map[string]string{report.KVStore: l.kvstoreBin, report.KVStoreMTLS: l.kvstoreBin, report.Etcd: l.etcdBin}
	for _, name := range targets {
		if bin, ok := bins[name]; ok {
			if _, err := os.Stat(bin); err != nil {
				return fmt.Errorf("%s binary: %w", name, err)
			}
		}
	}
	return nil
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
