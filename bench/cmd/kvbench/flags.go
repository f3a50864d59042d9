package main

import (
	"errors"
	"flag"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"
)

// commonFlags are the flags of every kvbench mode: the targets, the
// client counts, the bounds of a phase, the value size, the report file
// and the seed. Each mode embeds them in its config, defines them on its
// FlagSet with register, and parses and validates them with parse.
type commonFlags struct {
	targets      []string
	clients      []int
	judgeClients int
	duration     time.Duration
	maxOps       uint64
	opTimeout    time.Duration
	valueSize    int
	out          string
	seed         uint64

	text       flagText
	targetList string // the target flag as given
	clientList string // -clients as given
}

// flagText is how one mode names, words and bounds the common flags.
type flagText struct {
	targetFlag string        // the name of the target flag: targets, or systems
	targetHelp string        // its help, before the list of known
	known      []string      // the targets, in presentation order (all by default)
	clients    string        // help of -clients
	judged     string        // what -judge-clients is the level of
	duration   time.Duration // default of -duration
	phases     string        // the phases -duration and -max-ops bound
	section    string        // the section of -out the mode replaces
	maxOpsBits uint          // -max-ops must stay below 2^maxOpsBits (0: no bound)
}

// register defines the common flags on fs.
func (c *commonFlags) register(fs *flag.FlagSet, t flagText) {
	c.text = t
	fs.StringVar(&c.targetList, t.targetFlag, strings.Join(t.known, ","), t.targetHelp+strings.Join(t.known, ", "))
	fs.StringVar(&c.clientList, "clients", "1,16,64", t.clients)
	fs.IntVar(&c.judgeClients, "judge-clients", 64, "concurrency level "+t.judged+" judged at")
	fs.DurationVar(&c.duration, "duration", t.duration, "time bound of each "+t.phases)
	fs.Uint64Var(&c.maxOps, "max-ops", 2_000_000, "operation bound of each "+t.phases)
	fs.DurationVar(&c.opTimeout, "op-timeout", 10*time.Second, "timeout of a single operation")
	fs.IntVar(&c.valueSize, "value-size", 256, "value size in bytes (keys are always 16 bytes)")
	fs.StringVar(&c.out, "out", "docs/benchmarks.md", "markdown file whose "+t.section+" section is replaced (empty: stdout only)")
	fs.Uint64Var(&c.seed, "seed", 0, "key space seed (0: random)")
}

// parse parses args with fs, on which register defined the common flags,
// refuses arguments after the flags, and validates the common flags; an
// error names the flag.
func (c *commonFlags) parse(fs *flag.FlagSet, args []string) error {
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments: %q", fs.Args())
	}
	var err error
	if c.targets, err = parseTargetList("-"+c.text.targetFlag, c.targetList, c.text.known); err != nil {
		return err
	}
	if c.clients, err = parseClients(c.clientList); err != nil {
		return err
	}
	switch {
	case c.duration <= 0:
		return errors.New("-duration must be positive")
	case c.text.maxOpsBits > 0 && (c.maxOps < 1 || c.maxOps >= 1<<c.text.maxOpsBits):
		return fmt.Errorf("-max-ops must be in [1, 2^%d)", c.text.maxOpsBits)
	case c.maxOps < 1:
		return errors.New("-max-ops must be positive")
	case c.opTimeout <= 0:
		return errors.New("-op-timeout must be positive")
	case c.valueSize < 1 || c.valueSize > 1<<20:
		return errors.New("-value-size must be in [1, 1MiB]")
	}
	return nil
}

// localFlags are the flags of the modes that start their own servers: the
// binaries, the etcd client connections and the work directory.
type localFlags struct {
	kvstoreBin  string
	etcdBin     string
	etcdConns   int
	workDir     string
	keepWorkDir bool
}

// register defines the local flags on fs, with etcdConns as the help of
// -etcd-conns.
func (l *localFlags) register(fs *flag.FlagSet, etcdConns string) {
	fs.StringVar(&l.kvstoreBin, "kvstore-bin", "bin/kvstore", "kvstore server binary")
	fs.StringVar(&l.etcdBin, "etcd-bin", "bin/etcd", "etcd server binary")
	fs.IntVar(&l.etcdConns, "etcd-conns", 1, etcdConns)
	fs.StringVar(&l.workDir, "work-dir", "", "directory for data directories and logs (default $TMPDIR)")
	fs.BoolVar(&l.keepWorkDir, "keep-work-dir", false, "keep data directories and logs after a successful run")
}

// validate checks the local flags; the error names the flag.
func (l *localFlags) validate() error {
	if l.etcdConns < 1 {
		return errors.New("-etcd-conns must be positive")
	}
	return nil
}

// parseTargetList validates s, the comma-separated value of the flag
// flagName, as names from known and returns them once each, in the order
// of known (presentation order).
func parseTargetList(flagName, s string, known []string) ([]string, error) {
	var seen []string
	for name := range strings.SplitSeq(s, ",") {
		name = strings.TrimSpace(name)
		if name == "" {
			continue
		}
		if !slices.Contains(known, name) {
			return nil, fmt.Errorf("%s: unknown target %q (want %s)", flagName, name, strings.Join(known, ", "))
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
		return nil, fmt.Errorf("%s: no target given", flagName)
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
