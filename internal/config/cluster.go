package config

import (
	"fmt"
	"net"
	"os"
	"strings"
	"time"

	"kvstore.dev/kvstore/internal/auth"
)

// Cluster configures replication (internal/cluster). Disabled, the server
// is a one-server Raft cluster of its own, with no peer port: NodeID (or
// "node-1") and the Raft timing apply, the peer fields do not.
type Cluster struct {
	Enabled bool `json:"enabled"`
	// NodeID names this server; default: the host name (the pod name in
	// Kubernetes).
	NodeID string `json:"node_id"`
	// PeerListen is the peer port (Raft and forwarded requests).
	PeerListen string `json:"peer_listen"`
	// PeerAdvertise is how other nodes reach this one; default: the node
	// id as a host name with PeerListen's port.
	PeerAdvertise string `json:"peer_advertise"`
	// BootstrapNode is the node id that may start a new cluster when it has
	// no state and no peer answers (ordinal 0: "<name>-0"); the others join.
	BootstrapNode string `json:"bootstrap_node"`
	// BootstrapAllowedFile, when set, is a file that says, each time
	// BootstrapNode has found no cluster to join, whether it may start
	// one now: "true" allows it, anything else (or no file) does not, and
	// the node keeps asking to join. The operator keeps it "true" only
	// until the cluster has formed, so a first server that lost its
	// volume later cannot start a second cluster beside the running one
	// while that one is briefly unreachable. Unset: BootstrapNode may
	// always bootstrap (the hand-run default).
	BootstrapAllowedFile string `json:"bootstrap_allowed_file"`
	// Join lists peer addresses to ask for membership.
	Join []string `json:"join"`
	// JoinAs is "voter" (default) or "nonvoter": a non-voter replicates
	// without counting for the quorum until promoted (by the operator).
	JoinAs string `json:"join_as"`
	// PeerTokenFile holds the secret all nodes share; KVSTORE_PEER_TOKEN
	// overrides it. It may hold several tokens, one per line
	// (auth.ParsePeerTokens): the first signs, all verify, for a
	// two-phase rotation. The server re-reads the file when it changes
	// (not the variable).
	PeerTokenFile string `json:"peer_token_file"`
	// PeerToken is set from KVSTORE_PEER_TOKEN or PeerTokenFile at load;
	// never from YAML.
	PeerToken string `json:"-"`
	// peerTokenFromFile is whether PeerToken was read from PeerTokenFile.
	peerTokenFromFile bool
	// Name is the cluster's name: with peer TLS on, a peer's certificate
	// must carry the URI SAN kvstore://cluster/<name> (internal/certs).
	// Default: the name in this node's own peer certificate; set, that
	// certificate must name it too.
	Name string `json:"name"`
	// PeerTLSCert, PeerTLSKey and PeerTLSCA (all three, or none) turn on
	// mutual TLS 1.3 on the peer port: this node's peer certificate and
	// key (`kvstore certs --peer` makes them) and the PEM bundle of the CAs
	// whose peer certificates are accepted. The files are re-read when
	// they change (a new leaf, an old+new CA bundle during a rotation).
	PeerTLSCert string `json:"peer_tls_cert"`
	PeerTLSKey  string `json:"peer_tls_key"`
	PeerTLSCA   string `json:"peer_tls_ca"`
	// Raft timing; zero keeps kvstore's defaults (500ms, 500ms, 250ms:
	// cluster.DefaultHeartbeatTimeout and so on).
	HeartbeatTimeout   Duration `json:"heartbeat_timeout"`
	ElectionTimeout    Duration `json:"election_timeout"`
	LeaderLeaseTimeout Duration `json:"leader_lease_timeout"`
	SnapshotThreshold  uint64   `json:"snapshot_threshold"`
	// ReadyGrace is how long a server that has lost its leader still
	// answers /readyz with 200 (during an election); 0 keeps 10s
	// (cluster.DefaultReadyGrace). At most 5m.
	ReadyGrace Duration `json:"ready_grace"`
	// HandoffTimeout bounds a leader's hand-off of its leadership to
	// another voter on shutdown (SIGTERM), before it stops serving; 0
	// disables the hand-off (the others then elect a leader after their
	// heartbeat timeout, as after a crash).
	HandoffTimeout Duration `json:"handoff_timeout"`
}

// EnvPeerToken names the environment variable holding the peer secret.
const EnvPeerToken = "KVSTORE_PEER_TOKEN"

// resolve fills the cluster defaults that depend on the machine, and reads
// the peer token (from the environment, or its file).
func (c *Cluster) resolve(getenv func(string) string) error {
	if !c.Enabled {
		return nil
	}
	if c.NodeID == "" {
		h, err := os.Hostname()
		if err != nil {
			return fmt.Errorf("cluster.node_id: not set and no host name: %w", err)
		}
		c.NodeID = h
	}
	if c.PeerAdvertise == "" {
		if _, port, err := net.SplitHostPort(c.PeerListen); err == nil {
			c.PeerAdvertise = net.JoinHostPort(c.NodeID, port)
		}
	}
	if tok := getenv(EnvPeerToken); tok != "" {
		c.PeerToken = tok
	} else if c.PeerTokenFile != "" {
		b, err := os.ReadFile(c.PeerTokenFile)
		if err != nil {
			return fmt.Errorf("cluster.peer_token_file: %w", err)
		}
		c.PeerToken, c.peerTokenFromFile = strings.TrimSpace(string(b)), true
	}
	return nil
}

// PeerTokenReloadFile is the file the server re-reads the peer tokens
// from when it changes: PeerTokenFile when the tokens came from it, ""
// when they came from KVSTORE_PEER_TOKEN (or the cluster is disabled).
func (c Cluster) PeerTokenReloadFile() string {
	if c.Enabled && c.peerTokenFromFile {
		return c.PeerTokenFile
	}
	return ""
}

func (c *Cluster) validate(bad func(field, format string, args ...any)) {
	if !c.Enabled {
		return
	}
	if c.NodeID == "" {
		bad("cluster.node_id", "must not be empty")
	}
	if err := validAddr(c.PeerListen); err != nil {
		bad("cluster.peer_listen", "%v", err)
	}
	if host, port, err := net.SplitHostPort(c.PeerAdvertise); err != nil || host == "" || port == "" || port == "0" {
		bad("cluster.peer_advertise", "%q is not a host:port other nodes can reach", c.PeerAdvertise)
	}
	if _, err := auth.ParsePeerTokens(c.PeerToken); err != nil {
		bad("cluster.peer_token_file", "the peer tokens (from %s or this file; one per line, the first signs) are invalid: %v; each must be at least %d characters", EnvPeerToken, err, auth.MinPeerTokenLength)
	}
	if c.BootstrapNode != c.NodeID && len(c.Join) == 0 {
		bad("cluster.join", "node %q is not cluster.bootstrap_node (%q), so it needs peers to join", c.NodeID, c.BootstrapNode)
	}
	if c.BootstrapAllowedFile != "" && len(c.Join) == 0 {
		bad("cluster.bootstrap_allowed_file", "needs cluster.join: a bootstrap node that may not start a cluster must have peers to join")
	}
	for _, j := range c.Join {
		if _, _, err := net.SplitHostPort(j); err != nil {
			bad("cluster.join", "%q is not host:port", j)
		}
	}
	switch c.JoinAs {
	case "", "voter", "nonvoter":
	default:
		bad("cluster.join_as", "%q is not one of voter, nonvoter", c.JoinAs)
	}
	for name, d := range map[string]Duration{"cluster.heartbeat_timeout": c.HeartbeatTimeout, "cluster.election_timeout": c.ElectionTimeout, "cluster.leader_lease_timeout": c.LeaderLeaseTimeout} {
		if d.D() < 0 || d.D() > 0 && d.D() < 5_000_000 {
			bad(name, "%s is too short (at least 5ms, or 0 for the default)", d.D())
		}
	}
	if d := c.ReadyGrace.D(); d < 0 || d > 5*time.Minute {
		bad("cluster.ready_grace", "%s is out of range [0s, 5m] (0 for the default, 10s)", d)
	}
	if d := c.HandoffTimeout.D(); d < 0 || d > time.Minute {
		bad("cluster.handoff_timeout", "%s is out of range [0s, 1m] (0 disables the hand-off)", d)
	}
	c.validatePeerTLS(bad)
}
