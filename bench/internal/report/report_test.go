package report

import (
	"strings"
	"testing"
	"time"

	"kvstore.dev/kvstore/bench/internal/stats"
)

func phase(ops int, elapsed, p99 time.Duration) stats.Summary {
	return stats.Summary{Ops: ops, Elapsed: elapsed, P50: p99 / 2, P99: p99}
}

func row(target string, clients, putOps, getOps int, putP99 time.Duration) Row {
	return Row{Target: target, Clients: clients,
		Put: phase(putOps, time.Second, putP99), Get: phase(getOps, time.Second, time.Millisecond)}
}

func fullLoad(peak uint64) *Load {
	return &Load{Target: KVStore, Clients: 64, Want: 1_000_000,
		Put: stats.Summary{Ops: 1_000_000, Elapsed: time.Minute}, PeakRSS: peak, Checked: 10}
}

func TestVerdicts(t *testing.T) {
	good := []Row{
		row(KVStore, 64, 15000, 40000, 10*time.Millisecond),
		row(Etcd, 64, 10000, 30000, 30*time.Millisecond),
		row(BareHTTP, 64, 50000, 45000, time.Millisecond),
	}
	tests := []struct {
		name string
		r    Report
		want []bool // per verdict, in order
		// wantText are substrings expected in the Measured column, per verdict ("" to skip)
		wantText []string
	}{
		{
			name:     "all met",
			r:        Report{Rows: good, Load: fullLoad(250_000_000), JudgeClients: 64},
			want:     []bool{true, true, true, true, true},
			wantText: []string{"1.500×", "1.333×", "0.889×", "10.00 ms", "250.0 MB"},
		},
		{
			name: "all missed",
			r: Report{Rows: []Row{
				row(KVStore, 64, 14999, 29000, 20*time.Millisecond),
				row(Etcd, 64, 10000, 30000, time.Millisecond),
				row(BareHTTP, 64, 1, 37000, time.Millisecond),
			}, Load: fullLoad(300_000_000), JudgeClients: 64},
			want:     []bool{false, false, false, false, false},
			wantText: []string{"1.500×", "0.967×", "0.784×", "20.00 ms", "300.0 MB"},
		},
		{
			name:     "judged at other client count",
			r:        Report{Rows: good, JudgeClients: 16},
			want:     []bool{false, false, false, false, false},
			wantText: []string{"no kvstore result", "no kvstore result", "no kvstore result", "no kvstore result", "load phase skipped"},
		},
		{
			name: "missing etcd and failed bare",
			r: Report{Rows: []Row{good[0], {Target: BareHTTP, Clients: 64, Err: "crashed"}},
				Load: fullLoad(1), JudgeClients: 64},
			want:     []bool{false, false, false, true, true},
			wantText: []string{"no etcd result", "no etcd result", "no bare-http result", "", ""},
		},
		{
			name: "shortened load is not judged",
			r: Report{Rows: good, JudgeClients: 64, Load: &Load{Want: 1000,
				Put: stats.Summary{Ops: 1000, Elapsed: time.Second}, PeakRSS: 1}},
			want:     []bool{true, true, true, true, false},
			wantText: []string{"", "", "", "", "shortened run"},
		},
		{
			name: "incomplete load is not judged",
			r: Report{Rows: good, JudgeClients: 64, Load: &Load{Want: 1_000_000,
				Put: stats.Summary{Ops: 999_000, Errors: 3, Elapsed: time.Second}, PeakRSS: 1}},
			want:     []bool{true, true, true, true, false},
			wantText: []string{"", "", "", "", "only 999,000 of 1,000,000"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			vs := tt.r.Verdicts()
			if len(vs) != len(tt.want) {
				t.Fatalf("got %d verdicts, want %d", len(vs), len(tt.want))
			}
			for i, v := range vs {
				if v.Met != tt.want[i] {
					t.Errorf("verdict %q: Met = %v, want %v (measured %q)", v.Name, v.Met, tt.want[i], v.Measured)
				}
				if w := tt.wantText[i]; w != "" && !strings.Contains(v.Measured, w) {
					t.Errorf("verdict %q: Measured = %q, want it to contain %q", v.Name, v.Measured, w)
				}
			}
		})
	}
}

func TestFormat(t *testing.T) {
	tests := []struct {
		name, got, want string
	}{
		{"count 0", Count(0), "0"},
		{"count 999", Count(999), "999"},
		{"count 1000", Count(1000), "1,000"},
		{"count 1234567", Count(1234567), "1,234,567"},
		{"rate rounds", Rate(1234.5), "1,235"},
		{"latency µs", Latency(250 * time.Microsecond), "250 µs"},
		{"latency ms", Latency(1500 * time.Microsecond), "1.50 ms"},
		{"bytes", Bytes(123_456_789), "123.5 MB"},
		{"cell pipes and newlines", cell("a|b\n c"), `a\|b c`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.got != tt.want {
				t.Errorf("got %q, want %q", tt.got, tt.want)
			}
		})
	}
}

func TestMarkdownContainsEverything(t *testing.T) {
	r := Report{
		Meta: Meta{Command: "bin/kvbench -duration 5s", Date: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC),
			NProc: 2, CPUModel: "Test CPU", GoVersion: "go1.26.0", EtcdVersion: "3.6.16", DataFS: "ext4",
			Duration: 5 * time.Second, MaxOps: 1000, KeySize: 16, ValueSize: 256, EtcdConns: 1},
		Rows: []Row{
			row(KVStore, 64, 15000, 40000, 10*time.Millisecond),
			{Target: Etcd, Clients: 64, Err: "exit status 1"},
		},
		Load:         fullLoad(250_000_000),
		JudgeClients: 64,
	}
	r.Rows[0].Get.Errors, r.Rows[0].Get.FirstError = 2, "op 7: 404"
	r.Rows[0].BackgroundCPU = 0.2
	md := r.Markdown()
	wantContains(t, md,
		"| 20% |", "⚠️ Other processes used up to 20%",
		"`bin/kvbench -duration 5s`", "2026-01-02T03:04:05Z", "2 CPUs", "Test CPU", "go1.26.0", "3.6.16",
		"| kvstore | 64 | 15,000 |", "failed: exit status 1", "PUT 0, GET 2", "op 7: 404",
		"1,000,000", "✅", "❌",
	)
}

// wantContains fails t for each of wants that md lacks.
func wantContains(t *testing.T, md string, wants ...string) {
	t.Helper()
	for _, want := range wants {
		if !strings.Contains(md, want) {
			t.Errorf("markdown lacks %q:\n%s", want, md)
		}
	}
}
