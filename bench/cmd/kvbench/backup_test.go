package main

import (
	"strings"
	"testing"
	"time"

	"kvstore.dev/kvstore/bench/internal/load"
	"kvstore.dev/kvstore/bench/internal/report"
	"kvstore.dev/kvstore/bench/internal/stats"
)

func TestBackupSetup(t *testing.T) {
	cases := map[string]struct {
		args []string
		err  string
	}{
		"defaults":           {},
		"a bigger preload":   {args: []string{"-preload-mib", "256", "-clients", "16"}},
		"no preload":         {args: []string{"-preload-mib", "0"}},
		"negative preload":   {args: []string{"-preload-mib", "-1"}, err: "-preload-mib"},
		"huge preload value": {args: []string{"-preload-value-size", "2000000"}, err: "-preload-value-size"},
		"unknown system":     {args: []string{"-systems", "etcd"}, err: "-systems"},
		"a rate":             {args: []string{"-max-rate", "32MiB"}},
		"two rates":          {args: []string{"-max-rate", "64MiB,16MiB"}},
		"no limit":           {args: []string{"-max-rate", "0"}, err: "-max-rate"},
		"too low a rate":     {args: []string{"-max-rate", "64KiB"}, err: "-max-rate"},
		"a bad rate":         {args: []string{"-max-rate", "fast"}, err: "-max-rate"},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			cfg := &backupConfig{}
			err := cfg.setup(tc.args)
			if tc.err == "" && err != nil {
				t.Fatal(err)
			}
			if tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)) {
				t.Fatalf("error %v, want one naming %s", err, tc.err)
			}
		})
	}
}

// TestBackupMarkdown: the ratio and its verdict against the 80% target,
// and a failed row, in the table.
func TestBackupMarkdown(t *testing.T) {
	phase := func(ops int) load.Result {
		return load.Result{Summary: stats.Summary{Ops: ops, Elapsed: 10 * time.Second, P99: 20 * time.Millisecond}}
	}
	rows := []backupRow{
		{Clients: 1, MaxRate: 64 << 20, Plain: phase(10000), During: phase(9000), Snapshots: 8, SnapshotBytes: 5.6e8, SnapshotTook: 8 * time.Second, SnapshotActive: 9 * time.Second},
		{Clients: 16, Plain: phase(10000), During: phase(5000), Snapshots: 20, SnapshotBytes: 2e9, SnapshotTook: 10 * time.Second, SnapshotActive: 10 * time.Second},
		{Clients: 64, Err: "PUT phase: boom"},
	}
	cfg := &backupConfig{preloadMiB: 64, preloadValue: 32 << 10, maxRates: []int64{64 << 20}}
	md := backupMarkdown(report.Meta{Command: "kvbench backup", NProc: 2, Duration: 10 * time.Second, MaxOps: 100, ValueSize: 256},
		cfg, backupTaken{size: 7e7, took: time.Second}, "n1", "n0", rows, time.Minute)
	for _, want := range []string{
		"| 1 | 64MiB/s | 1,000 | 20.00 ms | 900 | 20.00 ms | 90% | ✅ | 8 (560.0 MB, 1s each, 90% of the phase streaming) |",
		"| 16 | none | 1,000 | 20.00 ms | 500 | 20.00 ms | 50% | ❌ | 20 (2000.0 MB, 500ms each,",
		"| 64 | | failed: PUT phase: boom |",
		"Limit 64MiB/s (`-max-rate`): a backup of the preloaded store (70.0 MB) lasts at least 1.043s at it (size / rate); the 8 completed during the phases (70.0 MB on average: the store grows) took 1s on average",
		"follower (n1; leader n0)",
	} {
		if !strings.Contains(md, want) {
			t.Errorf("the report lacks %q:\n%s", want, md)
		}
	}
}
