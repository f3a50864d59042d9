package report

import (
	"fmt"
	"strings"
	"time"

	"kvstore.dev/kvstore/bench/internal/stats"
)

// Targets of the compose benchmark ("kvbench compose").
const (
	// Direct is the app's own port, published on loopback by
	// deploy/compose/bench.override.yaml: HTTP/1.1 keep-alive.
	Direct = "direct"
	// NginxHTTPS is nginx over TLS with HTTP/2, as a browser talks to it.
	NginxHTTPS = "nginx-https"
	// NginxHTTPSH1 is nginx over TLS with HTTP/1.1 keep-alive.
	NginxHTTPSH1 = "nginx-https-h1"
)

// NoisyComposeOther is the share of the machine's CPU capacity used
// outside kvbench and the measured groups above which a compose run is
// flagged as noisy. It is higher than NoisyBackground because the
// kernel's networking for the extra hops lands there too.
const NoisyComposeOther = 0.10

// GoalProxiedVsDirect is the share of the direct throughput the path
// through nginx must keep, for PUT and for GET.
const GoalProxiedVsDirect = 0.6

// ComposeMeta describes how and where a compose benchmark run was made.
type ComposeMeta struct {
	Meta
	Stack      string // free-form description of the stack (images, versions)
	AppVersion string // as reported by the app's /api/v1/status
	// URLs maps each target to the base URL it was driven at.
	URLs map[string]string
	// CPUGroups names the process groups whose CPU use was measured
	// besides kvbench itself (empty: CPU was not broken down).
	CPUGroups []string
	// AppConns is true when the app's TCP accepts were counted.
	AppConns bool
}

// ComposePhase is one PUT or GET phase of the compose benchmark.
type ComposePhase struct {
	stats.Summary
	// AppAccepts is the number of TCP connections the app's network
	// namespace accepted during the phase; -1 when not measured.
	AppAccepts int64
	// CPU is the share (0..1) of the machine's CPU capacity used by
	// kvbench, then by each of ComposeMeta.CPUGroups, then by everything
	// else; nil when not measured.
	CPU []float64
}

// Busy returns the share of the machine that was busy during the phase,
// or -1 when CPU was not measured.
func (p ComposePhase) Busy() float64 {
	if p.CPU == nil {
		return -1
	}
	sum := 0.0
	for _, s := range p.CPU {
		sum += s
	}
	return sum
}

// CPUPerOp returns the machine's busy CPU time per successful operation,
// or 0 when it is unknown.
func (p ComposePhase) CPUPerOp(nproc int) time.Duration {
	busy := p.Busy()
	if busy < 0 || p.Ops == 0 || nproc < 1 {
		return 0
	}
	return time.Duration(busy * float64(nproc) * float64(p.Elapsed) / float64(p.Ops))
}

// ComposeRow is the result of one target at one client count.
type ComposeRow struct {
	Target   string
	Clients  int
	Protocol string // as negotiated, e.g. "HTTP/2.0, TLS 1.3"
	Put, Get ComposePhase
	// ClientConns is the number of TCP connections kvbench dialled to
	// the target for the probe and both phases. Over HTTP/2 it can exceed
	// the connections used: when nginx ends a connection (GOAWAY after
	// keepalive_requests), every waiting request dials and one connection
	// is kept.
	ClientConns int64
	// Err is set when the target could not be measured.
	Err string
}

// ComposeReport is everything one "kvbench compose" run produced.
type ComposeReport struct {
	Meta ComposeMeta
	// Targets lists the targets in the order they are presented.
	Targets []string
	Rows    []ComposeRow
	// JudgeClients is the client count the requirement is judged at.
	JudgeClients int
}

// Find returns the row for target at clients, if present and successful.
func (r ComposeReport) Find(target string, clients int) (ComposeRow, bool) {
	for _, row := range r.Rows {
		if row.Target == target && row.Clients == clients && row.Err == "" {
			return row, true
		}
	}
	return ComposeRow{}, false
}

// proxiedRatio divides a proxied throughput num by the direct one den;
// text renders it for a verdict. ok is false (and text says why) when den
// is not positive.
func proxiedRatio(num, den float64) (q float64, text string, ok bool) {
	if den <= 0 {
		return 0, "not measured (direct did 0 ops/s)", false
	}
	q = num / den
	return q, fmt.Sprintf("%.3f× (%s / %s ops/s)", q, Rate(num), Rate(den)), true
}

// Verdicts judges every nginx target against direct at JudgeClients, PUT
// then GET. The requirement is judged on NginxHTTPS; NginxHTTPSH1 is
// judged against the same goal for information.
func (r ComposeReport) Verdicts() []Verdict {
	c := r.JudgeClients
	direct, okDirect := r.Find(Direct, c)
	var out []Verdict
	for _, target := range r.Targets {
		if target == Direct {
			continue
		}
		goal := fmt.Sprintf("≥ %.1f×", GoalProxiedVsDirect)
		if target != NginxHTTPS {
			goal += " (for information)"
		}
		row, okRow := r.Find(target, c)
		for _, ph := range []struct {
			name     string
			num, den ComposePhase
		}{{"PUT", row.Put, direct.Put}, {"GET", row.Get, direct.Get}} {
			v := Verdict{Name: fmt.Sprintf("%s %s ÷ %s %s", target, ph.name, Direct, ph.name), Goal: goal}
			switch {
			case !okRow:
				v.Measured = fmt.Sprintf("not measured (no %s result at %d clients)", target, c)
			case !okDirect:
				v.Measured = fmt.Sprintf("not measured (no %s result at %d clients)", Direct, c)
			default:
				q, text, ok := proxiedRatio(ph.num.OpsPerSec(), ph.den.OpsPerSec())
				v.Measured, v.Met = text, ok && q >= GoalProxiedVsDirect
			}
			out = append(out, v)
		}
	}
	return out
}

// Markdown renders the report as the body of the compose section of
// docs/benchmarks.md (without the markers). The same text is printed to
// stdout.
func (r ComposeReport) Markdown() string {
	var b strings.Builder
	m := r.Meta
	b.WriteString("### Latest compose run\n\n" + m.commandLine())
	fmt.Fprintf(&b, "- Date: %s\n", m.Date.UTC().Format(time.RFC3339))
	fmt.Fprintf(&b, "- Machine: %d CPUs (`nproc`), %s; kvbench, docker-proxy, nginx and the app all share them\n", m.NProc, m.CPUModel)
	b.WriteString(m.goLine()) // KVStoreGo is empty: the app runs in its image
	if m.Stack != "" {
		fmt.Fprintf(&b, "- Stack: %s\n", m.Stack)
	}
	if m.AppVersion != "" {
		fmt.Fprintf(&b, "- App version (`/api/v1/status`): %s\n", m.AppVersion)
	}
	if m.LoadAvg != "" {
		fmt.Fprintf(&b, "- Load average at start: %s\n", m.LoadAvg)
	}
	var urls []string
	for _, t := range r.Targets {
		if u, ok := m.URLs[t]; ok {
			urls = append(urls, fmt.Sprintf("%s = `%s`", t, u))
		}
	}
	if len(urls) > 0 {
		fmt.Fprintf(&b, "- Targets: %s\n", strings.Join(urls, ", "))
	}
	fmt.Fprintf(&b, "- Each phase: %s or %s operations, whichever ends first; %d-byte keys, %d-byte values; closed loop; at each client count the targets' PUT phases run back to back, then their GET phases, in an order reversed at every other client count\n",
		m.Duration, Count(m.MaxOps), m.KeySize, m.ValueSize)

	b.WriteString("\n| Target | Protocol | Clients | TCP dials | PUT ops/s | PUT p50 | PUT p99 | GET ops/s | GET p50 | GET p99 | Errors |\n")
	b.WriteString("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---|\n")
	for _, row := range r.Rows {
		if row.Err != "" {
			fmt.Fprintf(&b, "| %s | %s | %d | | failed: %s | | | | | | |\n", row.Target, row.Protocol, row.Clients, cell(row.Err))
			continue
		}
		fmt.Fprintf(&b, "| %s | %s | %d | %d | %s | %s | %s | %s | %s | %s | %s |\n",
			row.Target, row.Protocol, row.Clients, row.ClientConns,
			Rate(row.Put.OpsPerSec()), Latency(row.Put.P50), Latency(row.Put.P99),
			Rate(row.Get.OpsPerSec()), Latency(row.Get.P50), Latency(row.Get.P99),
			composeErrors(row))
	}

	if vs := r.Verdicts(); len(vs) > 0 {
		fmt.Fprintf(&b, "\n**Requirement** (judged at %d clients; the path through nginx keeps at least %.0f%% of the direct throughput):\n\n", r.JudgeClients, GoalProxiedVsDirect*100)
		b.WriteString("| Ratio | Measured | Goal | Met |\n|---|---|---|:---:|\n")
		for _, v := range vs {
			fmt.Fprintf(&b, "| %s | %s | %s | %s |\n", v.Name, cell(v.Measured), v.Goal, v.Mark())
		}
	}

	if ratios := r.ratioTable(); ratios != "" {
		b.WriteString("\nnginx ÷ direct throughput at every client count:\n\n")
		b.WriteString(ratios)
	}

	if m.AppConns || len(m.CPUGroups) > 0 {
		r.resources(&b)
	}
	if other := r.maxOther(); other > NoisyComposeOther {
		fmt.Fprintf(&b, "\n> ⚠️ CPU outside kvbench and the measured processes reached %s of the machine in one phase; treat these numbers as noisy and rerun on an idle machine.\n", Percent(other))
	}

	var notes []string
	for _, row := range r.Rows {
		notes = append(notes, firstErrors(row.Target, row.Clients, row.Put.FirstError, row.Get.FirstError)...)
	}
	return b.String() + errorList(notes)
}

// ratioTable renders PUT and GET ratios of every nginx target to direct
// at every client count, or "" when there is nothing to compare.
func (r ComposeReport) ratioTable() string {
	var clients []int
	for _, row := range r.Rows {
		if row.Target == Direct && row.Err == "" {
			clients = append(clients, row.Clients)
		}
	}
	var b strings.Builder
	for _, target := range r.Targets {
		if target == Direct {
			continue
		}
		for _, c := range clients {
			direct, _ := r.Find(Direct, c)
			row, ok := r.Find(target, c)
			if !ok {
				continue
			}
			put, _, okPut := proxiedRatio(row.Put.OpsPerSec(), direct.Put.OpsPerSec())
			get, _, okGet := proxiedRatio(row.Get.OpsPerSec(), direct.Get.OpsPerSec())
			if b.Len() == 0 {
				b.WriteString("| Target | Clients | PUT ÷ direct | GET ÷ direct |\n|---|---:|---:|---:|\n")
			}
			fmt.Fprintf(&b, "| %s | %d | %s | %s |\n", target, c, ratioCell(put, okPut), ratioCell(get, okGet))
		}
	}
	return b.String()
}

func ratioCell(q float64, ok bool) string {
	if !ok {
		return "n/a"
	}
	return fmt.Sprintf("%.2f×", q)
}

// resources renders, per phase, the TCP connections the app accepted and
// where the machine's CPU went.
func (r ComposeReport) resources(b *strings.Builder) {
	m := r.Meta
	b.WriteString("\n**Connections and CPU** per phase")
	if len(m.CPUGroups) > 0 {
		b.WriteString(" (CPU as a share of the whole machine's capacity)")
	}
	b.WriteString(":\n\n| Target | Clients | Phase | ops/s |")
	sep := "|---|---:|---|---:|"
	if m.AppConns {
		b.WriteString(" App TCP accepts |")
		sep += "---:|"
	}
	if len(m.CPUGroups) > 0 {
		b.WriteString(" kvbench |")
		for _, g := range m.CPUGroups {
			fmt.Fprintf(b, " %s |", g)
		}
		b.WriteString(" other | Machine CPU per op |")
		sep += strings.Repeat("---:|", len(m.CPUGroups)+3)
	}
	b.WriteString("\n" + sep + "\n")
	for _, row := range r.Rows {
		if row.Err != "" {
			continue
		}
		for _, ph := range []struct {
			name string
			p    ComposePhase
		}{{"PUT", row.Put}, {"GET", row.Get}} {
			fmt.Fprintf(b, "| %s | %d | %s | %s |", row.Target, row.Clients, ph.name, Rate(ph.p.OpsPerSec()))
			if m.AppConns {
				if ph.p.AppAccepts < 0 {
					b.WriteString(" n/a |")
				} else {
					fmt.Fprintf(b, " %d |", ph.p.AppAccepts)
				}
			}
			if len(m.CPUGroups) > 0 {
				if len(ph.p.CPU) != len(m.CPUGroups)+2 {
					b.WriteString(strings.Repeat(" n/a |", len(m.CPUGroups)+3))
				} else {
					for _, s := range ph.p.CPU {
						fmt.Fprintf(b, " %s |", Percent(s))
					}
					fmt.Fprintf(b, " %s |", Latency(ph.p.CPUPerOp(m.NProc)))
				}
			}
			b.WriteString("\n")
		}
	}
	if m.AppConns {
		b.WriteString("\n\"App TCP accepts\" counts the connections the app's network namespace accepted during the phase (`PassiveOpens` of its `/proc/PID/net/snmp`), the app's health check included (one every 5 s). Through nginx it is the number of upstream connections nginx opened: a handful means its keep-alive pool is reused, one per request would mean it is not.\n")
	}
	if len(m.CPUGroups) > 0 {
		b.WriteString("\n\"other\" is every other busy CPU: other processes on the machine and kernel work not charged to a process, such as loopback and bridge networking in soft interrupts. \"Machine CPU per op\" is all busy CPU time divided by the phase's successful operations: what one request costs the machine end to end, load generator included.\n")
	}
}

// maxOther returns the largest share of "other" CPU of any phase, 0 when
// CPU was not measured.
func (r ComposeReport) maxOther() float64 {
	most := 0.0
	for _, row := range r.Rows {
		for _, p := range []ComposePhase{row.Put, row.Get} {
			if len(p.CPU) > 0 && row.Err == "" {
				most = max(most, p.CPU[len(p.CPU)-1])
			}
		}
	}
	return most
}

func composeErrors(row ComposeRow) string {
	if row.Put.Errors == 0 && row.Get.Errors == 0 {
		return "0"
	}
	return fmt.Sprintf("PUT %d, GET %d", row.Put.Errors, row.Get.Errors)
}
