package report

import (
	"strings"
	"testing"
	"time"

	"kvstore.dev/kvstore/bench/internal/stats"
)

func composePhase(ops int) ComposePhase {
	return ComposePhase{Summary: stats.Summary{Ops: ops, Elapsed: time.Second, P50: time.Millisecond, P99: 4 * time.Millisecond}, AppAccepts: -1}
}

func composeRow(target string, clients, putOps, getOps int) ComposeRow {
	return ComposeRow{Target: target, Clients: clients, Protocol: "HTTP/2.0, TLS 1.3", Put: composePhase(putOps), Get: composePhase(getOps), ClientConns: 1}
}

var allComposeTargets = []string{Direct, NginxHTTPS, NginxHTTPSH1}

func TestComposeVerdicts(t *testing.T) {
	tests := []struct {
		name     string
		r        ComposeReport
		want     []bool   // per verdict, in order
		wantText []string // substrings of Measured, per verdict ("" to skip)
	}{
		{
			name: "met and missed",
			r: ComposeReport{Targets: allComposeTargets, JudgeClients: 64, Rows: []ComposeRow{
				composeRow(Direct, 64, 1000, 10000),
				composeRow(NginxHTTPS, 64, 600, 5999),
				composeRow(NginxHTTPSH1, 64, 599, 7000),
			}},
			want:     []bool{true, false, false, true},
			wantText: []string{"0.600× (600 / 1,000 ops/s)", "0.600× (5,999 / 10,000", "0.599×", "0.700×"},
		},
		{
			name: "judged at the judge level only",
			r: ComposeReport{Targets: allComposeTargets, JudgeClients: 64, Rows: []ComposeRow{
				composeRow(Direct, 16, 1000, 1000), composeRow(NginxHTTPS, 16, 1000, 1000), composeRow(NginxHTTPSH1, 16, 1000, 1000),
			}},
			want:     []bool{false, false, false, false},
			wantText: []string{"no nginx-https result at 64", "", "no nginx-https-h1 result", ""},
		},
		{
			name: "direct failed",
			r: ComposeReport{Targets: []string{Direct, NginxHTTPS}, JudgeClients: 4, Rows: []ComposeRow{
				{Target: Direct, Clients: 4, Err: "connection refused"}, composeRow(NginxHTTPS, 4, 1, 1),
			}},
			want:     []bool{false, false},
			wantText: []string{"no direct result at 4", "no direct result at 4"},
		},
		{
			name: "direct did nothing",
			r: ComposeReport{Targets: []string{Direct, NginxHTTPS}, JudgeClients: 4, Rows: []ComposeRow{
				composeRow(Direct, 4, 0, 0), composeRow(NginxHTTPS, 4, 1, 1),
			}},
			want:     []bool{false, false},
			wantText: []string{"direct did 0 ops/s", ""},
		},
		{
			name: "direct only: nothing to judge",
			r:    ComposeReport{Targets: []string{Direct}, JudgeClients: 4, Rows: []ComposeRow{composeRow(Direct, 4, 1, 1)}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			vs := tt.r.Verdicts()
			if len(vs) != len(tt.want) {
				t.Fatalf("got %d verdicts, want %d: %+v", len(vs), len(tt.want), vs)
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
	vs := ComposeReport{Targets: allComposeTargets, JudgeClients: 1}.Verdicts()
	if !strings.Contains(vs[2].Goal, "for information") || strings.Contains(vs[0].Goal, "for information") {
		t.Errorf("goals: %q, %q; want HTTP/1.1 for information only", vs[0].Goal, vs[2].Goal)
	}
}

func TestComposePhaseCPU(t *testing.T) {
	tests := []struct {
		name     string
		p        ComposePhase
		nproc    int
		wantBusy float64
		wantOp   time.Duration
	}{
		{
			name: "measured", nproc: 2, wantBusy: 0.5, wantOp: 100 * time.Microsecond,
			// half of 2 CPUs for 1 s is 1 CPU-second, over 10,000 ops
			p: ComposePhase{Summary: stats.Summary{Ops: 10_000, Elapsed: time.Second}, CPU: []float64{0.1, 0.3, 0.1}},
		},
		{name: "not measured", nproc: 2, wantBusy: -1, p: ComposePhase{Summary: stats.Summary{Ops: 1, Elapsed: time.Second}}},
		{name: "no ops", nproc: 2, wantBusy: 0.5, p: ComposePhase{Summary: stats.Summary{Elapsed: time.Second}, CPU: []float64{0.5}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.p.Busy(); got != tt.wantBusy {
				t.Errorf("Busy = %v, want %v", got, tt.wantBusy)
			}
			if got := tt.p.CPUPerOp(tt.nproc); got != tt.wantOp {
				t.Errorf("CPUPerOp = %v, want %v", got, tt.wantOp)
			}
		})
	}
}

func TestComposeMarkdown(t *testing.T) {
	r := ComposeReport{
		Meta: ComposeMeta{Meta: Meta{Command: "bin/kvbench compose -ca /tmp/ca.crt", Wrapper: "hack/bench-compose.sh",
			Date: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC), NProc: 2, CPUModel: "Test CPU", GoVersion: "go1.26.0",
			Duration: 5 * time.Second, MaxOps: 1000, KeySize: 16, ValueSize: 256},
			Stack: "nginx/1.22.1", AppVersion: "v1.2.3", URLs: map[string]string{Direct: "http://127.0.0.1:18090/api/v1/kv/"},
			CPUGroups: []string{"app", "nginx"}, AppConns: true},
		Targets:      allComposeTargets,
		JudgeClients: 64,
		Rows: []ComposeRow{
			composeRow(Direct, 64, 1000, 10000),
			composeRow(NginxHTTPS, 64, 700, 5000),
			{Target: NginxHTTPSH1, Clients: 64, Protocol: "HTTP/1.1, TLS 1.3", Err: "probe: EOF"},
		},
	}
	r.Rows[0].Put.CPU = []float64{0.2, 0.5, 0, 0.3}
	r.Rows[0].Put.AppAccepts = 64
	r.Rows[1].Get.Errors, r.Rows[1].Get.FirstError = 3, "op 9: 502"
	md := r.Markdown()
	wantContains(t, md,
		"`hack/bench-compose.sh`, which ran `bin/kvbench compose -ca /tmp/ca.crt`", "2026-01-02T03:04:05Z",
		"2 CPUs (`nproc`), Test CPU", "Stack: nginx/1.22.1", "v1.2.3", "direct = `http://127.0.0.1:18090/api/v1/kv/`",
		"| direct | HTTP/2.0, TLS 1.3 | 64 | 1 | 1,000 |", "failed: probe: EOF", "PUT 0, GET 3", "op 9: 502",
		"| nginx-https PUT ÷ direct PUT | 0.700× (700 / 1,000 ops/s) | ≥ 0.6× | ✅ |",
		"| nginx-https GET ÷ direct GET | 0.500× (5,000 / 10,000 ops/s) | ≥ 0.6× | ❌ |",
		"| nginx-https | 64 | 0.70× | 0.50× |",
		"| kvbench | app | nginx | other | Machine CPU per op |",
		"| direct | 64 | PUT | 1,000 | 64 | 20% | 50% | 0% | 30% | 2.00 ms |",
		"| direct | 64 | GET | 10,000 | n/a | n/a | n/a | n/a | n/a | n/a |",
		"⚠️ CPU outside kvbench and the measured processes reached 30%",
	)
}
