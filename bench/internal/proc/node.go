package proc

import (
	"context"
	"fmt"
	"path/filepath"
	"time"
)

// Node is a server of a cluster that can be killed and started again on
// the same arguments, data and ports. Each start logs to a new file in
// Dir: Dir/<base of Dir>.<n>.log, e.g. n0/n0.2.log for the second start.
type Node struct {
	Spec    Spec          // Spec.Log is set by Start
	Dir     string        // the node's directory
	Probe   Probe         // readiness
	Timeout time.Duration // how long WaitReady waits for Probe

	proc   *Process // of the last start
	starts int
}

// Start starts the node's process, without waiting for it to be ready.
func (n *Node) Start() error {
	n.starts++
	n.Spec.Log = filepath.Join(n.Dir, fmt.Sprintf("%s.%d.log", filepath.Base(n.Dir), n.starts))
	p, err := Start(n.Spec)
	if err != nil {
		return err
	}
	n.proc = p
	return nil
}

// Running reports whether the node's process is alive.
func (n *Node) Running() bool { return n.proc != nil && !n.proc.Exited() }

// PID returns the process id, 0 when the node is not running.
func (n *Node) PID() int {
	if !n.Running() {
		return 0
	}
	return n.proc.PID()
}

// WaitReady waits until the node's probe passes.
func (n *Node) WaitReady(ctx context.Context) error {
	return n.proc.WaitReady(ctx, n.Timeout, n.Probe)
}

// Kill sends SIGKILL and waits until the process is gone; it returns
// when the signal was sent.
func (n *Node) Kill() (time.Time, error) {
	if !n.Running() {
		return time.Time{}, fmt.Errorf("%s is not running", n.Spec.Name)
	}
	return n.proc.Kill()
}

// Stop stops a running node (see Process.Stop); a node that is not
// running is left alone.
func (n *Node) Stop(grace time.Duration) error {
	if !n.Running() {
		return nil
	}
	return n.proc.Stop(grace)
}

// Group is the nodes of one cluster, by index.
type Group []*Node

// Stop stops every running node, returning the first error.
func (g Group) Stop(grace time.Duration) error {
	var first error
	for _, n := range g {
		if err := n.Stop(grace); err != nil && first == nil {
			first = err
		}
	}
	return first
}
