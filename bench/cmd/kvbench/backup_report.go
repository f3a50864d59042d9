package main

import (
	"fmt"
	"strings"
	"time"

	"kvstore.dev/kvstore/bench/internal/procstat"
	"kvstore.dev/kvstore/bench/internal/report"
)

// backupMarkdown renders the backup benchmark's section: how it ran, then
// two rows per client count (unlimited backups, then limited ones), the
// PUT phases without and during backups side by side and their ratio
// against the 80% target.
func backupMarkdown(m report.Meta, cfg *backupConfig, first backupTaken, follower, leader string, rows []backupRow, took time.Duration) string {
	var b strings.Builder
	fmt.Fprintf(&b, "PUT throughput of a three-node kvstore cluster (processes on loopback, clients spread over the three nodes) without a backup and while backups stream from a follower (%s; leader %s), unlimited and limited to a rate (`Max rate`): `GET /api/v1/snapshot` through the backup package's Source and Write (as `kvstore backup` takes them: SHA-256, manifest, `--max-rate`) into a directory on the same disk, one after the other for the whole phase (each deleted once written). CPU columns: shares of the whole machine taken by the source follower / the leader / the other follower / kvbench (load and backup writer) / everything else (the background load). Target: at least %.0f%% of the throughput without a backup.\n\n",
		follower, leader, backupTarget*100)
	if m.Wrapper != "" {
		fmt.Fprintf(&b, "- Command: `%s`, which ran `%s`\n", m.Wrapper, m.Command)
	} else {
		fmt.Fprintf(&b, "- Command: `%s`\n", m.Command)
	}
	fmt.Fprintf(&b, "- Date: %s; took %v\n", m.Date.UTC().Format("2006-01-02 15:04 UTC"), took.Round(time.Second))
	fmt.Fprintf(&b, "- Machine: %d CPUs, %s; load average (1, 5, 15 min) at the start %s\n", m.NProc, m.CPUModel, m.LoadAvg)
	fmt.Fprintf(&b, "- kvstore built with %s; data file system %s\n", dashIfEmpty(m.KVStoreGo), dashIfEmpty(m.DataFS))
	fmt.Fprintf(&b, "- Preload: %d MiB of %s values; the first backup: %s in %v\n", cfg.preloadMiB, fmt.Sprintf("%d KiB", cfg.preloadValue>>10),
		report.Bytes(uint64(first.size)), first.took.Round(time.Millisecond))
	for _, rate := range cfg.maxRates {
		var took time.Duration
		var n int
		var size int64
		for _, r := range rows {
			if r.Err == "" && r.MaxRate == rate {
				took, n, size = took+r.SnapshotTook, n+r.Snapshots, size+r.SnapshotBytes
			}
		}
		measured := "none completed during the phases"
		if n > 0 {
			measured = fmt.Sprintf("the %d completed during the phases (%s on average: the store grows) took %v on average", n,
				report.Bytes(uint64(size/int64(n))), (took / time.Duration(n)).Round(time.Millisecond))
		}
		fmt.Fprintf(&b, "- Limit %s (`-max-rate`): a backup of the preloaded store (%s) lasts at least %v at it (size / rate); %s\n",
			rateText(rate), report.Bytes(uint64(first.size)),
			(time.Duration(float64(first.size) / float64(rate) * float64(time.Second))).Round(time.Millisecond), measured)
	}
	fmt.Fprintf(&b, "- Each PUT phase: at most %v or %s writes of %d-byte values to new keys; per client count one phase without a backup, one during unlimited backups and one per limit, their order rotated by one at each client count\n\n",
		m.Duration, report.Count(m.MaxOps), m.ValueSize)
	b.WriteString("| Clients | Max rate | PUT ops/s, no backup | p99 | PUT ops/s, during backups | p99 | Ratio | ≥ 80% | Backups during the phase | CPU, no backup | CPU, during backups |\n")
	b.WriteString("|--------:|---------:|---------------------:|----:|--------------------------:|----:|------:|:-----:|:-------------------------|:---------------|:--------------------|\n")
	for _, r := range rows {
		if r.Err != "" {
			fmt.Fprintf(&b, "| %d | | failed: %s | | | | | ❌ | | | |\n", r.Clients, strings.ReplaceAll(r.Err, "|", "\\|"))
			continue
		}
		verdict := "✅"
		if r.ratio() < backupTarget {
			verdict = "❌"
		}
		streamed := 0.0
		if r.During.Elapsed > 0 {
			streamed = float64(r.SnapshotActive) / float64(r.During.Elapsed)
		}
		fmt.Fprintf(&b, "| %d | %s | %s | %s | %s | %s | %s | %s | %d (%s, %v each, %s of the phase streaming) | %s | %s |\n", r.Clients, rateText(r.MaxRate),
			report.Rate(r.Plain.OpsPerSec()), report.Latency(r.Plain.P99),
			report.Rate(r.During.OpsPerSec()), report.Latency(r.During.P99),
			report.Percent(r.ratio()), verdict, r.Snapshots, report.Bytes(uint64(r.SnapshotBytes)), r.meanBackup().Round(time.Millisecond), report.Percent(min(1, streamed)),
			cpuCell(r.CPUPlain), cpuCell(r.CPUDuring))
	}
	return b.String()
}

// cpuCell is where the machine's two cores went: source follower, leader,
// other follower, kvbench, everything else (the background load).
func cpuCell(s procstat.Shares) string {
	if len(s.Groups) != 4 {
		return "-"
	}
	return fmt.Sprintf("%s / %s / %s / %s / %s", report.Percent(s.Groups[0]), report.Percent(s.Groups[1]),
		report.Percent(s.Groups[2]), report.Percent(s.Groups[3]), report.Percent(s.Other))
}

func dashIfEmpty(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
