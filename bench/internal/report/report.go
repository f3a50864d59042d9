// Package report turns benchmark results into the markdown section kept
// in docs/benchmarks.md and judges them against the project's targets.
package report

import (
	"fmt"
	"time"

	"kvstore.dev/kvstore/bench/internal/stats"
)

// Target names used in rows and verdicts.
const (
	KVStore = "kvstore"
	// KVStoreMTLS is the three-node kvstore with mutual TLS 1.3 on the
	// peer port (kvstore certs --peer), to measure what it costs.
	KVStoreMTLS = "kvstore-mtls"
	Etcd        = "etcd"
	BareHTTP    = "bare-http"
)

// Meta describes how and where a run was made; the meta of the compose
// and three-node runs embed it (a compose run starts no servers and leaves
// KVStoreGo, EtcdVersion, DataFS and EtcdConns empty).
type Meta struct {
	Command     string
	Wrapper     string // script that ran Command, if any
	Date        time.Time
	NProc       int
	CPUModel    string
	GoVersion   string // of the load generator
	KVStoreGo   string // Go version the kvstore binary was built with, if known
	EtcdVersion string
	DataFS      string // file system type of the data directories
	LoadAvg     string // /proc/loadavg's 1, 5 and 15 minute averages at the start
	Duration    time.Duration
	MaxOps      uint64
	KeySize     int
	ValueSize   int
	EtcdConns   int
}

// commandLine is the report's "Command" line.
func (m Meta) commandLine() string {
	if m.Wrapper != "" {
		return fmt.Sprintf("- Command: `%s`, which ran `%s`\n", m.Wrapper, m.Command)
	}
	return fmt.Sprintf("- Command: `%s`\n", m.Command)
}

// goLine is the report's "Go" line: kvbench's and, if known, kvstore's.
func (m Meta) goLine() string {
	if m.KVStoreGo != "" {
		return fmt.Sprintf("- Go: %s (kvbench), %s (kvstore)\n", m.GoVersion, m.KVStoreGo)
	}
	return fmt.Sprintf("- Go: %s (kvbench)\n", m.GoVersion)
}

// Row is the result of one target at one client count.
type Row struct {
	Target  string
	Clients int
	Put     stats.Summary
	Get     stats.Summary
	// PeakRSS is the server process's VmHWM after both phases, in bytes.
	PeakRSS uint64
	// BackgroundCPU is the share (0..1) of the machine's CPU capacity
	// used by processes other than kvbench and the server during the
	// phases: a noise indicator.
	BackgroundCPU float64
	// Err is set when the target could not be measured.
	Err string
}

// Load is the result of the bulk-load memory phase.
type Load struct {
	Target  string
	Clients int
	Want    uint64 // values requested
	Put     stats.Summary
	// PeakRSS and RSS are VmHWM and VmRSS after loading, in bytes.
	PeakRSS, RSS uint64
	// RSSAnon and RSSFile split RSS into anonymous memory and mapped file
	// pages (bbolt's mmap), in bytes.
	RSSAnon, RSSFile uint64
	// Checked and Mismatched count the read-back verification sample.
	Checked, Mismatched int
	// BackgroundCPU is as in Row.
	BackgroundCPU float64
	Err           string
}

// Complete reports whether every requested value was stored.
func (l Load) Complete() bool {
	return l.Err == "" && uint64(l.Put.Ops) >= l.Want && l.Put.Errors == 0 && l.Mismatched == 0
}

// Report is everything one kvbench run produced.
type Report struct {
	Meta Meta
	Rows []Row
	// Load is nil when the bulk-load phase was skipped.
	Load *Load
	// JudgeClients is the client count the targets are judged at.
	JudgeClients int
}

// Find returns the row for target at clients, if present and successful.
func (r Report) Find(target string, clients int) (Row, bool) {
	for _, row := range r.Rows {
		if row.Target == target && row.Clients == clients && row.Err == "" {
			return row, true
		}
	}
	return Row{}, false
}
