package report

import (
	"fmt"
	"strings"
	"time"
)

// Markdown renders the report as the body of the generated section of
// docs/benchmarks.md (without the markers). The same text is printed to
// stdout.
func (r Report) Markdown() string {
	var b strings.Builder
	m := r.Meta
	b.WriteString("### Latest run\n\n" + m.commandLine())
	fmt.Fprintf(&b, "- Date: %s\n", m.Date.UTC().Format(time.RFC3339))
	fmt.Fprintf(&b, "- Machine: %d CPUs (`nproc`), %s\n", m.NProc, m.CPUModel)
	b.WriteString(m.goLine())
	if m.EtcdVersion != "" {
		fmt.Fprintf(&b, "- etcd: %s, single member, default fsync, client go.etcd.io/etcd/client/v3 over %d connection(s), serializable GETs\n", m.EtcdVersion, m.EtcdConns)
	}
	fmt.Fprintf(&b, "- Data directories on: %s\n", m.DataFS)
	if m.LoadAvg != "" {
		fmt.Fprintf(&b, "- Load average at start: %s\n", m.LoadAvg)
	}
	fmt.Fprintf(&b, "- Each phase: %s or %s operations, whichever ends first; %d-byte keys, %d-byte values; closed loop, load generator on the same machine\n",
		m.Duration, Count(m.MaxOps), m.KeySize, m.ValueSize)

	b.WriteString("\n| Target | Clients | PUT ops/s | PUT p50 | PUT p99 | GET ops/s | GET p50 | GET p99 | Server peak RSS | Errors | Other CPU |\n")
	b.WriteString("|---|---:|---:|---:|---:|---:|---:|---:|---:|---|---:|\n")
	noisy := 0.0
	for _, row := range r.Rows {
		if row.Err != "" {
			fmt.Fprintf(&b, "| %s | %d | failed: %s | | | | | | | | |\n", row.Target, row.Clients, cell(row.Err))
			continue
		}
		fmt.Fprintf(&b, "| %s | %d | %s | %s | %s | %s | %s | %s | %s | %s | %s |\n",
			row.Target, row.Clients,
			Rate(row.Put.OpsPerSec()), Latency(row.Put.P50), Latency(row.Put.P99),
			Rate(row.Get.OpsPerSec()), Latency(row.Get.P50), Latency(row.Get.P99),
			Bytes(row.PeakRSS), errorsCell(row), Percent(row.BackgroundCPU))
		noisy = max(noisy, row.BackgroundCPU)
	}

	if l := r.Load; l != nil {
		b.WriteString("\n**Bulk load** (fresh kvstore, then VmHWM of the server process):\n\n")
		if l.Err != "" {
			fmt.Fprintf(&b, "failed: %s\n", cell(l.Err))
		} else {
			fmt.Fprintf(&b, "| Values | Clients | Stored | Took | PUT ops/s | PUT p99 | Peak RSS | RSS after | Read-back check | Other CPU |\n")
			b.WriteString("|---:|---:|---:|---:|---:|---:|---:|---:|---|---:|\n")
			fmt.Fprintf(&b, "| %s | %d | %s | %s | %s | %s | %s | %s | %d/%d ok | %s |\n",
				Count(l.Want), l.Clients, Count(uint64(l.Put.Ops)), l.Put.Elapsed.Round(time.Millisecond),
				Rate(l.Put.OpsPerSec()), Latency(l.Put.P99), Bytes(l.PeakRSS), Bytes(l.RSS),
				l.Checked-l.Mismatched, l.Checked, Percent(l.BackgroundCPU))
			noisy = max(noisy, l.BackgroundCPU)
		}
	}

	b.WriteString("\n\"Other CPU\" is the share of the machine's CPU capacity used by processes other than kvbench and the server during the measurement.\n")
	if noisy > NoisyBackground {
		fmt.Fprintf(&b, "\n> ⚠️ Other processes used up to %s of the machine during this run; treat these numbers as noisy and rerun on an idle machine.\n", Percent(noisy))
	}

	fmt.Fprintf(&b, "\n**Targets** (judged at %d clients):\n\n", r.JudgeClients)
	b.WriteString("| Target | Measured | Goal | Met |\n|---|---|---|:---:|\n")
	for _, v := range r.Verdicts() {
		fmt.Fprintf(&b, "| %s | %s | %s | %s |\n", v.Name, cell(v.Measured), v.Goal, v.Mark())
	}

	var notes []string
	for _, row := range r.Rows {
		notes = append(notes, firstErrors(row.Target, row.Clients, row.Put.FirstError, row.Get.FirstError)...)
	}
	if l := r.Load; l != nil && l.Put.FirstError != "" {
		notes = append(notes, "bulk load, first PUT error: "+cell(l.Put.FirstError))
	}
	return b.String() + errorList(notes)
}

// firstErrors notes the first PUT and GET error of target at clients, if
// any.
func firstErrors(target string, clients int, put, get string) (notes []string) {
	for _, ph := range [][2]string{{"PUT", put}, {"GET", get}} {
		if ph[1] != "" {
			notes = append(notes, fmt.Sprintf("%s, %d clients, first %s error: %s", target, clients, ph[0], cell(ph[1])))
		}
	}
	return notes
}

// errorList renders notes as the report's closing list of errors, "" when
// there are none.
func errorList(notes []string) string {
	if len(notes) == 0 {
		return ""
	}
	return "\nErrors:\n\n- " + strings.Join(notes, "\n- ") + "\n"
}

func errorsCell(row Row) string {
	if row.Put.Errors == 0 && row.Get.Errors == 0 {
		return "0"
	}
	return fmt.Sprintf("PUT %d, GET %d", row.Put.Errors, row.Get.Errors)
}

// cell makes s safe inside a markdown table cell and keeps it short.
func cell(s string) string {
	s = strings.Join(strings.Fields(s), " ")
	s = strings.ReplaceAll(s, "|", "\\|")
	if r := []rune(s); len(r) > 200 {
		s = string(r[:200]) + "…"
	}
	return s
}
