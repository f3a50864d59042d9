package main

import (
	"errors"
	"flag"
	"fmt"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"kvstore.dev/kvstore/bench/internal/report"
)

// composeCommand is the subcommand that benchmarks a running compose
// stack: the API through nginx over HTTPS against the app's own port.
const composeCommand = "compose"

// cpuGroup is a named set of process trees whose CPU use is reported as
// one column, e.g. nginx's master process and its workers.
type cpuGroup struct {
	name  string
	roots []int
}

// cpuGroupsFlag collects repeated -cpu NAME=PID[,PID...] flags.
type cpuGroupsFlag []cpuGroup

// String implements flag.Value.
func (f *cpuGroupsFlag) String() string {
	var parts []string
	for _, g := range *f {
		pids := make([]string, len(g.roots))
		for i, p := range g.roots {
			pids[i] = strconv.Itoa(p)
		}
		parts = append(parts, g.name+"="+strings.Join(pids, ","))
	}
	return strings.Join(parts, " ")
}

// Set implements flag.Value.
func (f *cpuGroupsFlag) Set(s string) error {
	g, err := parseCPUGroup(s)
	if err != nil {
		return err
	}
	for _, o := range *f {
		if o.name == g.name {
			return fmt.Errorf("CPU group %q given twice", g.name)
		}
	}
	*f = append(*f, g)
	return nil
}

// parseCPUGroup parses NAME=PID[,PID...]. The names kvbench and other
// are taken by the report's own columns.
func parseCPUGroup(s string) (cpuGroup, error) {
	name, list, ok := strings.Cut(s, "=")
	name = strings.TrimSpace(name)
	if !ok || name == "" {
		return cpuGroup{}, fmt.Errorf("CPU group %q: want NAME=PID[,PID...]", s)
	}
	if name == "kvbench" || name == "other" || strings.ContainsAny(name, "|`") {
		return cpuGroup{}, fmt.Errorf("CPU group %q: the name %q is reserved or unprintable", s, name)
	}
	g := cpuGroup{name: name}
	for f := range strings.SplitSeq(list, ",") {
		f = strings.TrimSpace(f)
		if f == "" {
			continue
		}
		pid, err := strconv.Atoi(f)
		if err != nil || pid < 1 {
			return cpuGroup{}, fmt.Errorf("CPU group %q: %q is not a pid", s, f)
		}
		if !slices.Contains(g.roots, pid) {
			g.roots = append(g.roots, pid)
		}
	}
	if len(g.roots) == 0 {
		return cpuGroup{}, fmt.Errorf("CPU group %q: no pid given", s)
	}
	return g, nil
}

// composeConfig holds the settings of "kvbench compose".
type composeConfig struct {
	httpsURL  string // nginx, e.g. https://localhost:18444
	directURL string // the app's published port, e.g. http://127.0.0.1:18090
	caFile    string
	tokenFile string
	commonFlags
	appPID    int
	cpuGroups []cpuGroup
	stack     string
}

// composeTargetNames lists the compose targets in presentation order.
var composeTargetNames = []string{report.Direct, report.NginxHTTPS, report.NginxHTTPSH1}

// setup parses the flags of "kvbench compose" from args (after the
// subcommand).
func (cfg *composeConfig) setup(args []string) error {
	fs := flag.NewFlagSet("kvbench "+composeCommand, flag.ContinueOnError)
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "Usage: kvbench %s -ca FILE -token-file FILE [flags]\n\n"+
			"Drives a running compose stack (see hack/bench-compose.sh): the API through nginx\n"+
			"over HTTPS against the app's own port, and writes the compose section of -out.\n\n", composeCommand)
		fs.PrintDefaults()
	}
	fs.StringVar(&cfg.httpsURL, "https-url", "https://localhost:18444", "nginx's HTTPS origin (scheme, host and port)")
	fs.StringVar(&cfg.directURL, "direct-url", "http://127.0.0.1:18090", "the app's own HTTP origin, published by deploy/compose/bench.override.yaml")
	fs.StringVar(&cfg.caFile, "ca", "", "PEM file of the CA that signed nginx's certificate (required)")
	fs.StringVar(&cfg.tokenFile, "token-file", "", "file holding an admin token of the app (required)")
	cfg.commonFlags.register(fs, flagText{targetFlag: "targets", targetHelp: "comma-separated targets: ", known: composeTargetNames, clients: "comma-separated concurrency levels", judged: "the requirement is",
		duration: 5 * time.Second, phases: "PUT and GET phase", section: "compose", maxOpsBits: 40})
	fs.IntVar(&cfg.appPID, "app-pid", 0, "host pid of a process in the app's network namespace, to count the TCP connections the app accepts (0: not counted)")
	var groups cpuGroupsFlag
	fs.Var(&groups, "cpu", "NAME=PID[,PID...]: report the CPU use of these processes and their descendants as NAME (repeatable)")
	fs.StringVar(&cfg.stack, "stack", "", "description of the stack for the report (images, versions)")
	if err := cfg.commonFlags.parse(fs, args); err != nil {
		return err
	}
	cfg.cpuGroups = groups
	var err error
	if cfg.httpsURL, err = parseOrigin("-https-url", cfg.httpsURL, "https"); err != nil {
		return err
	}
	if cfg.directURL, err = parseOrigin("-direct-url", cfg.directURL, "http"); err != nil {
		return err
	}
	switch {
	case cfg.caFile == "" && usesNginx(cfg.targets):
		return errors.New("-ca is required")
	case cfg.tokenFile == "":
		return errors.New("-token-file is required")
	case cfg.appPID < 0:
		return errors.New("-app-pid must not be negative")
	}
	return nil
}

// usesNginx reports whether any target goes through nginx.
func usesNginx(targets []string) bool {
	return slices.ContainsFunc(targets, func(t string) bool { return t != report.Direct })
}

// parseOrigin checks that raw is an origin URL with the given scheme
// (nothing after the port but an optional "/") and returns it without a
// trailing slash.
func parseOrigin(flagName, raw, scheme string) (string, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return "", fmt.Errorf("%s: %w", flagName, err)
	}
	switch {
	case u.Scheme != scheme:
		return "", fmt.Errorf("%s: %q: want a %s:// URL", flagName, raw, scheme)
	case u.Host == "" || u.Hostname() == "":
		return "", fmt.Errorf("%s: %q has no host", flagName, raw)
	case (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Fragment != "" || u.User != nil:
		return "", fmt.Errorf("%s: %q: want only scheme, host and port", flagName, raw)
	}
	return scheme + "://" + u.Host, nil
}

// targetOrder returns the order in which targets run at the level-th
// client count: as given at even levels, reversed at odd ones, so that
// no target is always measured first (on a store that grows, or on a
// machine that warms up).
func targetOrder(targets []string, level int) []string {
	out := slices.Clone(targets)
	if level%2 == 1 {
		slices.Reverse(out)
	}
	return out
}

// runSeed derives the key space seed of one target at one client count
// (run is unique per pair) from the run's seed. Seeds of different runs
// differ only at bit 40 and above, while fewer than 2^40 sequence numbers
// are used, so no two runs ever write the same key (keyspace.Key mixes
// seq XOR seed): every PUT creates a key in the shared store.
func runSeed(seed uint64, run int) uint64 {
	return seed ^ uint64(run+1)<<40
}
