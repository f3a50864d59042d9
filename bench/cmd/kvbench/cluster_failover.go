package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"regexp"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	"google.golang.org/grpc/status"

	"kvstore.dev/kvstore/bench/internal/keyspace"
	"kvstore.dev/kvstore/bench/internal/report"
)

// Failover timing around each kill (variables so tests can shorten them).
var (
	// failoverAfter is how long the load keeps running with the killed
	// node down, after the first acknowledged write.
	failoverAfter = time.Second
	// failoverTail is how long the load runs after the last restart.
	failoverTail = time.Second
)

// verifyTimeout bounds the read-back of the acknowledged writes.
const verifyTimeout = 90 * time.Second

// runFailover starts a fresh cluster of system, puts it under a write load
// through every node, kills the leader cfg.failoverReps times (restarting
// it in between) and measures the time from each kill to the first
// acknowledged write; finally every acknowledged write is read back.
func runFailover(ctx context.Context, cfg *clusterConfig, system, dir string, ks keyspace.Space) report.Failover {
	f := report.Failover{System: system, Clients: cfg.failoverClients, OtherErrors: map[string]int{}}
	cl, err := startBenchCluster(ctx, cfg, system, dir, cfg.failoverClients)
	if err != nil {
		f.Err = err.Error()
		warnf("%s failover: %v", system, err)
		return f
	}
	defer closeOrWarn(cl)
	if err := measureFailover(ctx, cfg, cl, ks, &f); err != nil {
		f.Err = err.Error()
		warnf("%s failover: %v", system, err)
	}
	return f
}

// measureFailover runs the failover measurement on a running cluster.
func measureFailover(ctx context.Context, cfg *clusterConfig, cl benchCluster, ks keyspace.Space, f *report.Failover) error {
	system := cl.system()
	fl := newFailoverLoad(cl.spread(), ks, cfg.valueSize, cfg.opTimeout)
	loadCtx, stopLoad := context.WithCancel(ctx)
	loadDone := make(chan struct{})
	go func() {
		fl.run(loadCtx, cfg.failoverClients)
		close(loadDone)
	}()
	stopped := false
	stop := func() {
		if !stopped {
			stopped = true
			stopLoad()
			<-loadDone
		}
	}
	defer stop()

	var measureErr error
	for rep := range cfg.failoverReps {
		r, err := failoverOnce(ctx, cfg, cl, fl)
		if ctx.Err() != nil {
			return ctx.Err()
		}
		f.Reps = append(f.Reps, r)
		msg := fmt.Sprintf("kill %d: %s (leader) killed, first write acknowledged %s later (new leader %s), load clients resumed after %s with %s failed writes; rejoined in %s",
			rep+1, r.Killed, report.Duration(r.Took), r.NewLeader, report.Duration(r.LoadResumed), report.ErrorKinds(r.Errors), report.Duration(r.Rejoined))
		if r.Err != "" {
			msg = fmt.Sprintf("kill %d: %s", rep+1, r.Err)
		}
		infof("%s failover: %s", system, msg)
		if err != nil {
			// The cluster is not in a state to go on (a node could not
			// be killed or restarted).
			measureErr = err
			break
		}
	}
	if measureErr == nil {
		time.Sleep(failoverTail)
	}
	stop()
	// Every acknowledged write must be there, read through every node in
	// turn (only running nodes).
	seqs := fl.ackedSeqs()
	f.Acked, f.OtherErrors = fl.result()
	vctx, cancel := context.WithTimeout(ctx, verifyTimeout)
	defer cancel()
	var readers []kvClient
	for i := range cl.names() {
		if cl.pid(i) == 0 {
			continue
		}
		r, err := cl.reader(i)
		if err != nil {
			return errors.Join(measureErr, err)
		}
		readers = append(readers, r)
	}
	for i, r := range readers {
		var part []uint64
		for j := i; j < len(seqs); j += len(readers) {
			part = append(part, seqs[j])
		}
		checked, bad, first := verifyWrites(vctx, r, ks, cfg.valueSize, cfg.opTimeout, part, 16)
		f.Checked += checked
		f.Lost += bad
		if f.FirstLost == "" {
			f.FirstLost = first
		}
	}
	if vctx.Err() != nil && ctx.Err() == nil {
		measureErr = errors.Join(measureErr, fmt.Errorf("read-back of %d acknowledged writes stopped after %v (%d checked)", len(seqs), verifyTimeout, f.Checked))
	}
	infof("%s failover: %d writes acknowledged, %d/%d read back ok; other failed writes: %s",
		system, f.Acked, f.Checked-f.Lost, f.Checked, report.ErrorKinds(f.OtherErrors))
	return measureErr
}

// failoverOnce warms up, kills the leader, waits for the first
// acknowledged write, and restarts the killed node. A returned error means
// the measurement cannot go on; a rep that merely timed out carries Err.
func failoverOnce(ctx context.Context, cfg *clusterConfig, cl benchCluster, fl *failoverLoad) (report.FailoverRep, error) {
	var r report.FailoverRep
	before := fl.acked.Load()
	select {
	case <-ctx.Done():
		return r, ctx.Err()
	case <-time.After(cfg.failoverWarmup):
	}
	if fl.acked.Load() == before {
		r.Err = fmt.Sprintf("no write acknowledged during the %v before the kill", cfg.failoverWarmup)
		return r, errors.New(r.Err)
	}
	leader, err := cl.leader(ctx)
	if err != nil {
		r.Err = err.Error()
		return r, err
	}
	r.Killed = cl.names()[leader]

	fl.openWindow()
	killedAt, err := cl.kill(leader)
	if err != nil {
		fl.closeWindow()
		r.Err = err.Error()
		return r, err
	}
	// Only writes sent from now on count: the killed process is gone.
	fl.gate.Store(time.Now().UnixNano())
	deadline := killedAt.Add(cfg.failoverTimeout)
	pctx, stopProbes := context.WithDeadline(ctx, deadline)
	go fl.probe(pctx)
	for (fl.firstAck.Load() == 0 || fl.firstLoadAck.Load() == 0) && time.Now().Before(deadline) && ctx.Err() == nil {
		time.Sleep(time.Millisecond)
	}
	stopProbes()
	first, firstLoad := fl.firstAck.Load(), fl.firstLoadAck.Load()
	r.Errors = fl.closeWindow()
	if first == 0 {
		r.Err = fmt.Sprintf("no write acknowledged within %v of the kill", cfg.failoverTimeout)
	} else {
		r.Took = time.Unix(0, first).Sub(killedAt)
		if l, err := cl.leader(ctx); err == nil {
			r.NewLeader = cl.names()[l]
		}
	}
	if firstLoad != 0 {
		r.LoadResumed = time.Unix(0, firstLoad).Sub(killedAt)
	}

	time.Sleep(failoverAfter)
	t0 := time.Now()
	if err := cl.restart(ctx, leader); err != nil {
		err = fmt.Errorf("restart %s: %w", r.Killed, err)
		if r.Err == "" {
			r.Err = err.Error()
		}
		return r, err
	}
	r.Rejoined = time.Since(t0)
	return r, nil
}

// failoverLoad is a closed-loop write load during the failover
// measurement. Client c sends its k-th write through
// targets[(c+k)%len(targets)]; it pauses briefly after a failure so that
// a refused connection does not become a busy loop. While a failover
// window is open, probe adds an open-loop write every probeInterval, so
// that the first write the cluster can take after a kill is seen even
// when every load client is stuck on a write sent before it.
type failoverLoad struct {
	targets   []kvClient
	ks        keyspace.Space
	valueSize int
	opTimeout time.Duration

	next         atomic.Uint64
	acked        atomic.Int64
	gate         atomic.Int64 // unix nanos; 0 means closed
	firstAck     atomic.Int64 // unix nanos of the first ack of a write (load or probe) sent at or after gate
	firstLoadAck atomic.Int64 // the same for the load clients' writes only
	probes       sync.WaitGroup

	mu         sync.Mutex
	inWindow   bool
	window     map[string]int // load failures between a kill and the load's first ack
	other      map[string]int // all other load failures
	perClient  [][]uint64     // acknowledged load writes, per client
	probeAcked []uint64       // acknowledged probe writes
}

// probeInterval is how often a failover probe write is sent.
const probeInterval = report.ProbeInterval

// failurePause is how long a failover client waits after a failed write.
const failurePause = 5 * time.Millisecond

func newFailoverLoad(targets []kvClient, ks keyspace.Space, valueSize int, opTimeout time.Duration) *failoverLoad {
	return &failoverLoad{targets: targets, ks: ks, valueSize: valueSize, opTimeout: opTimeout, other: map[string]int{}}
}

// run drives clients until ctx ends.
func (l *failoverLoad) run(ctx context.Context, clients int) {
	l.perClient = make([][]uint64, clients)
	var wg sync.WaitGroup
	for c := range clients {
		wg.Go(func() {
			key := make([]byte, keyspace.KeySize)
			val := make([]byte, l.valueSize)
			for k := c; ctx.Err() == nil; k++ {
				t := l.targets[k%len(l.targets)]
				seq := l.next.Add(1) - 1
				kk := l.ks.Key(key, seq)
				l.ks.Value(val, seq)
				t0 := time.Now().UnixNano()
				octx, cancel := context.WithTimeout(ctx, l.opTimeout)
				err := t.Put(octx, kk, val)
				cancel()
				if err == nil {
					t1 := time.Now().UnixNano()
					l.perClient[c] = append(l.perClient[c], seq)
					l.acked.Add(1)
					if g := l.gate.Load(); g != 0 && t0 >= g {
						l.firstAck.CompareAndSwap(0, t1)
						l.firstLoadAck.CompareAndSwap(0, t1)
					}
					continue
				}
				if ctx.Err() != nil {
					return
				}
				l.failed(classifyPutError(err))
				select {
				case <-ctx.Done():
				case <-time.After(failurePause):
				}
			}
		})
	}
	wg.Wait()
}

// probe sends a write every probeInterval, each in its own goroutine,
// through the targets in turn, until ctx ends or a write sent after the
// gate is acknowledged. Probe failures are not counted: they only tell
// when the cluster takes writes again.
func (l *failoverLoad) probe(ctx context.Context) {
	tick := time.NewTicker(probeInterval)
	defer tick.Stop()
	for k := 0; ctx.Err() == nil && l.firstAck.Load() == 0; k++ {
		t := l.targets[k%len(l.targets)]
		seq := l.next.Add(1) - 1
		l.probes.Go(func() {
			key := make([]byte, keyspace.KeySize)
			val := make([]byte, l.valueSize)
			kk := l.ks.Key(key, seq)
			l.ks.Value(val, seq)
			t0 := time.Now().UnixNano()
			octx, cancel := context.WithTimeout(context.WithoutCancel(ctx), l.opTimeout)
			err := t.Put(octx, kk, val)
			cancel()
			if err != nil {
				return
			}
			t1 := time.Now().UnixNano()
			l.acked.Add(1)
			if g := l.gate.Load(); g != 0 && t0 >= g {
				l.firstAck.CompareAndSwap(0, t1)
			}
			l.mu.Lock()
			l.probeAcked = append(l.probeAcked, seq)
			l.mu.Unlock()
		})
		select {
		case <-ctx.Done():
		case <-tick.C:
		}
	}
}

func (l *failoverLoad) failed(kind string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.inWindow {
		l.window[kind]++
	} else {
		l.other[kind]++
	}
}

// openWindow starts counting failures as part of a failover (call it just
// before the kill).
func (l *failoverLoad) openWindow() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.inWindow, l.window = true, map[string]int{}
	l.firstAck.Store(0)
	l.firstLoadAck.Store(0)
	l.gate.Store(0)
}

// closeWindow stops counting failures as part of the failover and returns
// what it counted.
func (l *failoverLoad) closeWindow() map[string]int {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.inWindow = false
	l.gate.Store(0)
	return l.window
}

// result returns the number of acknowledged writes and the failures
// outside failover windows; call it after run has returned.
func (l *failoverLoad) result() (int, map[string]int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return int(l.acked.Load()), l.other
}

// ackedSeqs returns the sequence numbers of the acknowledged writes, load
// and probes; call it after run has returned. It waits for the probes
// still in flight.
func (l *failoverLoad) ackedSeqs() []uint64 {
	l.probes.Wait()
	l.mu.Lock()
	defer l.mu.Unlock()
	out := slices.Clone(l.probeAcked)
	for _, s := range l.perClient {
		out = append(out, s...)
	}
	return out
}

var (
	hexKey   = regexp.MustCompile(`\b[0-9a-f]{16}\b`)
	hostPort = regexp.MustCompile(`127\.0\.0\.1:\d+`)
)

// classifyPutError names the kind of a failed write for the report:
// kvstore's HTTP status and problem code, etcd's error, or what happened
// to the connection.
func classifyPutError(err error) string {
	var se *httpStatusError
	if errors.As(err, &se) {
		if se.code != "" {
			return fmt.Sprintf("HTTP %d %s", se.status, se.code)
		}
		return fmt.Sprintf("HTTP %d", se.status)
	}
	var ee rpctypes.EtcdError
	if errors.As(err, &ee) {
		return "etcd " + ee.Code().String() + ": " + ee.Error()
	}
	switch {
	case errors.Is(err, syscall.ECONNREFUSED):
		return "connection refused"
	case errors.Is(err, syscall.ECONNRESET), errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return "connection reset or closed"
	case errors.Is(err, context.DeadlineExceeded):
		return "no answer within the client timeout"
	}
	var ge interface{ GRPCStatus() *status.Status }
	if errors.As(err, &ge) {
		st := ge.GRPCStatus()
		msg := st.Message()
		switch {
		case strings.Contains(msg, "connection refused"):
			msg = "connection refused"
		case strings.Contains(msg, "connection reset"), strings.Contains(msg, "EOF"), strings.Contains(msg, "connection closed"):
			msg = "connection reset or closed"
		}
		return "gRPC " + st.Code().String() + ": " + shorten(msg)
	}
	return "other: " + shorten(err.Error())
}

// shorten strips keys and ports from an error message and bounds it.
func shorten(s string) string {
	s = hostPort.ReplaceAllString(hexKey.ReplaceAllString(s, "KEY"), "127.0.0.1:PORT")
	if r := []rune(s); len(r) > 100 {
		s = string(r[:100]) + "…"
	}
	return s
}
