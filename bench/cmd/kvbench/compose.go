package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"slices"

	"kvstore.dev/kvstore/bench/internal/keyspace"
	"kvstore.dev/kvstore/bench/internal/load"
	"kvstore.dev/kvstore/bench/internal/mdsection"
	"kvstore.dev/kvstore/bench/internal/procstat"
	"kvstore.dev/kvstore/bench/internal/report"
	"kvstore.dev/kvstore/wire"
)

// composeRun is one target at one client count while it is measured.
type composeRun struct {
	target composeTarget
	client *composeClient
	ks     keyspace.Space
	put    load.Result
	row    report.ComposeRow
}

// run benchmarks a running compose stack: for every client count,
// the PUT phases of all targets back to back, then their GET phases, and
// writes the report into the compose section of cfg.out. It starts and
// stops no process: the stack is managed by hack/bench-compose.sh.
func (cfg *composeConfig) run(ctx context.Context) error {
	env, err := loadComposeEnv(cfg)
	if err != nil {
		return err
	}
	if err := ensureSeed(&cfg.seed); err != nil {
		return err
	}
	meter, err := newPhaseMeter(cfg)
	if err != nil {
		return err
	}
	rep := report.ComposeReport{Meta: composeMeta(cfg), Targets: cfg.targets, JudgeClients: cfg.judgeClients}
	failed := false
	for level, c := range cfg.clients {
		rows, err := runComposeLevel(ctx, cfg, env, meter, level, c, &rep.Meta)
		if ctx.Err() != nil {
			return fmt.Errorf("interrupted: %w", ctx.Err())
		}
		if err != nil {
			return err
		}
		for _, row := range rows {
			failed = failed || row.Err != ""
		}
		rep.Rows = append(rep.Rows, rows...)
	}
	// Present the rows grouped by target.
	slices.SortStableFunc(rep.Rows, func(a, b report.ComposeRow) int {
		return slices.Index(cfg.targets, a.Target) - slices.Index(cfg.targets, b.Target)
	})

	return publish(rep.Markdown(), cfg.out, mdsection.Compose, unmeasured(failed), nil)
}

// runComposeLevel measures every target at c clients. A target that
// cannot be probed or measured gets a row with Err set; an error is
// returned only when ctx is cancelled.
func runComposeLevel(ctx context.Context, cfg *composeConfig, env composeEnv, meter *phaseMeter, level, c int, meta *report.ComposeMeta) ([]report.ComposeRow, error) {
	var runs []*composeRun
	defer func() {
		for _, r := range runs {
			_ = r.client.Close()
		}
	}()
	for _, name := range targetOrder(cfg.targets, level) {
		t := composeTargets[name]
		idx := slices.Index(cfg.targets, name)*len(cfg.clients) + level
		r := &composeRun{
			target: t,
			client: openComposeClient(cfg, env, t, c),
			ks:     keyspace.New(runSeed(cfg.seed, idx)),
			row:    report.ComposeRow{Target: name, Clients: c},
		}
		runs = append(runs, r)
		pr, err := r.client.probe(ctx, t)
		r.row.Protocol = pr.protocol
		if meta.AppVersion == "" {
			meta.AppVersion = pr.appVersion
		}
		if err != nil {
			r.row.Err = err.Error()
			warnf("%s, %d clients: %v", name, c, err)
		}
	}
	lc := load.Config{Clients: c, Duration: cfg.duration, MaxOps: cfg.maxOps, OpTimeout: cfg.opTimeout, MaxErrors: maxErrorsPerPhase}
	for _, phase := range []string{"PUT", "GET"} {
		for _, r := range runs {
			if r.row.Err != "" {
				continue
			}
			if err := runComposePhase(ctx, cfg, meter, lc, phase, r); err != nil {
				if ctx.Err() != nil {
					return nil, fmt.Errorf("interrupted: %w", ctx.Err())
				}
				r.row.Err = err.Error()
				warnf("%s, %d clients, %s: %v", r.row.Target, c, phase, err)
			}
		}
	}
	rows := make([]report.ComposeRow, len(runs))
	for i, r := range runs {
		rows[i] = r.row
	}
	return rows, nil
}

// runComposePhase runs the PUT or the GET phase of r and records it.
func runComposePhase(ctx context.Context, cfg *composeConfig, meter *phaseMeter, lc load.Config, phase string, r *composeRun) error {
	newOp := putOp(r.client, r.ks, cfg.valueSize)
	if phase == "GET" {
		if r.put.Issued == 0 {
			return errors.New("the PUT phase wrote no keys to read")
		}
		newOp = getOp(r.client, r.ks, cfg.valueSize, r.put.Issued, true)
	}
	res, ph, err := meter.measure(ctx, lc, newOp)
	if err != nil {
		return fmt.Errorf("%s phase: %w", phase, err)
	}
	if phase == "PUT" {
		r.put, r.row.Put = res, ph
	} else {
		r.row.Get = ph
	}
	r.row.ClientConns = r.client.dials.Load()
	infof("%s, %d clients, %s: %s ops/s (p50 %s, p99 %s, %d errors), %s",
		r.row.Target, lc.Clients, phase, report.Rate(ph.OpsPerSec()), report.Latency(ph.P50), report.Latency(ph.P99), ph.Errors,
		meter.describe(ph))
	return nil
}

// phaseMeter counts the app's TCP accepts and the CPU use of kvbench and
// the -cpu groups around a phase.
type phaseMeter struct {
	appPID int
	groups []cpuGroup // kvbench itself first; empty when CPU is not broken down
}

// newPhaseMeter checks that every pid to be measured exists now.
func newPhaseMeter(cfg *composeConfig) (*phaseMeter, error) {
	m := &phaseMeter{appPID: cfg.appPID}
	if cfg.appPID > 0 {
		if _, err := procstat.ReadTCPStats(cfg.appPID); err != nil {
			return nil, fmt.Errorf("-app-pid: %w", err)
		}
	}
	if len(cfg.cpuGroups) > 0 {
		m.groups = append([]cpuGroup{{name: "kvbench", roots: []int{os.Getpid()}}}, cfg.cpuGroups...)
		if _, err := m.expand(); err != nil {
			return nil, fmt.Errorf("-cpu: %w", err)
		}
	}
	return m, nil
}

// expand turns the groups' root pids into the processes alive now, each
// counted in the first group that reaches it.
func (m *phaseMeter) expand() ([]procstat.Group, error) {
	trees := make([][]int, len(m.groups))
	for i, g := range m.groups {
		for _, root := range g.roots {
			tree, err := procstat.Tree(root)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", g.name, err)
			}
			trees[i] = append(trees[i], tree...)
		}
	}
	out := make([]procstat.Group, len(m.groups))
	for i, pids := range disjoint(trees) {
		out[i] = procstat.Group{Name: m.groups[i].name, PIDs: pids}
	}
	return out, nil
}

// disjoint drops from every set the pids an earlier set already has, and
// duplicates within a set.
func disjoint(sets [][]int) [][]int {
	seen := map[int]bool{}
	out := make([][]int, len(sets))
	for i, set := range sets {
		out[i] = []int{}
		for _, p := range set {
			if !seen[p] {
				seen[p] = true
				out[i] = append(out[i], p)
			}
		}
	}
	return out
}

// measure runs one phase and records what it cost.
func (m *phaseMeter) measure(ctx context.Context, lc load.Config, newOp func(int) load.Op) (load.Result, report.ComposePhase, error) {
	var (
		tcp0    procstat.TCPStats
		sampler *procstat.Sampler
		err     error
	)
	if m.appPID > 0 {
		if tcp0, err = procstat.ReadTCPStats(m.appPID); err != nil {
			return load.Result{}, report.ComposePhase{}, err
		}
	}
	if len(m.groups) > 0 {
		groups, err := m.expand()
		if err != nil {
			return load.Result{}, report.ComposePhase{}, err
		}
		if sampler, err = procstat.StartShares(groups); err != nil {
			return load.Result{}, report.ComposePhase{}, err
		}
	}
	res, err := load.Run(ctx, lc, newOp)
	if err != nil {
		return res, report.ComposePhase{}, err
	}
	ph := report.ComposePhase{Summary: res.Summary, AppAccepts: -1}
	if sampler != nil {
		sh, err := sampler.Stop()
		if err != nil {
			return res, ph, err
		}
		ph.CPU = append(sh.Groups, sh.Other)
	}
	if m.appPID > 0 {
		tcp1, err := procstat.ReadTCPStats(m.appPID)
		if err != nil {
			return res, ph, err
		}
		ph.AppAccepts = int64(tcp1.PassiveOpens - tcp0.PassiveOpens)
	}
	return res, ph, nil
}

// describe renders a phase's connection and CPU figures for progress
// output.
func (m *phaseMeter) describe(ph report.ComposePhase) string {
	s := ""
	if ph.AppAccepts >= 0 {
		s = fmt.Sprintf("app accepted %d TCP connections", ph.AppAccepts)
	}
	if ph.CPU != nil {
		if s != "" {
			s += "; "
		}
		s += "CPU"
		for i, g := range m.groups {
			s += fmt.Sprintf(" %s %s", g.name, report.Percent(ph.CPU[i]))
		}
		s += " other " + report.Percent(ph.CPU[len(ph.CPU)-1])
	}
	return s
}

// composeMeta describes the run.
func composeMeta(cfg *composeConfig) report.ComposeMeta {
	m := report.ComposeMeta{Meta: collectMeta(&cfg.commonFlags, nil, "", false),
		Stack: cfg.stack, URLs: map[string]string{}, AppConns: cfg.appPID > 0}
	for _, name := range cfg.targets {
		m.URLs[name] = composeTargets[name].baseURL(cfg) + wire.PathKV + "/"
	}
	for _, g := range cfg.cpuGroups {
		m.CPUGroups = append(m.CPUGroups, g.name)
	}
	return m
}
