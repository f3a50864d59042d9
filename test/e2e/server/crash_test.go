// Black-box durability tests of the kvstore binary: concurrent writers run
// against the real server process, the process is killed with SIGKILL (or
// stopped with SIGTERM) mid-stream and restarted on the same data directory,
// and every key must then hold its last acknowledged value, or a value whose
// write was still in flight when the process died.
package server

import (
	"bytes"
	"flag"
	"fmt"
	"math/rand/v2"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"kvstore.dev/kvstore/test/harness"
)

var crashSeed = flag.Uint64("crash.seed", 0, "seed of the black-box crash tests' random choices (0: time-based)")

const (
	crashRounds  = 3
	crashWriters = 8
	// driveTimeout bounds one round of writes before the server is stopped.
	driveTimeout = 15 * time.Second
)

// TestCrashDurability kills the server with SIGKILL while writers are
// mid-stream, several rounds on one data directory, and checks after each
// restart that no acknowledged write was lost.
func TestCrashDurability(t *testing.T) {
	o := harness.ProcessOptions{DataDir: t.TempDir(), Token: harness.Token()}
	seed := testSeed(t)
	rng := rand.New(rand.NewPCG(seed, 1))
	w := newWorkload(crashWriters, seed)

	p := harness.StartProcess(t, o)
	for round := 1; round <= crashRounds; round++ {
		w.round = round
		// Kill after a random number of acknowledged writes: some hundreds.
		target := 200 + rng.IntN(400)
		// ... plus up to 2ms, so that the kill lands anywhere in the server's
		// commit cycle, not always just after an acknowledgement.
		jitter := time.Duration(rng.IntN(2000)) * time.Microsecond
		st := w.drive(t, p.Client(t), p, target, jitter, func() { p.Kill(t) })
		t.Logf("round %d: SIGKILL after %d acknowledged writes (target %d); %d writes in flight; %d keys so far",
			round, st.acked, target, st.inFlight, w.numKeys())
		if t.Failed() {
			t.FailNow()
		}
		p = harness.StartProcess(t, o)
		w.verify(t, p.Client(t), fmt.Sprintf("after SIGKILL in round %d", round))
	}
}

// TestGracefulShutdown checks that SIGTERM, even with writes in flight, makes
// the server exit 0 promptly and keep every acknowledged write.
func TestGracefulShutdown(t *testing.T) {
	o := harness.ProcessOptions{DataDir: t.TempDir(), Token: harness.Token()}
	seed := testSeed(t)

	p := harness.StartProcess(t, o)
	c := p.Client(t)
	// Writes that all finish before the signal: each must survive as is.
	want := make(map[string][]byte)
	for i := range 40 {
		key, value := fmt.Sprintf("g/k%03d", i), fmt.Appendf(nil, "first %d", i)
		mustPut(t, c, key, value, http.StatusCreated)
		want[key] = value
	}
	for i := range 10 {
		key, value := fmt.Sprintf("g/k%03d", i), fmt.Appendf(nil, "second %d", i)
		mustPut(t, c, key, value, http.StatusOK)
		want[key] = value
	}
	// Then SIGTERM while writers are mid-stream, so that the drain is exercised.
	w := newWorkload(4, seed)
	w.round = 1
	st := w.drive(t, c, p, 100, 0, func() { p.Terminate(t) })
	t.Logf("SIGTERM after %d acknowledged writes; %d writes without an answer", st.acked, st.inFlight)
	if t.Failed() {
		t.FailNow()
	}

	p = harness.StartProcess(t, o)
	c = p.Client(t)
	for key, v := range want {
		mustGet(t, c, key, v)
	}
	w.verify(t, c, "after SIGTERM")
}

// TestRestartKeepsData checks that values, key existence and revisions
// survive restarts, however the server was stopped while idle.
func TestRestartKeepsData(t *testing.T) {
	bin := harness.Binary(t, "server")
	tests := map[string]struct {
		stop func(t *testing.T, p *harness.Process)
	}{
		"SIGTERM":         {stop: func(t *testing.T, p *harness.Process) { p.Terminate(t) }},
		"SIGKILL at rest": {stop: func(t *testing.T, p *harness.Process) { p.Kill(t) }},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			o := harness.ProcessOptions{Bin: bin, DataDir: t.TempDir(), Token: harness.Token()}

			p := harness.StartProcess(t, o)
			c := p.Client(t)
			mustPut(t, c, "a", []byte("a1"), http.StatusCreated)
			mustPut(t, c, "b", []byte("b1"), http.StatusCreated)
			aRev := mustPut(t, c, "a", []byte("a2"), http.StatusOK)
			mustPut(t, c, "dir/sub/c", []byte("c1"), http.StatusCreated)
			mustPut(t, c, "bin", []byte{0, 1, 2, 0xfe, 0xff, '\n'}, http.StatusCreated)
			tc.stop(t, p)

			p = harness.StartProcess(t, o)
			c = p.Client(t)
			mustGet(t, c, "a", []byte("a2"))
			mustGet(t, c, "b", []byte("b1"))
			mustGet(t, c, "dir/sub/c", []byte("c1"))
			mustGet(t, c, "bin", []byte{0, 1, 2, 0xfe, 0xff, '\n'})
			mustGet(t, c, "never/written", nil)
			// The store still knows which keys exist, and revisions go on.
			if rev := mustPut(t, c, "a", []byte("a3"), http.StatusOK); rev <= aRev {
				t.Errorf("revision of a after restart = %d, want more than %d", rev, aRev)
			}
			mustPut(t, c, "d", []byte("d1"), http.StatusCreated)
			tc.stop(t, p)

			p = harness.StartProcess(t, o)
			c = p.Client(t)
			mustGet(t, c, "a", []byte("a3"))
			mustGet(t, c, "d", []byte("d1"))
		})
	}
}

// testSeed returns -crash.seed or a time-based seed, and logs it.
func testSeed(t *testing.T) uint64 {
	t.Helper()
	seed := *crashSeed
	if seed == 0 {
		seed = uint64(time.Now().UnixNano())
	}
	t.Logf("seed %d (rerun with -crash.seed=%d)", seed, seed)
	return seed
}

// mustPut writes key and fails the test unless the answer is wantStatus and
// meets the contract. It returns the new revision.
func mustPut(t *testing.T, c *harness.Client, key string, value []byte, wantStatus int) int64 {
	t.Helper()
	res, err := put(c, key, value)
	if err != nil {
		t.Fatalf("PUT %s: %v", key, err)
	}
	if res.status != http.StatusOK && res.status != http.StatusCreated {
		t.Fatalf("PUT %s: status %d, want %d: %s", key, res.status, wantStatus, res.body)
	}
	harness.ReportProblems(t, "PUT "+key, checkPutContract(key, wantStatus == http.StatusOK, 0, res))
	return int64(res.meta.Revision)
}

// mustGet reads key and fails the test unless it holds want; nil want means
// the key must not exist.
func mustGet(t *testing.T, c *harness.Client, key string, want []byte) {
	t.Helper()
	res := c.Get(key, "")
	if res.Err != nil {
		t.Fatalf("GET %s: %v", key, res.Err)
	}
	switch {
	case want == nil && res.Status == http.StatusNotFound:
		harness.ReportProblems(t, "GET "+key, checkNotFound(key, res))
	case want == nil:
		t.Errorf("GET %s: status %d body %s, want 404", key, res.Status, describe(res.Body))
	case res.Status != http.StatusOK:
		t.Errorf("GET %s: status %d body %q, want 200", key, res.Status, res.Body)
	case !bytes.Equal(res.Body, want):
		t.Errorf("GET %s: value mismatch (-want +got):\n-%q\n+%q", key, want, res.Body)
	}
}

// workload is a set of writers, each the only one to write its keys, so the
// writes to a key are ordered by its writer's program order. It remembers
// what each key must hold across rounds of writes and restarts. Between
// calls to drive, it is used by the test goroutine only; during drive, writer
// i alone touches keys[i], next[i] and rngs[i].
type workload struct {
	round int
	keys  [][]*keyState // keys[i] are writer i's keys, in creation order
	next  []int         // next new-key number of each writer
	seq   []int         // write sequence number of each writer
	rngs  []*rand.Rand
}

// keyState is what one key must hold.
type keyState struct {
	key     string
	present bool   // whether the key held a value when last verified
	value   []byte // that value
	lastRev int64  // last revision acknowledged for the key, 0 if none
	ops     []writeOp
}

// writeOp is one write of the current round, in the order sent.
type writeOp struct {
	value []byte
	acked bool // false: still in flight, or failed, when the server went away
}

func newWorkload(writers int, seed uint64) *workload {
	w := &workload{
		keys: make([][]*keyState, writers),
		next: make([]int, writers),
		seq:  make([]int, writers),
		rngs: make([]*rand.Rand, writers),
	}
	for i := range w.rngs {
		w.rngs[i] = rand.New(rand.NewPCG(seed, uint64(i)+100))
	}
	return w
}

func (w *workload) numKeys() int {
	n := 0
	for _, ks := range w.keys {
		n += len(ks)
	}
	return n
}

// driveStats summarizes one call of drive.
type driveStats struct {
	acked    int // writes acknowledged
	inFlight int // writes sent that got no acknowledgement
}

// drive runs the writers against c until ackTarget writes have been
// acknowledged and jitter has passed, then calls stopServer with the writers
// still going, and returns once they have all finished. Contract violations
// are test errors.
func (w *workload) drive(t *testing.T, c *harness.Client, p *harness.Process, ackTarget int, jitter time.Duration, stopServer func()) driveStats {
	t.Helper()
	stop := make(chan struct{})
	reached := make(chan struct{})
	var acked atomic.Int64
	onAck := func() {
		if acked.Add(1) == int64(ackTarget) {
			close(reached)
		}
	}
	problems := make([][]string, len(w.keys))
	var wg sync.WaitGroup
	for i := range w.keys {
		wg.Add(1)
		go func() {
			defer wg.Done()
			problems[i] = w.write(i, c, stop, onAck)
		}()
	}
	writersDone := make(chan struct{})
	go func() {
		wg.Wait()
		close(writersDone)
	}()
	halted := false
	halt := func() {
		if halted {
			return
		}
		halted = true
		close(stop)
		// Connections the client dialed but never used count as busy in
		// net/http's Shutdown for 5s; close them so that a graceful stop is
		// not held up by this client's pooling.
		c.CloseIdle()
		stopServer()
		<-writersDone
	}
	defer halt() // also on t.Fatal, so that no writer outlives the test

	timer := time.NewTimer(driveTimeout)
	defer timer.Stop()
	var failure string
	select {
	case <-reached:
		if jitter > 0 {
			// Not a wait for a condition: a random offset of the stop.
			time.Sleep(jitter)
		}
	case <-p.Done():
		failure = fmt.Sprintf("%s exited while writers were running: %v", p.Name, p.WaitErr())
	case <-writersDone:
		failure = "all writers stopped before the server was stopped"
	case <-timer.C:
		failure = fmt.Sprintf("only %d of %d writes acknowledged after %v", acked.Load(), ackTarget, driveTimeout)
	}
	halt()

	var all []string
	for _, ps := range problems {
		all = append(all, ps...)
	}
	harness.ReportProblems(t, fmt.Sprintf("round %d writes", w.round), all)
	if failure != "" {
		t.Fatal(failure)
	}
	st := driveStats{acked: int(acked.Load())}
	for _, ks := range w.keys {
		for _, k := range ks {
			for _, op := range k.ops {
				if !op.acked {
					st.inFlight++
				}
			}
		}
	}
	return st
}

// write is writer i's loop: it overwrites its keys or creates new ones until
// stop is closed or a request fails, and returns the contract violations it
// saw.
func (w *workload) write(i int, c *harness.Client, stop <-chan struct{}, onAck func()) []string {
	var problems []string
	for {
		select {
		case <-stop:
			return problems
		default:
		}
		k := w.pick(i)
		value := w.value(i, k)
		existed := k.present
		for _, op := range k.ops {
			existed = existed || op.acked
		}
		k.ops = append(k.ops, writeOp{value: value})
		res, err := put(c, k.key, value)
		if err != nil {
			// Outcome unknown; the server is most likely gone.
			return problems
		}
		if res.status != http.StatusOK && res.status != http.StatusCreated {
			select {
			case <-stop: // e.g. 503 while draining: outcome unknown, fine
			default:
				problems = append(problems, fmt.Sprintf("PUT %s: status %d, want 200 or 201: %q", k.key, res.status, res.body))
			}
			return problems
		}
		k.ops[len(k.ops)-1].acked = true
		onAck()
		problems = append(problems, checkPutContract(k.key, existed, k.lastRev, res)...)
		if rev := int64(res.meta.Revision); rev > k.lastRev {
			k.lastRev = rev
		}
	}
}

// pick chooses writer i's next key: often one it already has (overwrites,
// mostly of recent keys), otherwise a new one.
func (w *workload) pick(i int) *keyState {
	rng, keys := w.rngs[i], w.keys[i]
	if n := len(keys); n > 0 && rng.IntN(10) < 6 {
		if rng.IntN(2) == 0 {
			return keys[n-1-rng.IntN(min(n, 8))]
		}
		return keys[rng.IntN(n)]
	}
	n := w.next[i]
	w.next[i]++
	var key string
	switch {
	case n%7 == 3:
		key = fmt.Sprintf("w%d/nested/d%d/k%06d", i, n%3, n)
	case n%11 == 5 && len(keys) > 0:
		key = keys[rng.IntN(len(keys))].key + fmt.Sprintf("/child%d", n) // a key below another key
	default:
		key = fmt.Sprintf("w%d/k%06d", i, n)
	}
	k := &keyState{key: key}
	w.keys[i] = append(keys, k)
	return k
}

// value returns a value unique to this write: a readable header naming the
// key, round, writer and sequence number, then random binary padding,
// usually short, sometimes several pages long.
func (w *workload) value(i int, k *keyState) []byte {
	rng := w.rngs[i]
	w.seq[i]++
	v := fmt.Appendf(nil, "%s|r%d|w%d|s%d|", k.key, w.round, i, w.seq[i])
	pad := rng.IntN(512)
	if rng.IntN(10) == 0 {
		pad = 4096 + rng.IntN(12288)
	}
	for range pad {
		v = append(v, byte(rng.Uint32()))
	}
	return v
}

// describe shows a value by its header and length, or as a quoted prefix if
// it is not one of ours.
func describe(v []byte) string {
	bars := 0
	for j, b := range v {
		if b == '|' {
			bars++
			if bars == 4 {
				return fmt.Sprintf("%q (+%d bytes)", v[:j+1], len(v)-j-1)
			}
		}
	}
	if len(v) > 64 {
		return fmt.Sprintf("%q... (%d bytes)", v[:64], len(v))
	}
	return fmt.Sprintf("%q", v)
}

// candidate is a state a key may be in after a crash.
type candidate struct {
	present  bool
	value    []byte
	inFlight bool
	why      string
}

func (c candidate) String() string {
	if !c.present {
		return "<absent> [" + c.why + "]"
	}
	return describe(c.value) + " [" + c.why + "]"
}

// candidates lists the states k may be in: the value of its last
// acknowledged write (or, without one this round, what was verified before),
// or the value of any later write whose outcome is unknown.
func (k *keyState) candidates() []candidate {
	last := -1
	for j, op := range k.ops {
		if op.acked {
			last = j
		}
	}
	var cs []candidate
	if last >= 0 {
		cs = append(cs, candidate{present: true, value: k.ops[last].value, why: "last acknowledged"})
	} else {
		cs = append(cs, candidate{present: k.present, value: k.value, why: "before this round"})
	}
	for _, op := range k.ops[last+1:] {
		cs = append(cs, candidate{present: true, value: op.value, inFlight: true, why: "in flight"})
	}
	return cs
}

// verify reads every key and fails the test, listing the keys, if any does
// not hold one of its candidates. It then takes what was read as the truth
// for the next round.
func (w *workload) verify(t *testing.T, c *harness.Client, when string) {
	t.Helper()
	start := time.Now()
	var bad, badKeys, problems []string
	n, inFlight, applied := 0, 0, 0
	for _, ks := range w.keys {
		for _, k := range ks {
			n++
			res := c.Get(k.key, "")
			if res.Err != nil {
				t.Fatalf("%s: GET %s: %v", when, k.key, res.Err)
			}
			var got candidate
			switch res.Status {
			case http.StatusOK:
				got = candidate{present: true, value: res.Body}
			case http.StatusNotFound:
				problems = append(problems, checkNotFound(k.key, res)...)
			default:
				t.Fatalf("%s: GET %s: status %d, want 200 or 404: %q", when, k.key, res.Status, res.Body)
			}
			cs := k.candidates()
			ok := false
			for _, c := range cs {
				match := c.present == got.present && bytes.Equal(c.value, got.value)
				ok = ok || match
				if c.inFlight {
					inFlight++
					if match {
						applied++
					}
				}
			}
			if !ok {
				var b strings.Builder
				fmt.Fprintf(&b, "%s:", k.key)
				for _, c := range cs {
					fmt.Fprintf(&b, "\n    -%v", c)
				}
				if got.present {
					fmt.Fprintf(&b, "\n    +%s", describe(got.value))
				} else {
					fmt.Fprintf(&b, "\n    +<absent>")
				}
				bad = append(bad, b.String())
				badKeys = append(badKeys, k.key)
			}
			k.present, k.value, k.ops = got.present, got.value, nil
		}
	}
	harness.ReportProblems(t, when+": reads", problems)
	if len(bad) > 0 {
		const maxShown = 40
		more := ""
		if len(bad) > maxShown {
			more = fmt.Sprintf("\n  ... and %d more: %s", len(bad)-maxShown, strings.Join(badKeys[maxShown:], " "))
			bad = bad[:maxShown]
		}
		t.Fatalf("%s: %d of %d keys lost an acknowledged write or hold a value they should not (-want, any one of, +got):\n  %s%s",
			when, len(badKeys), n, strings.Join(bad, "\n  "), more)
	}
	t.Logf("%s: all %d keys consistent, %d of %d writes in flight were applied (read in %v)",
		when, n, applied, inFlight, time.Since(start).Round(time.Millisecond))
}
