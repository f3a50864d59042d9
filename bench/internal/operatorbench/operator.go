// Package operatorbench measures the KVStore operator against a real API
// server (controller-runtime's envtest, see internal/kubetest): how long the
// real operator binary takes from a KVStore's creation to all its children
// existing, next to how long the API server takes when a client creates
// the same objects itself (the ceiling for "make these objects"), and how
// much memory the operator process uses while it manages 100 KVStores.
//
// It is a benchmark, not a test of correctness: TestOperatorBench runs only
// with KVSTORE_OPERATOR_BENCH set, which hack/bench-operator.sh (part of
// `make bench`) does; the script writes the result into docs/benchmarks.md.
// This file runs the operator as a child process and reads its memory and
// metrics; tracker.go watches the API server, objects.go knows the
// children of a KVStore and copies them, report.go formats the result.
package operatorbench

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"sigs.k8s.io/controller-runtime/pkg/envtest"

	"kvstore.dev/kvstore/bench/internal/proc"
)

// BuildOperator compiles ./cmd/operator of the repository at root into
// dir/kvstore-operator and returns the binary's path.
func BuildOperator(ctx context.Context, root, dir string) (string, error) {
	bin := filepath.Join(dir, "kvstore-operator")
	cmd := exec.CommandContext(ctx, "go", "build", "-o", bin, "./cmd/operator")
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build ./cmd/operator: %w\n%s", err, out)
	}
	return bin, nil
}

// WriteKubeconfig adds a user in system:masters to the started env and
// writes a kubeconfig for it to dir/kubeconfig.
func WriteKubeconfig(env *envtest.Environment, dir string) (string, error) {
	user, err := env.AddUser(envtest.User{Name: "operator-bench", Groups: []string{"system:masters"}}, nil)
	if err != nil {
		return "", fmt.Errorf("add envtest user: %w", err)
	}
	kc, err := user.KubeConfig()
	if err != nil {
		return "", fmt.Errorf("kubeconfig: %w", err)
	}
	path := filepath.Join(dir, "kubeconfig")
	return path, os.WriteFile(path, kc, 0o600)
}

// Operator is a running kvstore-operator process.
type Operator struct {
	Pid         int
	ProbeAddr   string // host:port of /healthz and /readyz
	MetricsAddr string // host:port of /metrics
	LogPath     string // its stdout and stderr
	Args        []string

	p *proc.Process
}

// StartOperator starts bin against the cluster in kubeconfig with leader
// election off and the probe and metrics endpoints on free loopback ports;
// its output goes to logPath. With viaFlag the kubeconfig is passed as
// --kubeconfig, else in $KUBECONFIG (the code path an in-cluster operator
// takes: controller-runtime's config loader, no client-side rate limit).
func StartOperator(bin, kubeconfig, logPath string, viaFlag bool) (*Operator, error) {
	addrs, err := proc.FreeAddrs(2)
	if err != nil {
		return nil, err
	}
	probe, metrics := addrs[0], addrs[1]
	s := proc.Spec{Name: "the operator", Bin: bin, Log: logPath, Args: []string{"--leader-elect=false", "--metrics-bind-address=" + metrics,
		"--health-probe-bind-address=" + probe, "--log-level=info", "--log-format=json"}}
	if viaFlag {
		s.Args = append(s.Args, "--kubeconfig="+kubeconfig)
	} else {
		s.Env = []string{"KUBECONFIG=" + kubeconfig}
	}
	p, err := proc.Start(s)
	if err != nil {
		return nil, err
	}
	return &Operator{Pid: p.PID(), ProbeAddr: probe, MetricsAddr: metrics, LogPath: logPath, Args: s.Args, p: p}, nil
}

// WaitReady polls /readyz until it answers 200, the process exits or
// timeout passes.
func (o *Operator) WaitReady(timeout time.Duration) error {
	return o.p.WaitReady(context.Background(), timeout, proc.HTTP("http://"+o.ProbeAddr+"/readyz"))
}

// Stop sends SIGTERM and waits up to 15 s before killing the process; it
// fails unless the operator exits cleanly in time.
func (o *Operator) Stop() error { return o.p.Stop(15 * time.Second) }

// Metrics scrapes the operator's /metrics.
func (o *Operator) Metrics() (Metrics, error) {
	hc := &http.Client{Timeout: 5 * time.Second}
	resp, err := hc.Get("http://" + o.MetricsAddr + "/metrics")
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET /metrics: %s", resp.Status)
	}
	return ParseMetrics(resp.Body)
}

// LogSummary counts the lines of the operator's JSON log by level and
// returns up to max distinct error messages.
func (o *Operator) LogSummary(max int) (levels map[string]int, errs []string, err error) {
	f, err := os.Open(o.LogPath)
	if err != nil {
		return nil, nil, err
	}
	defer f.Close()
	levels = map[string]int{}
	seen := map[string]bool{}
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 0, 64*1024), 4*1024*1024)
	for sc.Scan() {
		line := sc.Text()
		level := "other"
		if _, rest, ok := strings.Cut(line, `"level":"`); ok {
			level, _, _ = strings.Cut(rest, `"`)
		}
		levels[level]++
		if level != "ERROR" && level != "WARN" {
			continue
		}
		msg := line
		if _, rest, ok := strings.Cut(line, `"msg":"`); ok {
			msg, _, _ = strings.Cut(rest, `"`)
		}
		if !seen[msg] && len(errs) < max {
			seen[msg] = true
			errs = append(errs, line)
		}
	}
	return levels, errs, sc.Err()
}

// Metrics are the samples of a Prometheus text exposition, keyed by
// series: the metric name with its labels as exposed, e.g.
// `rest_client_requests_total{code="201",host="...",method="POST"}`.
type Metrics map[string]float64

// ParseMetrics reads the Prometheus text format (what controller-runtime's
// metrics server sends when asked without an Accept header).
func ParseMetrics(r io.Reader) (Metrics, error) {
	m := Metrics{}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64*1024), 1024*1024)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || line[0] == '#' {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		if i < 0 {
			continue
		}
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err != nil {
			continue
		}
		m[strings.TrimSpace(line[:i])] = v
	}
	return m, sc.Err()
}

// Sum adds the samples of metric name whose labels include every
// `key="value"` pair in labels.
func (m Metrics) Sum(name string, labels ...string) float64 {
	var sum float64
	for series, v := range m {
		n, rest, _ := strings.Cut(series, "{")
		if n != name {
			continue
		}
		ok := true
		for _, l := range labels {
			ok = ok && (strings.Contains(rest, ","+l+",") || strings.HasPrefix(rest, l+",") ||
				strings.Contains(rest, ","+l+"}") || strings.HasPrefix(rest, l+"}"))
		}
		if ok {
			sum += v
		}
	}
	return sum
}

// By sums the samples of metric name grouped by the values of the labels
// keys, joined with spaces: By("x", "method", "code") gives e.g.
// {"GET 404": 3, "POST 201": 7}.
func (m Metrics) By(name string, keys ...string) map[string]float64 {
	out := map[string]float64{}
	for series, v := range m {
		n, rest, _ := strings.Cut(series, "{")
		if n != name {
			continue
		}
		labels := map[string]string{}
		for _, kv := range strings.Split(strings.TrimSuffix(rest, "}"), ",") {
			if k, val, ok := strings.Cut(kv, "="); ok {
				labels[k] = strings.Trim(val, `"`)
			}
		}
		vals := make([]string, len(keys))
		for i, k := range keys {
			vals[i] = labels[k]
		}
		out[strings.Join(vals, " ")] += v
	}
	return out
}
