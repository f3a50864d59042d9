package harness

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"kvstore.dev/kvstore/internal/testlog"
	"kvstore.dev/kvstore/wire"
)

const (
	// ReadyTimeout bounds how long StartProcess waits for GET /readyz to
	// answer 200.
	ReadyTimeout = 10 * time.Second
	// exitTimeout bounds how long a process may take to exit after a signal.
	exitTimeout = 10 * time.Second
	// outputTail is how much of a process's output failure messages quote.
	outputTail = 8 << 10
)

// ProcessOptions describe a server process. The zero value of every field
// but Bin has a default.
type ProcessOptions struct {
	Bin     string // the server binary (Binary(t, "server"))
	Name    string // in messages and the log file's name; default "server #N"
	DataDir string // default a new t.TempDir()
	Addr    string // the API's address; default FreeAddr
	Token   string // the admin token; default Token()
	// Args come after --listen, --debug-listen 127.0.0.1:0, --data-dir and
	// --log-format json, and may override them.
	Args []string
	// Env is added to the test's environment, from which every KVSTORE_*
	// variable is removed, so that a developer's shell settings cannot
	// change the server under test.
	Env []string
}

// Process is a kvstore server run as a child process. It can be stopped
// (Kill, Terminate), frozen (Signal SIGSTOP and SIGCONT) and started again
// on the same data dir and address (Restart). Its methods may be called
// from any goroutine; the process is killed when the test ends, which fails
// if the process ever wrote the admin token to its output.
type Process struct {
	ProcessOptions
	URL string // "http://" + Addr

	t       testing.TB
	logPath string

	mu   sync.Mutex
	runs []*run // every run, the current one last
}

// run is one execution of the binary.
type run struct {
	cmd     *exec.Cmd
	output  *testlog.Buffer
	done    chan struct{} // closed once the process has exited and been reaped
	waitErr error         // cmd.Wait's result; read only after done is closed
	shown   bool          // a failure message already quoted the output
}

// processSeq numbers the processes that have no name.
var processSeq atomic.Int64

// NewProcess fills in o's defaults and registers the cleanup, without
// starting anything; Start (or Restart) runs the binary.
func NewProcess(t testing.TB, o ProcessOptions) *Process {
	t.Helper()
	if o.Bin == "" {
		o.Bin = Binary(t, "server")
	}
	if o.Name == "" {
		o.Name = fmt.Sprintf("server #%d", processSeq.Add(1))
	}
	if o.DataDir == "" {
		o.DataDir = t.TempDir()
	}
	if o.Addr == "" {
		o.Addr = FreeAddr(t)
	}
	if o.Token == "" {
		o.Token = Token()
	}
	p := &Process{ProcessOptions: o, URL: "http://" + o.Addr, t: t,
		logPath: filepath.Join(ArtifactsDir(t), fileName(t.Name()), fileName(o.Name)+".log")}
	t.Cleanup(func() {
		p.Kill(t)
		p.mu.Lock()
		defer p.mu.Unlock()
		for i, r := range p.runs {
			if strings.Contains(r.output.String(), p.Token) {
				t.Errorf("%s (run %d) wrote the admin token to its logs", p.Name, i+1)
			}
			if t.Failed() && !r.shown {
				t.Logf("%s output of run %d (tail, all of it in %s):\n%s", p.Name, i+1, p.logPath, tail(r.output.String()))
			}
		}
	})
	return p
}

// StartProcess starts a server and returns once GET /readyz answers 200.
// Should the address, chosen by default, be taken by someone else before
// the server binds it, it tries another.
func StartProcess(t testing.TB, o ProcessOptions) *Process {
	t.Helper()
	for attempt := 1; ; attempt++ {
		p := NewProcess(t, o)
		p.Start(t)
		start := time.Now()
		err := p.WaitReady(ReadyTimeout)
		if err == nil {
			t.Logf("%s ready on %s after %v", p.Name, p.URL, time.Since(start).Round(time.Millisecond))
			return p
		}
		if o.Addr == "" && attempt < 3 && p.Exited() && strings.Contains(p.Output(), "address already in use") {
			t.Logf("%s lost the race for its port; retrying", p.Name)
			continue
		}
		p.Fatalf(t, "%s: %v", p.Name, err)
	}
}

// Start runs the binary, with extra arguments after the options' Args,
// without waiting for it to be ready. The process must not be running.
func (p *Process) Start(t testing.TB, extra ...string) {
	t.Helper()
	p.mu.Lock()
	defer p.mu.Unlock()
	if n := len(p.runs); n > 0 && !exited(p.runs[n-1]) {
		t.Fatalf("%s: Start while it runs", p.Name)
	}
	args := append([]string{
		"--listen", p.Addr,
		"--debug-listen", "127.0.0.1:0",
		"--data-dir", p.DataDir,
		"--log-format", "json",
	}, p.Args...)
	r := &run{output: new(testlog.Buffer), done: make(chan struct{})}
	r.cmd = exec.Command(p.Bin, append(args, extra...)...)
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "KVSTORE_") {
			env = append(env, kv)
		}
	}
	r.cmd.Env = append(append(env, "KVSTORE_ADMIN_TOKEN="+p.Token), p.Env...)
	if err := os.MkdirAll(filepath.Dir(p.logPath), 0o755); err != nil {
		t.Fatal(err)
	}
	f, err := os.OpenFile(p.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprintf(f, "--- %s %s %s\n", time.Now().Format(time.RFC3339Nano), p.Bin, strings.Join(r.cmd.Args[1:], " "))
	out := io.MultiWriter(r.output, f)
	r.cmd.Stdout, r.cmd.Stderr = out, out
	// Don't hang in Wait if the server leaves a child holding the pipes.
	r.cmd.WaitDelay = 2 * time.Second
	if err := r.cmd.Start(); err != nil {
		f.Close()
		t.Fatalf("starting %s: %v", p.Bin, err)
	}
	go func() {
		r.waitErr = r.cmd.Wait()
		f.Close()
		close(r.done)
	}()
	p.runs = append(p.runs, r)
}

// Restart starts the process again on its data dir and address (with extra
// arguments for this run) and waits up to timeout for it to be ready.
func (p *Process) Restart(t testing.TB, timeout time.Duration, extra ...string) {
	t.Helper()
	p.Start(t, extra...)
	if err := p.WaitReady(timeout); err != nil {
		p.Fatalf(t, "%s after a restart: %v", p.Name, err)
	}
}

func (p *Process) run() *run {
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.runs) == 0 {
		return nil
	}
	return p.runs[len(p.runs)-1]
}

// Fatalf fails the test with a message and the tail of the current run's
// output.
func (p *Process) Fatalf(t testing.TB, format string, args ...any) {
	t.Helper()
	r := p.run()
	p.Kill(t)
	r.shown = true
	t.Fatalf("%s\n%s output (tail, all of it in %s):\n%s", fmt.Sprintf(format, args...), p.Name, p.logPath, tail(r.output.String()))
}

// WaitReady polls GET /readyz until it answers 200, the process exits, or
// timeout passes.
func (p *Process) WaitReady(timeout time.Duration) error {
	r := p.run()
	hc := &http.Client{Transport: &http.Transport{Proxy: nil, DisableKeepAlives: true}}
	deadline := time.Now().Add(timeout)
	last := "no answer yet"
	for {
		if exited(r) {
			return fmt.Errorf("exited before becoming ready (%v); last /readyz: %s", r.waitErr, last)
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("not ready after %v; last /readyz: %s", timeout, last)
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, p.URL+wire.PathReadyz, nil)
		if resp, err := hc.Do(req); err != nil {
			last = err.Error()
		} else {
			body, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				cancel()
				return nil
			}
			last = fmt.Sprintf("%s %q", resp.Status, body)
		}
		cancel()
		select { // pacing of the poll loop, not a wait for a condition
		case <-r.done:
		case <-time.After(PollInterval):
		}
	}
}

// Done is closed once the current run has exited.
func (p *Process) Done() <-chan struct{} { return p.run().done }

// Exited reports whether the current run has exited.
func (p *Process) Exited() bool {
	r := p.run()
	return r == nil || exited(r)
}

// WaitErr is the current run's exit error; call it once Done is closed.
func (p *Process) WaitErr() error { return p.run().waitErr }

// Output is everything the current run wrote to stdout and stderr.
func (p *Process) Output() string { return p.run().output.String() }

func exited(r *run) bool {
	select {
	case <-r.done:
		return true
	default:
		return false
	}
}

// Signal sends sig (SIGSTOP, SIGCONT, ...) to the running process. After
// SIGSTOP it returns only once every thread of the process is stopped: the
// signal is delivered asynchronously, and a thread running on another core
// could otherwise still answer a request sent right after.
func (p *Process) Signal(t testing.TB, sig syscall.Signal) {
	t.Helper()
	r := p.run()
	if err := r.cmd.Process.Signal(sig); err != nil {
		t.Fatalf("%v to %s: %v", sig, p.Name, err)
	}
	if sig != syscall.SIGSTOP {
		return
	}
	if _, err := Poll(exitTimeout, func() error { return allStopped(r.cmd.Process.Pid) }); err != nil {
		t.Fatalf("%s after SIGSTOP: %v", p.Name, err)
	}
}

// allStopped reports whether every thread of pid is in state T (stopped),
// from /proc/<pid>/task/*/stat.
func allStopped(pid int) error {
	tasks, err := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/stat", pid))
	if err != nil || len(tasks) == 0 {
		return fmt.Errorf("no threads of pid %d in /proc: %v", pid, err)
	}
	for _, f := range tasks {
		b, err := os.ReadFile(f)
		if err != nil {
			return err
		}
		// The state follows the command name, which is in parentheses.
		_, rest, _ := strings.Cut(string(b), ") ")
		if !strings.HasPrefix(rest, "T") && !strings.HasPrefix(rest, "t") {
			return fmt.Errorf("thread %s is in state %.1s, not stopped", filepath.Base(filepath.Dir(f)), rest)
		}
	}
	return nil
}

// Kill sends SIGKILL, unless the process has exited, and waits for it to
// be reaped.
func (p *Process) Kill(t testing.TB) {
	t.Helper()
	r := p.run()
	if r == nil || exited(r) {
		return
	}
	if err := r.cmd.Process.Signal(syscall.SIGKILL); err != nil && !errors.Is(err, os.ErrProcessDone) {
		t.Errorf("SIGKILL %s: %v", p.Name, err)
	}
	if _, ok := waitExit(r, exitTimeout); !ok {
		t.Errorf("%s still running %v after SIGKILL", p.Name, exitTimeout)
	}
}

// Terminate sends SIGTERM and fails the test unless the process exits with
// status 0 within 10s.
func (p *Process) Terminate(t testing.TB) {
	t.Helper()
	r := p.run()
	if exited(r) {
		t.Errorf("%s exited before SIGTERM: %v", p.Name, r.waitErr)
		return
	}
	start := time.Now()
	if err := r.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Errorf("SIGTERM %s: %v", p.Name, err)
		return
	}
	state, ok := waitExit(r, exitTimeout)
	if !ok {
		t.Errorf("%s still running %v after SIGTERM", p.Name, exitTimeout)
		p.Kill(t)
		return
	}
	if state == nil || state.ExitCode() != 0 {
		t.Errorf("%s after SIGTERM: %v (%v), want exit status 0", p.Name, state, r.waitErr)
		return
	}
	t.Logf("%s exited 0 %v after SIGTERM", p.Name, time.Since(start).Round(time.Millisecond))
}

func waitExit(r *run, timeout time.Duration) (*os.ProcessState, bool) {
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	select {
	case <-r.done:
		return r.cmd.ProcessState, true
	case <-timer.C:
		return nil, false
	}
}

// Client is a client of the process's API with its admin token.
func (p *Process) Client(t testing.TB) *Client { return NewClient(t, p.URL, p.Token) }

func tail(s string) string {
	if len(s) <= outputTail {
		return s
	}
	s = s[len(s)-outputTail:]
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		s = s[i+1:]
	}
	return "[...]\n" + s
}
