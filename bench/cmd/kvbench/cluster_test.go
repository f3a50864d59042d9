package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"kvstore.dev/kvstore/bench/internal/keyspace"
	"kvstore.dev/kvstore/bench/internal/report"
)

func TestParseClusterFlags(t *testing.T) {
	tests := []struct {
		name    string
		args    []string
		check   func(*clusterConfig) bool
		wantErr string
	}{
		{
			name: "defaults",
			check: func(c *clusterConfig) bool {
				return slices.Equal(c.targets, []string{report.KVStore, report.Etcd, report.KVStoreMTLS}) &&
					slices.Equal(c.clients, []int{1, 16, 64}) && c.judgeClients == 64 && c.leaderOnly &&
					c.duration == 10*time.Second && c.valueSize == 256 && c.etcdConns == 1 &&
					c.failoverReps == 3 && c.failoverClients == 8 && c.failoverTimeout == 15*time.Second &&
					c.out == "docs/benchmarks.md" && c.profileDir == ""
			},
		},
		{
			name: "systems in presentation order, no leader-only, no failover",
			args: []string{"-systems", "etcd,kvstore", "-leader-only=false", "-failover-reps", "0", "-clients", "64"},
			check: func(c *clusterConfig) bool {
				return slices.Equal(c.targets, []string{report.KVStore, report.Etcd}) && !c.leaderOnly &&
					c.failoverReps == 0 && slices.Equal(c.clients, []int{64})
			},
		},
		{
			name: "kvstore with peer mTLS",
			args: []string{"-systems", "kvstore-mtls,kvstore"},
			check: func(c *clusterConfig) bool {
				return slices.Equal(c.targets, []string{report.KVStore, report.KVStoreMTLS})
			},
		},
		{name: "unknown system", args: []string{"-systems", "redis"}, wantErr: `-systems: unknown target "redis"`},
		{name: "bad reps", args: []string{"-failover-reps", "-1"}, wantErr: "-failover-reps"},
		{name: "bad clients", args: []string{"-failover-clients", "0"}, wantErr: "-failover-clients"},
		{name: "stray argument", args: []string{"x"}, wantErr: "unexpected arguments"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := &clusterConfig{}
			err := cfg.setup(tt.args)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want it to contain %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !tt.check(cfg) {
				t.Errorf("unexpected config %+v", cfg)
			}
		})
	}
}

func TestClassifyPutError(t *testing.T) {
	refused := &url.Error{Op: "Put", URL: "http://127.0.0.1:4321/api/v1/kv/0123456789abcdef",
		Err: &net.OpError{Op: "dial", Net: "tcp", Err: os.NewSyscallError("connect", syscall.ECONNREFUSED)}}
	tests := []struct {
		err  error
		want string
	}{
		{fmt.Errorf("wrapped: %w", &httpStatusError{status: 503, code: "no_quorum"}), "HTTP 503 no_quorum"},
		{&httpStatusError{status: 502}, "HTTP 502"},
		{fmt.Errorf("PUT 0123456789abcdef: %w", refused), "connection refused"},
		{fmt.Errorf("PUT k: %w", syscall.ECONNRESET), "connection reset or closed"},
		{fmt.Errorf("etcd put k: %w", rpctypes.ErrLeaderChanged), "etcd Unavailable: etcdserver: leader changed"},
		{fmt.Errorf("etcd put k: %w", status.Error(codes.Unavailable, `connection error: desc = "transport: Error while dialing: dial tcp 127.0.0.1:1: connect: connection refused"`)),
			"gRPC Unavailable: connection refused"},
		{fmt.Errorf("etcd put k: %w", status.Error(codes.Unknown, "boom at 127.0.0.1:1234")), "gRPC Unknown: boom at 127.0.0.1:PORT"},
		{fmt.Errorf("PUT fedcba9876543210: %w", context.DeadlineExceeded), "no answer within the client timeout"},
		{errors.New("PUT fedcba9876543210 to 127.0.0.1:999: odd"), "other: PUT KEY to 127.0.0.1:PORT: odd"},
	}
	for _, tt := range tests {
		if got := classifyPutError(tt.err); got != tt.want {
			t.Errorf("classifyPutError(%v) = %q, want %q", tt.err, got, tt.want)
		}
	}
}

func TestSpreadPutOpRotates(t *testing.T) {
	targets := make([]kvClient, 3)
	rec := make([]*recordingClient, 3)
	for i := range targets {
		rec[i] = &recordingClient{}
		targets[i] = rec[i]
	}
	failed := make([][]uint64, 2)
	newOp := spreadPutOp(targets, keyspace.New(1), 8, failed)
	for c := range 2 {
		op := newOp(c)
		for k := range 4 {
			if err := op(context.Background(), uint64(c*10+k)); err != nil {
				t.Fatal(err)
			}
		}
	}
	// Client 0 writes seq 0..3 through nodes 0,1,2,0; client 1 writes
	// seq 10..13 through nodes 1,2,0,1.
	want := [][]uint64{{0, 3, 12}, {1, 10, 13}, {2, 11}}
	for i, r := range rec {
		got := slices.Sorted(slices.Values(r.seqs))
		if !slices.Equal(got, want[i]) {
			t.Errorf("node %d got writes %v, want %v", i, got, want[i])
		}
	}
	if failed[0] != nil || failed[1] != nil {
		t.Errorf("failed = %v, want none", failed)
	}
}

// recordingClient records which keys were written through it.
type recordingClient struct {
	mu   sync.Mutex
	seqs []uint64
}

func (r *recordingClient) Put(_ context.Context, key, _ []byte) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	ks := keyspace.New(1)
	buf := make([]byte, keyspace.KeySize)
	for i := range uint64(100) {
		if string(ks.Key(buf, i)) == string(key) {
			r.seqs = append(r.seqs, i)
			return nil
		}
	}
	return fmt.Errorf("unknown key %s", key)
}
func (r *recordingClient) Get(context.Context, []byte, []byte) ([]byte, error) {
	return nil, errors.New("not implemented")
}
func (r *recordingClient) Close() error { return nil }

// fakeCluster is an in-process stand-in for a three-node cluster: a
// shared map, a leader, and nodes that can be down. After the leader is
// killed a new one is elected after election; with loseOnKill, the last
// acknowledged writes vanish with the leader (a broken system).
type fakeCluster struct {
	election   time.Duration
	loseOnKill int
	// hang makes writes sent while there is no leader wait for their
	// context (as etcd followers hold proposals until a timeout).
	hang bool

	mu       sync.Mutex
	data     map[string]string
	order    []string // keys in acknowledgement order
	leaderIx int      // -1 while electing
	down     [3]bool
	kills    int
	restarts int
}

func newFakeCluster(election time.Duration) *fakeCluster {
	return &fakeCluster{election: election, data: map[string]string{}}
}

func (f *fakeCluster) system() string  { return "fake" }
func (f *fakeCluster) names() []string { return []string{"f0", "f1", "f2"} }
func (f *fakeCluster) pid(i int) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.down[i] {
		return 0
	}
	return 1000 + i
}

func (f *fakeCluster) leader(ctx context.Context) (int, error) {
	for {
		f.mu.Lock()
		l := f.leaderIx
		f.mu.Unlock()
		if l >= 0 {
			return l, nil
		}
		select {
		case <-ctx.Done():
			return 0, ctx.Err()
		case <-time.After(5 * time.Millisecond):
		}
	}
}

func (f *fakeCluster) spread() []kvClient {
	return []kvClient{fakeNode{f, 0}, fakeNode{f, 1}, fakeNode{f, 2}}
}
func (f *fakeCluster) leaderClient(i int) (kvClient, error)      { return fakeNode{f, i}, nil }
func (f *fakeCluster) reader(i int) (kvClient, error)            { return fakeNode{f, i}, nil }
func (f *fakeCluster) term(context.Context, int) (uint64, error) { return 1, nil }

func (f *fakeCluster) kill(i int) (time.Time, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	at := time.Now()
	f.down[i] = true
	f.kills++
	if i == f.leaderIx {
		f.leaderIx = -1
		for range f.loseOnKill {
			if n := len(f.order); n > 0 {
				delete(f.data, f.order[n-1])
				f.order = f.order[:n-1]
			}
		}
		time.AfterFunc(f.election, func() {
			f.mu.Lock()
			defer f.mu.Unlock()
			f.leaderIx = (i + 1) % 3
		})
	}
	return at, nil
}

func (f *fakeCluster) restart(_ context.Context, i int) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.down[i] = false
	f.restarts++
	return nil
}

func (f *fakeCluster) close() error { return nil }

// fakeNode is a client of one fakeCluster node.
type fakeNode struct {
	f *fakeCluster
	i int
}

func (n fakeNode) Put(ctx context.Context, key, value []byte) error {
	n.f.mu.Lock()
	defer n.f.mu.Unlock()
	switch {
	case n.f.down[n.i]:
		return fmt.Errorf("PUT %s: %w", key, syscall.ECONNREFUSED)
	case n.f.leaderIx < 0 && n.f.hang:
		n.f.mu.Unlock()
		<-ctx.Done()
		n.f.mu.Lock()
		return fmt.Errorf("PUT %s: %w", key, ctx.Err())
	case n.f.leaderIx < 0:
		return fmt.Errorf("PUT %s: %w", key, &httpStatusError{status: 503, code: "no_quorum"})
	}
	n.f.data[string(key)] = string(value)
	n.f.order = append(n.f.order, string(key))
	return nil
}

func (n fakeNode) Get(_ context.Context, key, dst []byte) ([]byte, error) {
	n.f.mu.Lock()
	defer n.f.mu.Unlock()
	v, ok := n.f.data[string(key)]
	if !ok {
		return nil, fmt.Errorf("fake: %w", &httpStatusError{method: "GET", key: string(key), status: 404, statusText: "404 Not Found", code: "not_found"})
	}
	return append(dst[:0], v...), nil
}

func (n fakeNode) Close() error { return nil }

// fakeFailoverConfig returns a fast failover configuration for the fake
// cluster, and shortens the pauses around each kill for the test.
func fakeFailoverConfig(t *testing.T) *clusterConfig {
	after, tail := failoverAfter, failoverTail
	failoverAfter, failoverTail = 100*time.Millisecond, 100*time.Millisecond
	t.Cleanup(func() { failoverAfter, failoverTail = after, tail })
	return &clusterConfig{failoverReps: 2, failoverClients: 4, failoverTimeout: 2 * time.Second,
		failoverWarmup: 50 * time.Millisecond, commonFlags: commonFlags{opTimeout: time.Second, valueSize: 32}}
}

func TestMeasureFailover(t *testing.T) {
	const election = 150 * time.Millisecond
	fc := newFakeCluster(election)
	var f report.Failover
	if err := measureFailover(context.Background(), fakeFailoverConfig(t), fc, keyspace.New(7), &f); err != nil {
		t.Fatal(err)
	}
	if len(f.Reps) != 2 || fc.kills != 2 || fc.restarts != 2 {
		t.Fatalf("reps %+v, %d kills, %d restarts; want 2 of each", f.Reps, fc.kills, fc.restarts)
	}
	for i, r := range f.Reps {
		if r.Err != "" {
			t.Fatalf("rep %d: %s", i, r.Err)
		}
		if r.Took < election || r.Took > election+500*time.Millisecond {
			t.Errorf("rep %d: failover took %v, want about %v", i, r.Took, election)
		}
		if r.Killed == r.NewLeader || r.NewLeader == "" {
			t.Errorf("rep %d: killed %s, new leader %q", i, r.Killed, r.NewLeader)
		}
		if r.LoadResumed < r.Took || r.LoadResumed > r.Took+500*time.Millisecond {
			t.Errorf("rep %d: load resumed after %v, want soon after %v", i, r.LoadResumed, r.Took)
		}
		if r.Errors["HTTP 503 no_quorum"] == 0 {
			t.Errorf("rep %d: errors during the election %v, want some 503 no_quorum", i, r.Errors)
		}
	}
	if f.Reps[0].Killed != "f0" || f.Reps[1].Killed != "f1" {
		t.Errorf("killed %s then %s, want the leader each time (f0, f1)", f.Reps[0].Killed, f.Reps[1].Killed)
	}
	if f.Acked == 0 || f.Checked != f.Acked || f.Lost != 0 {
		t.Errorf("acked %d, checked %d, lost %d; want every acknowledged write checked and none lost", f.Acked, f.Checked, f.Lost)
	}
	if f.OtherErrors["connection refused"] == 0 {
		t.Errorf("other errors %v, want writes refused by the killed node while it was down", f.OtherErrors)
	}
}

// TestMeasureFailoverProbes checks that a cluster that recovers while every
// load client is stuck on a write sent before the kill is seen recovering
// by the probe writes.
func TestMeasureFailoverProbes(t *testing.T) {
	const election = 100 * time.Millisecond
	fc := newFakeCluster(election)
	fc.hang = true
	cfg := fakeFailoverConfig(t)
	cfg.failoverReps = 1
	var f report.Failover
	if err := measureFailover(context.Background(), cfg, fc, keyspace.New(7), &f); err != nil {
		t.Fatal(err)
	}
	r := f.Reps[0]
	if r.Err != "" || r.Took < election || r.Took > election+300*time.Millisecond {
		t.Errorf("failover took %v (%s), want about %v", r.Took, r.Err, election)
	}
	// The load clients are stuck until their 1s timeout.
	if r.LoadResumed < cfg.opTimeout/2 {
		t.Errorf("load resumed after %v, want close to the %v client timeout", r.LoadResumed, cfg.opTimeout)
	}
	if f.Lost != 0 || f.Checked != f.Acked {
		t.Errorf("acked %d, checked %d, lost %d", f.Acked, f.Checked, f.Lost)
	}
}

func TestMeasureFailoverFindsLostWrites(t *testing.T) {
	fc := newFakeCluster(50 * time.Millisecond)
	fc.loseOnKill = 3
	cfg := fakeFailoverConfig(t)
	cfg.failoverReps = 1
	var f report.Failover
	if err := measureFailover(context.Background(), cfg, fc, keyspace.New(7), &f); err != nil {
		t.Fatal(err)
	}
	if f.Lost != 3 || !strings.Contains(f.FirstLost, "404") {
		t.Errorf("lost %d (first: %q), want 3 lost writes found", f.Lost, f.FirstLost)
	}
}

func TestMeasureFailoverTimesOut(t *testing.T) {
	fc := newFakeCluster(time.Hour) // never elects
	cfg := fakeFailoverConfig(t)
	cfg.failoverReps = 1
	cfg.failoverTimeout = 200 * time.Millisecond
	var f report.Failover
	if err := measureFailover(context.Background(), cfg, fc, keyspace.New(7), &f); err != nil {
		t.Fatal(err)
	}
	if len(f.Reps) != 1 || !strings.Contains(f.Reps[0].Err, "no write acknowledged within 200ms") {
		t.Errorf("reps %+v, want one that timed out", f.Reps)
	}
}
