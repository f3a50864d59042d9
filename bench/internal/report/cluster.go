package report

import (
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"kvstore.dev/kvstore/bench/internal/stats"
)

// How the clients of a three-node run reach the cluster.
const (
	// Spread: every client sends its requests to the nodes in turn
	// (kvstore: round robin per client over the three HTTP endpoints, so
	// two writes in three reach a follower and are forwarded; etcd: the
	// client's own round-robin balancer over the three endpoints).
	Spread = "spread"
	// LeaderOnly: every client talks to the leader.
	LeaderOnly = "leader"
)

// ProbeInterval is how often kvbench sends a probe write after killing a
// leader.
const ProbeInterval = 10 * time.Millisecond

// GoalClusterPutVsEtcd is the share of a three-member etcd's PUT
// throughput a three-node kvstore must reach, clients spread over the
// nodes.
const GoalClusterPutVsEtcd = 1.2

// GoalMTLSPutVsPlain is the share of the plain three-node kvstore's PUT
// throughput the same cluster must keep with mutual TLS on the peer port
// (issue 13: mTLS may cost at most 10%).
const GoalMTLSPutVsPlain = 0.9

// ClusterMeta describes how and where a three-node run was made.
type ClusterMeta struct {
	Meta
	LoadEnd string // Meta.LoadAvg at the end
	Took    time.Duration
	Nodes   int
	// Failover settings.
	FailoverClients int
	FailoverReps    int
	FailoverTimeout time.Duration
}

// ClusterRow is one system, reached one way, at one client count, on a
// fresh cluster.
type ClusterRow struct {
	System  string // KVStore or Etcd
	Mode    string // Spread or LeaderOnly
	Clients int
	Put     stats.Summary
	// Leader names the node that led during the run.
	Leader string
	// Elections is how far the leader's Raft term moved during the PUT
	// phase: with no fault injected, every election is a false one.
	Elections int
	// CPU shares (0..1 of the machine) during the PUT phase: the leader
	// process, the two followers together, kvbench, everything else.
	CPULeader, CPUFollowers, CPUKVBench, CPUOther float64
	// Checked and Mismatched count acknowledged writes read back
	// (linearizably) on every node after the phase.
	Checked, Mismatched int
	// Err is set when the row could not be measured.
	Err string
}

// FailoverRep is one kill of the leader.
type FailoverRep struct {
	Killed    string // node killed (the leader)
	NewLeader string // node leading afterwards, if known
	// Took is from the SIGKILL to the acknowledgement of the first write
	// that was sent after the killed process was gone; 0 with Err set
	// when no write was acknowledged in time.
	Took time.Duration
	// LoadResumed is from the SIGKILL to the acknowledgement of the first
	// write a load client sent after the killed process was gone (load
	// clients stuck on writes sent before may take longer than Took, which
	// also counts probe writes); 0 when it did not happen in time.
	LoadResumed time.Duration
	// Errors counts the load clients' failed writes between the kill and
	// their first acknowledged write after it, by kind.
	Errors map[string]int
	// Rejoined is from restarting the killed node until it was ready and
	// had caught up with the leader.
	Rejoined time.Duration
	Err      string
}

// Failover is the failover measurement of one system.
type Failover struct {
	System  string
	Clients int
	Reps    []FailoverRep
	// Acked is the number of writes acknowledged during the whole
	// measurement; Checked of them were read back linearizably after the
	// last restart, Lost of those were missing or wrong.
	Acked, Checked, Lost int
	// OtherErrors counts failed writes outside the windows between a kill
	// and the first acknowledgement (while the killed node was down, or
	// during steady state), by kind.
	OtherErrors map[string]int
	// FirstLost describes the first lost write, if any.
	FirstLost string
	Err       string
}

// Median returns the median failover time over all reps and how many
// reps succeeded. A failed rep counts as slower than every successful
// one, so ok is false when the median falls on a failed rep.
func (f Failover) Median() (median time.Duration, succeeded int, ok bool) {
	const failed = time.Duration(1<<63 - 1)
	all := make([]time.Duration, len(f.Reps))
	for i, r := range f.Reps {
		all[i] = failed
		if r.Err == "" {
			all[i] = r.Took
			succeeded++
		}
	}
	n := len(all)
	if n == 0 {
		return 0, 0, false
	}
	slices.Sort(all)
	lo, hi := all[(n-1)/2], all[n/2]
	if hi == failed {
		return 0, succeeded, false
	}
	return lo + (hi-lo)/2, succeeded, true
}

// ClusterReport is everything one "kvbench cluster" run produced.
type ClusterReport struct {
	Meta      ClusterMeta
	Rows      []ClusterRow
	Failovers []Failover
	// JudgeClients is the client count the target is judged at.
	JudgeClients int
}

// Find returns the successful row of system in mode at clients.
func (r ClusterReport) Find(system, mode string, clients int) (ClusterRow, bool) {
	for _, row := range r.Rows {
		if row.System == system && row.Mode == mode && row.Clients == clients && row.Err == "" {
			return row, true
		}
	}
	return ClusterRow{}, false
}

// Verdict judges kvstore's three-node PUT throughput against etcd's, both
// with the clients spread over the nodes.
func (r ClusterReport) Verdict() Verdict {
	c := r.JudgeClients
	v := Verdict{Name: "three-node kvstore PUT / three-member etcd PUT (clients spread over the nodes)", Goal: fmt.Sprintf("≥ %.1f×", GoalClusterPutVsEtcd)}
	kv, okKV := r.Find(KVStore, Spread, c)
	et, okEt := r.Find(Etcd, Spread, c)
	switch {
	case !okKV:
		v.Measured = fmt.Sprintf("not measured (no kvstore result at %d clients)", c)
	case !okEt:
		v.Measured = fmt.Sprintf("not measured (no etcd result at %d clients)", c)
	case et.Put.OpsPerSec() <= 0:
		v.Measured = "not measured (etcd did 0 ops/s)"
	case kv.Mismatched > 0:
		v.Measured = fmt.Sprintf("%.3f×, but %d acknowledged kvstore writes did not read back", kv.Put.OpsPerSec()/et.Put.OpsPerSec(), kv.Mismatched)
	default:
		q := kv.Put.OpsPerSec() / et.Put.OpsPerSec()
		v.Measured = fmt.Sprintf("%.3f× (%s / %s ops/s; p99 %s vs %s)", q, Rate(kv.Put.OpsPerSec()), Rate(et.Put.OpsPerSec()), Latency(kv.Put.P99), Latency(et.Put.P99))
		v.Met = q >= GoalClusterPutVsEtcd
	}
	return v
}

// MTLSVerdict judges what mutual TLS on the peer port costs: the
// three-node kvstore's PUT throughput with it ÷ without it, clients spread
// over the nodes. ok is false when the run had no kvstore-mtls row.
func (r ClusterReport) MTLSVerdict() (v Verdict, ok bool) {
	c := r.JudgeClients
	v = Verdict{Name: "three-node kvstore PUT with peer mTLS / without (clients spread over the nodes)", Goal: fmt.Sprintf("≥ %.1f×", GoalMTLSPutVsPlain)}
	tls, okTLS := r.Find(KVStoreMTLS, Spread, c)
	plain, okPlain := r.Find(KVStore, Spread, c)
	switch {
	case !okTLS && !r.has(KVStoreMTLS):
		return v, false
	case !okTLS:
		v.Measured = fmt.Sprintf("not measured (no kvstore-mtls result at %d clients)", c)
	case !okPlain || plain.Put.OpsPerSec() <= 0:
		v.Measured = fmt.Sprintf("not measured (no kvstore result at %d clients)", c)
	case tls.Mismatched > 0:
		v.Measured = fmt.Sprintf("%.3f×, but %d acknowledged writes did not read back", tls.Put.OpsPerSec()/plain.Put.OpsPerSec(), tls.Mismatched)
	default:
		q := tls.Put.OpsPerSec() / plain.Put.OpsPerSec()
		v.Measured = fmt.Sprintf("%.3f× (%s / %s ops/s; p99 %s vs %s)", q, Rate(tls.Put.OpsPerSec()), Rate(plain.Put.OpsPerSec()), Latency(tls.Put.P99), Latency(plain.Put.P99))
		v.Met = q >= GoalMTLSPutVsPlain
	}
	return v, true
}

// has reports whether any row, good or failed, is of system.
func (r ClusterReport) has(system string) bool {
	for _, row := range r.Rows {
		if row.System == system {
			return true
		}
	}
	return false
}

// clientCounts returns the client counts of the rows, ascending.
func (r ClusterReport) clientCounts() []int {
	var out []int
	for _, row := range r.Rows {
		if !slices.Contains(out, row.Clients) {
			out = append(out, row.Clients)
		}
	}
	slices.Sort(out)
	return out
}

// modeText describes how the clients of a row reach the cluster.
func modeText(system, mode string) string {
	switch {
	case mode == LeaderOnly:
		return "leader only"
	case system == KVStore || system == KVStoreMTLS:
		return "all 3 nodes, round robin"
	case system == Etcd:
		return "all 3 endpoints, client balancer"
	}
	return mode
}

// Markdown renders the report as the body of the three-node section of
// docs/benchmarks.md (without the markers).
func (r ClusterReport) Markdown() string {
	var b strings.Builder
	m := r.Meta
	b.WriteString("### Latest three-node run\n\n" + m.commandLine())
	fmt.Fprintf(&b, "- Date: %s (took %s)\n", m.Date.UTC().Format(time.RFC3339), m.Took.Round(time.Second))
	fmt.Fprintf(&b, "- Machine: %d CPUs (`nproc`), %s; every node, both clusters and the load generator share it\n", m.NProc, m.CPUModel)
	fmt.Fprintf(&b, "- Load average (`uptime`): %s at the start, %s at the end\n", orDash(m.LoadAvg), orDash(m.LoadEnd))
	b.WriteString(m.goLine())
	fmt.Fprintf(&b, "- kvstore: %d processes on loopback (hashicorp/raft, kvstore's default timing), writes sent to any node, acknowledged once committed by a majority and applied on the leader; kvstore-mtls: the same with mutual TLS 1.3 on the peer port (`kvstore certs --peer`), the rest with the challenge-response peer handshake in cleartext\n", m.Nodes)
	if m.EtcdVersion != "" {
		fmt.Fprintf(&b, "- etcd: %s, %d members on loopback, default settings, client go.etcd.io/etcd/client/v3 (%d client(s) over all endpoints)\n", m.EtcdVersion, m.Nodes, m.EtcdConns)
	}
	fmt.Fprintf(&b, "- Data directories on: %s\n", m.DataFS)
	fmt.Fprintf(&b, "- Each row: a fresh cluster, one PUT phase of %s or %s operations, whichever ends first; %d-byte keys, %d-byte values; closed loop\n",
		m.Duration, Count(m.MaxOps), m.KeySize, m.ValueSize)

	if len(r.Rows) > 0 {
		b.WriteString("\n| System | Clients go to | Clients | PUT ops/s | PUT p50 | PUT p99 | Errors | Read-back | Leader | Elections | CPU leader | CPU followers | CPU kvbench | CPU other |\n")
		b.WriteString("|---|---|---:|---:|---:|---:|---:|---|---|---:|---:|---:|---:|---:|\n")
		noisy := 0.0
		for _, row := range r.Rows {
			if row.Err != "" {
				fmt.Fprintf(&b, "| %s | %s | %d | failed: %s | | | | | | | | | | |\n", row.System, modeText(row.System, row.Mode), row.Clients, cell(row.Err))
				continue
			}
			fmt.Fprintf(&b, "| %s | %s | %d | %s | %s | %s | %d | %s | %s | %d | %s | %s | %s | %s |\n",
				row.System, modeText(row.System, row.Mode), row.Clients,
				Rate(row.Put.OpsPerSec()), Latency(row.Put.P50), Latency(row.Put.P99), row.Put.Errors,
				readBack(row.Checked, row.Mismatched), row.Leader, row.Elections,
				Percent(row.CPULeader), Percent(row.CPUFollowers), Percent(row.CPUKVBench), Percent(row.CPUOther))
			noisy = max(noisy, row.CPUOther)
		}
		b.WriteString("\n\"Read-back\": acknowledged writes (a sample) read back linearizably from every node after the phase. \"Elections\": how far the leader's Raft term moved during the phase; no fault is injected, so any is a false election. CPU is the share of the whole machine (100% = all cores).\n")
		if noisy > NoisyClusterOther {
			fmt.Fprintf(&b, "\n> ⚠️ Processes outside the clusters and kvbench used up to %s of the machine during a phase; treat these numbers as noisy.\n", Percent(noisy))
		}

		b.WriteString("\n**kvstore ÷ etcd**, clients spread over the nodes:\n\n")
		b.WriteString("| Clients | kvstore PUT ops/s | etcd PUT ops/s | Ratio | kvstore p99 | etcd p99 |\n|---:|---:|---:|---:|---:|---:|\n")
		for _, c := range r.clientCounts() {
			kv, okKV := r.Find(KVStore, Spread, c)
			et, okEt := r.Find(Etcd, Spread, c)
			if !okKV || !okEt || et.Put.OpsPerSec() <= 0 {
				continue
			}
			fmt.Fprintf(&b, "| %d | %s | %s | %.3f× | %s | %s |\n", c, Rate(kv.Put.OpsPerSec()), Rate(et.Put.OpsPerSec()),
				kv.Put.OpsPerSec()/et.Put.OpsPerSec(), Latency(kv.Put.P99), Latency(et.Put.P99))
		}

		v := r.Verdict()
		fmt.Fprintf(&b, "\n**Target** (judged at %d clients):\n\n", r.JudgeClients)
		b.WriteString("| Target | Measured | Goal | Met |\n|---|---|---|:---:|\n")
		fmt.Fprintf(&b, "| %s | %s | %s | %s |\n", v.Name, cell(v.Measured), v.Goal, v.Mark())
		if v, ok := r.MTLSVerdict(); ok {
			fmt.Fprintf(&b, "| %s | %s | %s | %s |\n", v.Name, cell(v.Measured), v.Goal, v.Mark())
		}
	}

	if len(r.Failovers) > 0 {
		fmt.Fprintf(&b, "\n**Leader failover**: %d clients write through every node in turn (closed loop); the leader is killed with SIGKILL %d times (the killed node is restarted on its data and has caught up before the next kill). \"Kill → first acknowledged write\": from the kill to the acknowledgement of the first write sent after the killed process was gone, by a load client or by a probe write sent every %s from the kill on, so that clients stuck on earlier writes do not hide a recovered cluster; \"Load clients resumed\": the same for the load clients' writes only (bound: %s).\n\n",
			m.FailoverClients, m.FailoverReps, Duration(ProbeInterval), m.FailoverTimeout)
		b.WriteString("| System | Kill | Killed leader | New leader | Kill → first acknowledged write | Load clients resumed | Load clients' failed writes until then | Killed node rejoined in |\n")
		b.WriteString("|---|---:|---|---|---:|---:|---|---:|\n")
		for _, f := range r.Failovers {
			if f.Err != "" && len(f.Reps) == 0 {
				fmt.Fprintf(&b, "| %s | | failed: %s | | | | | |\n", f.System, cell(f.Err))
				continue
			}
			for i, rep := range f.Reps {
				took := Duration(rep.Took)
				if rep.Err != "" {
					took = "failed: " + cell(rep.Err)
				}
				resumed := "not within the bound"
				if rep.LoadResumed > 0 {
					resumed = Duration(rep.LoadResumed)
				}
				rejoined := "–"
				if rep.Rejoined > 0 {
					rejoined = Duration(rep.Rejoined)
				}
				fmt.Fprintf(&b, "| %s | %d | %s | %s | %s | %s | %s | %s |\n", f.System, i+1, orDash(rep.Killed), orDash(rep.NewLeader), took, resumed, cell(ErrorKinds(rep.Errors)), rejoined)
			}
		}
		b.WriteString("\n| System | Median kill → first acknowledged write | Acknowledged writes | Read back after the last restart | Load clients' other failed writes |\n|---|---:|---:|---|---|\n")
		for _, f := range r.Failovers {
			med := "–"
			if d, n, ok := f.Median(); ok {
				med = Duration(d)
				if n < len(f.Reps) {
					med += fmt.Sprintf(" (%d of %d kills)", n, len(f.Reps))
				}
			} else if len(f.Reps) > 0 {
				med = fmt.Sprintf("failed (%d of %d kills recovered)", n, len(f.Reps))
			}
			rb := "–"
			if f.Checked > 0 {
				rb = fmt.Sprintf("%d/%d ok", f.Checked-f.Lost, f.Checked)
				if f.Lost > 0 {
					rb += " ❌ **lost: " + Count(uint64(f.Lost)) + "**"
				}
			}
			fmt.Fprintf(&b, "| %s | %s | %s | %s | %s |\n", f.System, med, Count(uint64(f.Acked)), rb, cell(ErrorKinds(f.OtherErrors)))
		}
		b.WriteString("\n\"Other failed writes\" are outside the windows above, almost all while the killed node was down: kvstore's load clients keep sending every third write to it (refused at once), etcd's client balancer leaves it out.\n")
		var notes []string
		for _, f := range r.Failovers {
			if f.Err != "" && len(f.Reps) > 0 {
				notes = append(notes, f.System+" failover: "+cell(f.Err))
			}
			if f.FirstLost != "" {
				notes = append(notes, f.System+", first lost write: "+cell(f.FirstLost))
			}
		}
		if len(notes) > 0 {
			b.WriteString("\n")
			for _, n := range notes {
				fmt.Fprintf(&b, "- %s\n", n)
			}
		}
	}

	var notes []string
	for _, row := range r.Rows {
		if row.Put.FirstError != "" {
			notes = append(notes, fmt.Sprintf("%s (%s), %d clients, first PUT error: %s", row.System, modeText(row.System, row.Mode), row.Clients, cell(row.Put.FirstError)))
		}
	}
	if len(notes) > 0 {
		b.WriteString("\nErrors:\n\n")
		for _, n := range notes {
			fmt.Fprintf(&b, "- %s\n", n)
		}
	}
	return b.String()
}

// NoisyClusterOther is the share of the machine used outside the cluster
// and kvbench above which a three-node run is flagged as noisy.
const NoisyClusterOther = 0.10

// ErrorKinds renders error counts by kind, most frequent first ("0" when
// there are none).
func ErrorKinds(m map[string]int) string {
	total := 0
	for _, n := range m {
		total += n
	}
	if total == 0 {
		return "0"
	}
	kinds := slices.Collect(maps.Keys(m))
	slices.SortFunc(kinds, func(a, b string) int {
		if m[a] != m[b] {
			return m[b] - m[a]
		}
		return strings.Compare(a, b)
	})
	parts := make([]string, len(kinds))
	for i, k := range kinds {
		parts[i] = fmt.Sprintf("%d %s", m[k], k)
	}
	return strings.Join(parts, ", ")
}

// Duration formats a failover-scale duration in milliseconds below 10 s
// and in seconds with two decimals above.
func Duration(d time.Duration) string {
	if d < 10*time.Second {
		return fmt.Sprintf("%d ms", d.Milliseconds())
	}
	return fmt.Sprintf("%.2f s", d.Seconds())
}

func readBack(checked, mismatched int) string {
	if checked == 0 {
		return "–"
	}
	s := fmt.Sprintf("%d/%d ok", checked-mismatched, checked)
	if mismatched > 0 {
		s += " ❌"
	}
	return s
}

func orDash(s string) string {
	if s == "" {
		return "–"
	}
	return s
}
