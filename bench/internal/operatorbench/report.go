package operatorbench

import (
	"cmp"
	"fmt"
	"maps"
	"runtime"
	"slices"
	"strings"
	"time"

	"kvstore.dev/kvstore/bench/internal/procstat"
)

// Goals of issue 4 ("Performance").
const (
	MedianGoal = time.Second
	RSSGoal    = 100_000_000 // bytes (MB = 10^6 bytes, as elsewhere in docs/benchmarks.md)
)

// Stats summarizes durations with nearest-rank percentiles.
type Stats struct {
	N                     int
	Min, Median, P90, Max time.Duration
}

// Summarize computes the Stats of ds (which it does not modify).
func Summarize(ds []time.Duration) Stats {
	s := slices.Clone(ds)
	slices.Sort(s)
	if len(s) == 0 {
		return Stats{}
	}
	rank := func(p float64) time.Duration {
		i := int(p*float64(len(s))+0.999999) - 1 // nearest rank: ceil(p*n)-1
		return s[min(max(i, 0), len(s)-1)]
	}
	return Stats{N: len(s), Min: s[0], Median: rank(0.5), P90: rank(0.9), Max: s[len(s)-1]}
}

// MemRow is the operator's memory at one point of the run.
type MemRow struct {
	State      string
	Mem        procstat.Memory
	HeapInuse  float64 // go_memstats_heap_inuse_bytes
	Goroutines float64 // go_goroutines
	KVStores   int
}

// Result is everything one run measured.
type Result struct {
	Command, Date      string
	LoadStart, LoadEnd string
	OtherLatency       float64 // share of the CPU used outside the test's process tree during the latency phase
	OtherMemory        float64 // the same from creating the 100 KVStores to the end of the quiet window
	ControlPlane       string
	OperatorArgs       string
	KubeconfigVia      string
	Children           Children      // of every KVStore, learnt from the warm-up KVStore
	Warmup             time.Duration // the first KVStore after the operator started, not counted
	ToChildren, Status Stats         // operator: KVStore created -> all children exist / status observed
	Direct             Stats         // the bench client creating the same children itself
	ChildUpdates       int           // MODIFIED events of the 20 KVStores' children after creation
	StatusUpdates      int           // MODIFIED events of the 20 KVStores (status writes)
	Memory             []MemRow
	Settle100          time.Duration // 100 KVStores created back to back -> all children and status
	Reconciles         float64
	ReconcileErrors    float64
	ReconcileMean      time.Duration
	Requests           map[string]float64 // the operator's API requests by "method code" while reaching 100
	StatusUpdates100   int                // MODIFIED events of the 100 KVStores (status writes)
	QuietWindow        time.Duration
	QuietWrites        float64 // the operator's write requests in the quiet window
	QuietChildUpdates  int
	LogLevels          map[string]int
}

// Markdown renders r for docs/benchmarks.md.
func (r *Result) Markdown() string {
	var b strings.Builder
	p := func(format string, a ...any) { fmt.Fprintf(&b, format, a...) }
	p("### Latest operator run\n\n")
	p("- Command: %s\n", r.Command)
	p("- Date: %s\n", r.Date)
	p("- Machine: %d CPUs (`nproc`), %s; the API server, etcd, the operator and the bench client share them\n", runtime.NumCPU(), procstat.CPUModel())
	p("- Load average (`uptime`) at start: %s; at the end: %s\n", r.LoadStart, r.LoadEnd)
	p("- Other CPU (the share of the machine's CPU used by processes other than the test, the control plane and the operator): %.0f%% during the latency phase, %.0f%% during the memory phase%s\n",
		100*r.OtherLatency, 100*r.OtherMemory, noisy(max(r.OtherLatency, r.OtherMemory)))
	p("- Go: %s\n", runtime.Version())
	p("- Control plane: envtest, %s\n", r.ControlPlane)
	p("- Operator: `go build ./cmd/operator`, run as `kvstore-operator %s` with the kubeconfig %s\n", r.OperatorArgs, r.KubeconfigVia)
	p("- KVStores: sample-like spec (3 replicas, 2Gi storage, resources, ingress enabled), each with %d children: %s\n\n", len(r.Children), r.Children)

	p("**Latency**, one KVStore at a time in one namespace, each measured from the Create call returning; the next starts once the previous one's status is written:\n\n")
	p("| Measurement | n | min | median | p90 | max |\n|---|---:|---:|---:|---:|---:|\n")
	row := func(name string, s Stats) {
		p("| %s | %d | %s | %s | %s | %s |\n", name, s.N, ms(s.Min), ms(s.Median), ms(s.P90), ms(s.Max))
	}
	row(fmt.Sprintf("operator: KVStore created → all %d children exist", len(r.Children)), r.ToChildren)
	row("operator: KVStore created → status.observedGeneration written", r.Status)
	row(fmt.Sprintf("ceiling: the bench client creates the same %d objects itself", len(r.Children)), r.Direct)
	p("\nThe operator's median is **%.2f×** the ceiling's (%s ÷ %s). The first KVStore after the operator started (a warm-up, not counted) took %s. "+
		"A watch saw the 20 KVStores' children modified %d times after creation, and the KVStores themselves %d times (status writes; one per KVStore is the minimum).\n\n",
		ratio(r.ToChildren.Median, r.Direct.Median), ms(r.ToChildren.Median), ms(r.Direct.Median), ms(r.Warmup), r.ChildUpdates, r.StatusUpdates)

	p("**Memory**, a fresh operator process, 100 KVStores created back to back in 4 namespaces:\n\n")
	p("| Operator state | KVStores | VmRSS | VmHWM (peak) | Go heap in use | goroutines |\n|---|---:|---:|---:|---:|---:|\n")
	for _, m := range r.Memory {
		p("| %s | %d | %s | %s | %s | %.0f |\n", m.State, m.KVStores, mb(int64(m.Mem.RSS)), mb(int64(m.Mem.PeakRSS)), mb(int64(m.HeapInuse)), m.Goroutines)
	}
	p("\nAll 100 had every child and a written status %s after the first Create. Getting there took %.0f reconciles (%.0f errors; mean reconcile time %s) "+
		"and %d status writes (watch events), and the operator sent these API requests (`rest_client_requests_total`, method and code): %s. "+
		"In a %.0f s quiet window afterwards it sent %.0f write requests and the watch saw %d child modifications. Operator log lines by level, both processes: %s.\n\n",
		r.Settle100.Round(time.Millisecond), r.Reconciles, r.ReconcileErrors, ms(r.ReconcileMean), r.StatusUpdates100, cmp.Or(joinSorted(r.Requests, "%s × %.0f"), "none"),
		r.QuietWindow.Seconds(), r.QuietWrites, r.QuietChildUpdates, joinSorted(r.LogLevels, "%s %d"))

	last := r.Memory[len(r.Memory)-1]
	p("**Targets** (issue 4):\n\n| Target | Measured | Goal | Met |\n|---|---|---|:---:|\n")
	p("| median KVStore created → all children exist, over %d | %s (%.2f× the direct-create ceiling) | < %.0f s | %s |\n",
		r.ToChildren.N, ms(r.ToChildren.Median), ratio(r.ToChildren.Median, r.Direct.Median), MedianGoal.Seconds(), met(r.ToChildren.Median < MedianGoal))
	p("| operator VmRSS while managing %d KVStores | %s (peak %s, Go heap %s) | < %s | %s |\n",
		last.KVStores, mb(int64(last.Mem.RSS)), mb(int64(last.Mem.PeakRSS)), mb(int64(last.HeapInuse)), mb0(RSSGoal), met(last.Mem.RSS < RSSGoal))
	p("| operator peak RSS (VmHWM) over the whole ramp to %d (for information) | %s | < %s | %s |\n",
		last.KVStores, mb(int64(last.Mem.PeakRSS)), mb0(RSSGoal), met(last.Mem.PeakRSS < RSSGoal))
	return b.String()
}

func noisy(other float64) string {
	if other > 0.05 {
		return " — **noisy**: the machine was shared with other work, latencies are inflated"
	}
	return ""
}

func ms(d time.Duration) string {
	if d >= 10*time.Second {
		return d.Round(100 * time.Millisecond).String()
	}
	return fmt.Sprintf("%.1f ms", float64(d)/float64(time.Millisecond))
}

func mb(n int64) string { return fmt.Sprintf("%.1f MB", float64(n)/1e6) }

func mb0(n int64) string { return fmt.Sprintf("%.0f MB", float64(n)/1e6) }

func ratio(a, b time.Duration) float64 {
	if b == 0 {
		return 0
	}
	return float64(a) / float64(b)
}

func met(ok bool) string {
	if ok {
		return "✅"
	}
	return "❌"
}

// joinSorted renders the entries of m in key order with format (of the
// key and the value), comma-separated; "" when m is empty.
func joinSorted[V any](m map[string]V, format string) string {
	var parts []string
	for _, k := range slices.Sorted(maps.Keys(m)) {
		parts = append(parts, fmt.Sprintf(format, k, m[k]))
	}
	return strings.Join(parts, ", ")
}

// LoadAverage is the 1, 5 and 15 minute load averages from /proc/loadavg.
func LoadAverage() string { return cmp.Or(procstat.LoadAvg(), "unknown") }
