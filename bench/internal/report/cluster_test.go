package report

import (
	"strings"
	"testing"
	"time"

	"kvstore.dev/kvstore/bench/internal/stats"
)

func clusterRow(system, mode string, clients, ops int, p99 time.Duration) ClusterRow {
	return ClusterRow{System: system, Mode: mode, Clients: clients, Leader: "n0", Checked: 3000,
		Put: stats.Summary{Ops: ops, Elapsed: time.Second, P50: p99 / 4, P99: p99}}
}

func TestClusterVerdict(t *testing.T) {
	tests := []struct {
		name string
		rows []ClusterRow
		met  bool
		text string
	}{
		{
			name: "met",
			rows: []ClusterRow{clusterRow(KVStore, Spread, 64, 1200, 9*time.Millisecond), clusterRow(Etcd, Spread, 64, 1000, 12*time.Millisecond)},
			met:  true, text: "1.200× (1,200 / 1,000 ops/s; p99 9.00 ms vs 12.00 ms)",
		},
		{
			name: "missed",
			rows: []ClusterRow{clusterRow(KVStore, Spread, 64, 1199, time.Millisecond), clusterRow(Etcd, Spread, 64, 1000, time.Millisecond)},
			text: "1.199×",
		},
		{
			name: "leader-only rows are not judged",
			rows: []ClusterRow{clusterRow(KVStore, LeaderOnly, 64, 5000, time.Millisecond), clusterRow(Etcd, Spread, 64, 1000, time.Millisecond)},
			text: "no kvstore result at 64",
		},
		{
			name: "etcd failed",
			rows: []ClusterRow{clusterRow(KVStore, Spread, 64, 1, time.Millisecond), {System: Etcd, Mode: Spread, Clients: 64, Err: "boom"}},
			text: "no etcd result at 64",
		},
		{
			name: "lost writes are never a pass",
			rows: []ClusterRow{func() ClusterRow {
				r := clusterRow(KVStore, Spread, 64, 5000, time.Millisecond)
				r.Mismatched = 2
				return r
			}(), clusterRow(Etcd, Spread, 64, 1000, time.Millisecond)},
			text: "2 acknowledged kvstore writes did not read back",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v := ClusterReport{Rows: tt.rows, JudgeClients: 64}.Verdict()
			if v.Met != tt.met || !strings.Contains(v.Measured, tt.text) {
				t.Errorf("verdict %+v, want met=%v and %q", v, tt.met, tt.text)
			}
		})
	}
}

func TestMTLSVerdict(t *testing.T) {
	plain := clusterRow(KVStore, Spread, 64, 1000, time.Millisecond)
	tests := []struct {
		name   string
		rows   []ClusterRow
		judged bool
		met    bool
		text   string
	}{
		{name: "no mtls row: not judged", rows: []ClusterRow{plain}},
		{name: "met", rows: []ClusterRow{plain, clusterRow(KVStoreMTLS, Spread, 64, 900, 2*time.Millisecond)}, judged: true, met: true, text: "0.900× (900 / 1,000 ops/s"},
		{name: "missed", rows: []ClusterRow{plain, clusterRow(KVStoreMTLS, Spread, 64, 899, time.Millisecond)}, judged: true, text: "0.899×"},
		{name: "mtls failed", rows: []ClusterRow{plain, {System: KVStoreMTLS, Mode: Spread, Clients: 64, Err: "boom"}}, judged: true, text: "no kvstore-mtls result at 64"},
		{name: "plain failed", rows: []ClusterRow{clusterRow(KVStoreMTLS, Spread, 64, 900, time.Millisecond)}, judged: true, text: "no kvstore result at 64"},
		{name: "lost writes are never a pass", rows: []ClusterRow{plain, func() ClusterRow {
			r := clusterRow(KVStoreMTLS, Spread, 64, 5000, time.Millisecond)
			r.Mismatched = 1
			return r
		}()}, judged: true, text: "1 acknowledged writes did not read back"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := ClusterReport{Rows: tt.rows, JudgeClients: 64}
			v, judged := r.MTLSVerdict()
			if judged != tt.judged || v.Met != tt.met || !strings.Contains(v.Measured, tt.text) {
				t.Errorf("verdict %+v judged %v, want judged=%v met=%v and %q", v, judged, tt.judged, tt.met, tt.text)
			}
			if md := r.Markdown(); strings.Contains(md, "with peer mTLS / without") != tt.judged {
				t.Errorf("the Markdown shows the mTLS target: %v, want %v", !tt.judged, tt.judged)
			}
		})
	}
}

func TestFailoverMedian(t *testing.T) {
	ms := time.Millisecond
	ok := func(d time.Duration) FailoverRep { return FailoverRep{Took: d} }
	bad := FailoverRep{Err: "timeout"}
	tests := []struct {
		reps   []FailoverRep
		want   time.Duration
		wantN  int
		wantOK bool
	}{
		{nil, 0, 0, false},
		{[]FailoverRep{ok(300 * ms), ok(100 * ms), ok(200 * ms)}, 200 * ms, 3, true},
		{[]FailoverRep{ok(300 * ms), ok(100 * ms)}, 200 * ms, 2, true},
		{[]FailoverRep{ok(300 * ms), bad, ok(100 * ms)}, 300 * ms, 2, true},
		{[]FailoverRep{bad, bad, ok(100 * ms)}, 0, 1, false},
		{[]FailoverRep{ok(100 * ms), bad}, 0, 1, false},
	}
	for i, tt := range tests {
		got, n, gotOK := Failover{Reps: tt.reps}.Median()
		if got != tt.want || n != tt.wantN || gotOK != tt.wantOK {
			t.Errorf("%d: Median() = %v, %d, %v; want %v, %d, %v", i, got, n, gotOK, tt.want, tt.wantN, tt.wantOK)
		}
	}
}

func TestErrorKinds(t *testing.T) {
	if got := ErrorKinds(nil); got != "0" {
		t.Errorf("ErrorKinds(nil) = %q", got)
	}
	got := ErrorKinds(map[string]int{"b": 2, "a": 2, "c": 5})
	if want := "5 c, 2 a, 2 b"; got != want {
		t.Errorf("ErrorKinds = %q, want %q", got, want)
	}
}

func TestClusterMarkdown(t *testing.T) {
	r := ClusterReport{
		Meta: ClusterMeta{Meta: Meta{Command: "bin/kvbench cluster", Wrapper: "hack/bench-cluster.sh", NProc: 2, CPUModel: "Test CPU",
			LoadAvg: "0.10 0.20 0.30", EtcdVersion: "3.6.16", EtcdConns: 1, Duration: 10 * time.Second, MaxOps: 100, KeySize: 16, ValueSize: 256},
			LoadEnd: "1.00 1.10 1.20", Nodes: 3, FailoverClients: 8, FailoverReps: 2, FailoverTimeout: 15 * time.Second},
		JudgeClients: 64,
		Rows: []ClusterRow{
			clusterRow(KVStore, Spread, 64, 900, 20*time.Millisecond),
			clusterRow(Etcd, Spread, 64, 1000, 30*time.Millisecond),
			clusterRow(KVStore, LeaderOnly, 64, 1100, 10*time.Millisecond),
			{System: Etcd, Mode: LeaderOnly, Clients: 64, Err: "etcd did not start"},
		},
		Failovers: []Failover{
			{System: KVStore, Reps: []FailoverRep{
				{Killed: "n0", NewLeader: "n1", Took: 1500 * time.Millisecond, LoadResumed: 1700 * time.Millisecond, Errors: map[string]int{"HTTP 503 no_quorum": 4}, Rejoined: 600 * time.Millisecond},
				{Killed: "n1", Err: "no write acknowledged within 15s of the kill"},
			}, Acked: 5000, Checked: 5000, Lost: 2, FirstLost: "GET k: 404"},
			{System: Etcd, Reps: []FailoverRep{{Killed: "e0", NewLeader: "e2", Took: 900 * time.Millisecond}}, Acked: 10, Checked: 10},
		},
	}
	md := r.Markdown()
	wantContains(t, md,
		"`hack/bench-cluster.sh`, which ran `bin/kvbench cluster`",
		"2 CPUs (`nproc`), Test CPU",
		"0.10 0.20 0.30 at the start, 1.00 1.10 1.20 at the end",
		"| kvstore | all 3 nodes, round robin | 64 | 900 | 5.00 ms | 20.00 ms | 0 | 3000/3000 ok | n0 |",
		"| etcd | all 3 endpoints, client balancer | 64 | 1,000 |",
		"| kvstore | leader only | 64 | 1,100 |",
		"| etcd | leader only | 64 | failed: etcd did not start |",
		"| 64 | 900 | 1,000 | 0.900× | 20.00 ms | 30.00 ms |",
		"| 0.900× (900 / 1,000 ops/s; p99 20.00 ms vs 30.00 ms) | ≥ 1.2× | ❌ |",
		"| kvstore | 1 | n0 | n1 | 1500 ms | 1700 ms | 4 HTTP 503 no_quorum | 600 ms |",
		"| kvstore | 2 | n1 | – | failed: no write acknowledged within 15s of the kill | not within the bound | 0 | – |",
		"a probe write sent every 10 ms from the kill on",
		"| kvstore | failed (1 of 2 kills recovered) | 5,000 | 4998/5000 ok ❌ **lost: 2** |",
		"| etcd | 900 ms | 10 | 10/10 ok | 0 |",
		"kvstore, first lost write: GET k: 404",
	)
}
