// Package proc runs the processes a benchmark drives (kvstore, etcd, the
// bare HTTP server, the operator): it starts one with its stdout and
// stderr in a log file, waits until a Probe passes, stops it with SIGTERM
// (killing it after a bound) or kills it, and reports its PID for
// procstat. A Node can be started again on the same arguments; a Group is
// the nodes of one cluster. Errors name the process and, when it died or
// never became ready, end with the tail of its log. A Process is for one
// goroutine at a time.
package proc

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"kvstore.dev/kvstore/bench/internal/procstat"
)

// Spec says how to start a process.
type Spec struct {
	Name string   // in messages, e.g. "kvstore n0"
	Bin  string   // the executable
	Args []string // its arguments
	Env  []string // "K=V" entries added to the benchmark's own environment
	Dir  string   // the working directory; "" is the caller's
	Log  string   // the file that gets stdout and stderr (created, with its directory)
}

// Process is a started process. It is killed if the benchmark dies.
type Process struct {
	spec    Spec
	cmd     *exec.Cmd
	done    chan struct{} // closed when the process has exited
	waitErr error         // valid once done is closed
}

// Start starts the process described by s, without waiting for it to be
// ready.
func Start(s Spec) (*Process, error) {
	if err := os.MkdirAll(filepath.Dir(s.Log), 0o755); err != nil {
		return nil, fmt.Errorf("%s: create log directory: %w", s.Name, err)
	}
	logFile, err := os.Create(s.Log)
	if err != nil {
		return nil, fmt.Errorf("%s: create log: %w", s.Name, err)
	}
	cmd := exec.Command(s.Bin, s.Args...)
	cmd.Dir = s.Dir
	cmd.Env = append(os.Environ(), s.Env...)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		logFile.Close()
		return nil, fmt.Errorf("%s: start %s: %w", s.Name, s.Bin, err)
	}
	p := &Process{spec: s, cmd: cmd, done: make(chan struct{})}
	go func() {
		p.waitErr = cmd.Wait()
		logFile.Close()
		close(p.done)
	}()
	return p, nil
}

// StartReady starts s and waits up to timeout for probe to pass; if it
// does not, it stops the process again and says why.
func StartReady(ctx context.Context, s Spec, timeout time.Duration, probe Probe) (*Process, error) {
	p, err := Start(s)
	if err != nil {
		return nil, err
	}
	if err := p.WaitReady(ctx, timeout, probe); err != nil {
		_ = p.Stop(5 * time.Second)
		return nil, err
	}
	return p, nil
}

// PID returns the process id.
func (p *Process) PID() int { return p.cmd.Process.Pid }

// Exited reports whether the process has exited.
func (p *Process) Exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// WaitReady polls probe until it passes, the process exits, timeout
// passes or ctx ends; each try is bounded by 1s and comes 50ms after the
// last failed one.
func (p *Process) WaitReady(ctx context.Context, timeout time.Duration, probe Probe) error {
	last, exited := poll(ctx, timeout, time.Second, p.done, probe)
	switch {
	case last == nil:
		return nil
	case exited:
		return fmt.Errorf("%s exited before becoming ready (%v); log tail:\n%s", p.spec.Name, p.waitErr, p.LogTail())
	default:
		return fmt.Errorf("%s not ready after %v (last probe: %v); log tail:\n%s", p.spec.Name, timeout, last, p.LogTail())
	}
}

// Memory returns the process's current and peak resident set size.
func (p *Process) Memory() (procstat.Memory, error) {
	if p.Exited() {
		return procstat.Memory{}, fmt.Errorf("%s exited early (%v); log tail:\n%s", p.spec.Name, p.waitErr, p.LogTail())
	}
	m, err := procstat.Read(p.PID())
	if err != nil {
		return procstat.Memory{}, fmt.Errorf("%s: %w", p.spec.Name, err)
	}
	return m, nil
}

// Stop sends SIGTERM and waits up to grace for the process to exit, then
// kills it. It returns an error if the process had exited before, did not
// exit in time, or exited unsuccessfully; exit status 0 and death by
// SIGTERM (what etcd does after cleaning up) are a clean shutdown.
func (p *Process) Stop(grace time.Duration) error {
	name := p.spec.Name
	if p.Exited() {
		return fmt.Errorf("%s had already exited: %v", name, p.waitErr)
	}
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return fmt.Errorf("%s: send SIGTERM: %w", name, err)
	}
	timer := time.NewTimer(grace)
	defer timer.Stop()
	select {
	case <-p.done:
	case <-timer.C:
		_ = p.cmd.Process.Kill()
		<-p.done
		return fmt.Errorf("%s did not exit within %v of SIGTERM; killed", name, grace)
	}
	var ee *exec.ExitError
	if p.waitErr == nil || errors.As(p.waitErr, &ee) && signaled(ee, syscall.SIGTERM) {
		return nil
	}
	return fmt.Errorf("%s exited uncleanly after SIGTERM: %w", name, p.waitErr)
}

func signaled(ee *exec.ExitError, sig syscall.Signal) bool {
	ws, ok := ee.Sys().(syscall.WaitStatus)
	return ok && ws.Signaled() && ws.Signal() == sig
}

// Kill sends SIGKILL and waits up to 10s until the process is gone; it
// returns when the signal was sent.
func (p *Process) Kill() (time.Time, error) {
	at := time.Now()
	if err := p.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		return at, fmt.Errorf("kill %s: %w", p.spec.Name, err)
	}
	select {
	case <-p.done:
	case <-time.After(10 * time.Second):
		return at, fmt.Errorf("%s still running 10s after SIGKILL", p.spec.Name)
	}
	return at, nil
}

// LogTail returns the last 2 KiB of the process's log.
func (p *Process) LogTail() string {
	b, err := os.ReadFile(p.spec.Log)
	if err != nil {
		return fmt.Sprintf("(log unavailable: %v)", err)
	}
	if s := strings.TrimSpace(string(b[max(0, len(b)-2048):])); s != "" {
		return s
	}
	return "(log is empty)"
}
