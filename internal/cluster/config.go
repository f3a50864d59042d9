package cluster

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"time"

	"kvstore.dev/kvstore/internal/auth"
	"kvstore.dev/kvstore/internal/certs"
	"kvstore.dev/kvstore/internal/store"
)

// Config configures a Node.
type Config struct {
	// Single runs the node as a one-server cluster: it bootstraps itself,
	// Raft runs over an in-memory transport with no peer port (the peer
	// fields and PeerToken are not used), membership changes are refused
	// (errcode.ErrNotClustered), and a linearizable read needs no round
	// through Raft's leader loop (single.go). A store that already holds
	// data but no Raft state (a restored snapshot, a data dir of the
	// former single-node write path) becomes the cluster's initial state.
	Single bool
	// NodeID names this server in the Raft configuration; stable across
	// restarts (the pod name in Kubernetes). A single node's defaults to
	// SingleNodeID.
	NodeID string
	// Dir holds Raft's log and stable store (raft-wal, in Dir/wal:
	// logstore.go) and its snapshots (Dir/snapshots).
	Dir string
	// LogSegmentSize is the size of one Raft log segment file, each
	// preallocated when created; zero takes 64 MiB. A seam for tests on
	// a small filesystem.
	LogSegmentSize int
	// PeerListen is the peer port's listen address.
	PeerListen string
	// PeerAdvertise is the address other nodes use to reach this one
	// (host:port of PeerListen as seen from them).
	PeerAdvertise string
	// Bootstrap allows this node to start a new cluster of itself when it
	// has no Raft state and no node in Join answers with a leader.
	Bootstrap bool
	// MayBootstrap, when set, is asked each time a Bootstrap node with no
	// Raft state has found no cluster in Join: nil allows it to start a
	// new one now; an error (saying why not) makes it ask Join again,
	// until admitted or allowed. Unset: allowed at once.
	MayBootstrap func() error
	// Join lists peer addresses to ask for membership when this node has no
	// Raft state, or was removed while it was away. A name that resolves
	// to several addresses (a headless Service's) stands for all of them:
	// each is asked in turn, this node's own skipped (joinTargets).
	Join []string
	// JoinAsNonvoter makes this node ask to join without a vote; something
	// else (the operator) promotes it once it has caught up.
	JoinAsNonvoter bool
	// PeerToken is the secret shared by all nodes; required. Every peer
	// connection proves it holds it (a challenge-response, peerauth.go),
	// inside TLS when PeerTLS is set. It may hold several tokens, one per
	// line (auth.ParsePeerTokens): the first signs, all verify, for a
	// two-phase rotation.
	PeerToken string
	// PeerTokenFile, when set, is where PeerToken came from: the node
	// re-reads it when it changes (at most once a second, on a handshake)
	// and uses its tokens from then on, so a rotation needs no restart.
	// PeerToken is then not used by the node.
	PeerTokenFile string
	// PeerTLS, when set, makes every peer connection mutual TLS 1.3: this
	// node's certificate and key, and the CA bundle a peer's certificate
	// must verify against (peertls.go). The files are re-read when they
	// change. Unset, peer traffic is in cleartext (a warning at start).
	PeerTLS PeerTLS
	// ClusterName is the cluster a peer's certificate must name (its
	// kvstore://cluster/<name> URI SAN, internal/certs) with PeerTLS on;
	// "" takes the name in this node's own certificate. Set, this node's
	// certificate must name it too.
	ClusterName string
	// ApplyTimeout bounds a write's wait for the log.
	ApplyTimeout time.Duration
	// HeartbeatTimeout, ElectionTimeout and LeaderLeaseTimeout tune Raft;
	// zero takes kvstore's defaults (DefaultHeartbeatTimeout and so on).
	// LeaderLeaseTimeout may not exceed HeartbeatTimeout.
	HeartbeatTimeout, ElectionTimeout, LeaderLeaseTimeout time.Duration
	// ReadyGrace is how long a node that has lost its leader still reports
	// ready (Ready): an election, or a leader whose heartbeats are late on
	// a starved machine, should not take every pod out of its Services at
	// once, since no other server could answer either. Past it, with still
	// no leader, Ready fails. Zero takes DefaultReadyGrace.
	ReadyGrace time.Duration
	// Flush says when the store's buffered state is flushed and past which
	// buffer the leader's writers wait; zero fields take
	// store.DefaultFlushPolicy().
	Flush store.FlushPolicy
	// SnapshotThreshold is how many log entries trigger a snapshot (and log
	// truncation); zero keeps 8192.
	SnapshotThreshold uint64
	Logger            *slog.Logger
	// OnSnapshot, if set, is told how long each snapshot took to write.
	OnSnapshot func(time.Duration)
	// RaftLog receives Raft's own log lines (JSON, warnings and up);
	// os.Stderr when nil.
	RaftLog io.Writer
	// Clock stamps the commands of every log entry while this node leads
	// (Command.Now, what TTLs are compared with); time.Now when nil. A
	// seam for tests.
	Clock func() time.Time
	// Resolve expands one Join entry (host:port) into the addresses to
	// ask; net.DefaultResolver's lookup when nil. A seam for tests.
	Resolve func(ctx context.Context, hostport string) ([]string, error)
}

// Raft timing defaults. hashicorp/raft's own (1 s, 1 s, 500 ms) let a
// follower wait 1-3 s after a leader's crash before it stands, about
// twice etcd's failover; these halve that (docs/benchmarks.md, three
// nodes: failover and the elections counted under load). The leader
// sends heartbeats every HeartbeatTimeout/10.
const (
	DefaultHeartbeatTimeout   = 500 * time.Millisecond
	DefaultElectionTimeout    = 500 * time.Millisecond
	DefaultLeaderLeaseTimeout = 250 * time.Millisecond
)

// DefaultReadyGrace is Config.ReadyGrace's default: several elections at
// the default timeouts (one takes 0.5–2 s), and two periods of the
// operator's readiness probe (5 s), so that an election during a rolling
// update does not make a second pod unready.
const DefaultReadyGrace = 10 * time.Second

func (c *Config) defaults() {
	if c.Single {
		// No peers: the timeouts only delay the election at start.
		c.PeerAdvertise, c.Bootstrap, c.Join = singleAddr, true, nil
		if c.NodeID == "" {
			c.NodeID = SingleNodeID
		}
		for _, d := range []*time.Duration{&c.HeartbeatTimeout, &c.ElectionTimeout, &c.LeaderLeaseTimeout} {
			if *d <= 0 {
				*d = singleTimeout
			}
		}
	}
	if c.ApplyTimeout <= 0 {
		c.ApplyTimeout = 10 * time.Second
	}
	if c.HeartbeatTimeout <= 0 {
		c.HeartbeatTimeout = DefaultHeartbeatTimeout
	}
	if c.ElectionTimeout <= 0 {
		c.ElectionTimeout = DefaultElectionTimeout
	}
	if c.LeaderLeaseTimeout <= 0 {
		c.LeaderLeaseTimeout = min(DefaultLeaderLeaseTimeout, c.HeartbeatTimeout)
	}
	if c.ReadyGrace <= 0 {
		c.ReadyGrace = DefaultReadyGrace
	}
	c.Flush = c.Flush.WithDefaults(store.DefaultFlushPolicy())
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.RaftLog == nil {
		c.RaftLog = os.Stderr
	}
}

// Validate reports every invalid field.
func (c Config) Validate() error {
	var errs []error
	bad := func(field, format string, a ...any) {
		errs = append(errs, fmt.Errorf("cluster.%s: "+format, append([]any{field}, a...)...))
	}
	if why := idProblem(c.NodeID); why != "" {
		bad("node_id", "%s", why)
	}
	if c.Dir == "" {
		bad("dir", "required")
	}
	if c.Single {
		return errors.Join(errs...)
	}
	if _, _, err := net.SplitHostPort(c.PeerListen); err != nil {
		bad("peer_listen", "%q is not host:port", c.PeerListen)
	}
	if host, port, err := net.SplitHostPort(c.PeerAdvertise); err != nil || host == "" || port == "0" {
		bad("peer_advertise", "%q is not a reachable host:port", c.PeerAdvertise)
	}
	if c.PeerTokenFile == "" {
		if _, err := auth.ParsePeerTokens(c.PeerToken); err != nil {
			bad("peer_token", "%v (one token per line, each at least %d characters)", err, auth.MinPeerTokenLength)
		}
	}
	if t := c.PeerTLS; t.enabled() && (t.CertFile == "" || t.KeyFile == "" || t.CAFile == "") {
		bad("peer_tls", "cert, key and CA files must be set together (cert %q, key %q, ca %q)", t.CertFile, t.KeyFile, t.CAFile)
	}
	if c.ClusterName != "" && !certs.ClusterNamePattern.MatchString(c.ClusterName) {
		bad("name", "%q is not 1-63 lower-case letters, digits and '-' (starting and ending with a letter or digit)", c.ClusterName)
	}
	if !c.Bootstrap && len(c.Join) == 0 {
		bad("join", "a node that may not bootstrap needs peers to join")
	}
	for _, j := range c.Join {
		if _, _, err := net.SplitHostPort(j); err != nil {
			bad("join", "%q is not host:port", j)
		}
	}
	if c.LeaderLeaseTimeout > c.HeartbeatTimeout {
		bad("leader_lease_timeout", "%v is longer than heartbeat_timeout (%v)", c.LeaderLeaseTimeout, c.HeartbeatTimeout)
	}
	return errors.Join(errs...)
}
