package harness

import (
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"kvstore.dev/kvstore/wire"
)

// PeerToken is the peer token of every cluster StartCluster runs.
const PeerToken = "cluster-peer-token-0123456789"

// NodeReadyTimeout bounds how long a cluster node may take to be ready.
const NodeReadyTimeout = 30 * time.Second

// ClusterOptions describe a cluster of server processes on loopback.
type ClusterOptions struct {
	Bin   string // default Binary(t, "server")
	Size  int
	Token string // the admin token of every node; default Token()
	// Tweak, if set, changes node i's options (Args, Env) before it first
	// starts.
	Tweak func(i int, o *ProcessOptions)
}

// Cluster is a set of server processes: n0 bootstraps, the others join it.
type Cluster struct {
	Nodes []*Node
	Token string

	t   testing.TB
	bin string
}

// Node is one process of a Cluster, with its node id and peer address.
// Start and Restart run it with its cluster flags.
type Node struct {
	*Process
	ID   string
	Peer string // the peer port's address, also advertised
	Join string // the peer address it joins through
}

// StartCluster starts o.Size nodes, each ready before the next starts,
// and waits until n0 sees all of them as members and a leader.
func StartCluster(t testing.TB, o ClusterOptions) *Cluster {
	t.Helper()
	if o.Bin == "" {
		o.Bin = Binary(t, "server")
	}
	if o.Token == "" {
		o.Token = Token()
	}
	c := &Cluster{Token: o.Token, t: t, bin: o.Bin}
	for i := range o.Size {
		po := ProcessOptions{}
		if o.Tweak != nil {
			o.Tweak(i, &po)
		}
		n := c.NewNode(t, fmt.Sprintf("n%d", i), "", po)
		n.Restart(t, NodeReadyTimeout)
	}
	Eventually(t, "all members with a leader", 20*time.Second, func() error {
		st, err := c.Nodes[0].Client(t).ClusterStatus()
		if err != nil {
			return err
		}
		if st.LeaderID == "" || len(st.Members) != o.Size {
			return fmt.Errorf("leader %q, %d members", st.LeaderID, len(st.Members))
		}
		return nil
	})
	return c
}

// NewNode adds a node that joins through join (default n0's peer address)
// to the cluster, without starting it. po's Name, Addr, DataDir, Token and
// Bin are set here.
func (c *Cluster) NewNode(t testing.TB, id, join string, po ProcessOptions) *Node {
	t.Helper()
	po.Bin, po.Name, po.Token = c.bin, id, c.Token
	po.DataDir = filepath.Join(t.TempDir(), "data")
	po.Env = append(po.Env, "KVSTORE_PEER_TOKEN="+PeerToken)
	n := &Node{Process: NewProcess(t, po), ID: id, Peer: FreeAddr(t), Join: join}
	if len(c.Nodes) == 0 {
		n.Join = n.Peer
	} else if n.Join == "" {
		n.Join = c.Nodes[0].Peer
	}
	n.Args = append([]string{"--node-id", id, "--peer-listen", n.Peer, "--peer-advertise", n.Peer,
		"--bootstrap-node", "n0", "--join", n.Join}, n.Args...)
	c.Nodes = append(c.Nodes, n)
	return n
}

// Node is the node named id, nil if there is none.
func (c *Cluster) Node(id string) *Node {
	for _, n := range c.Nodes {
		if n.ID == id {
			return n
		}
	}
	return nil
}

// Leader polls the running nodes for up to 20s until one names a leader,
// and returns that node.
func (c *Cluster) Leader(t testing.TB) *Node {
	t.Helper()
	var leader *Node
	clients := map[*Node]*Client{}
	for _, n := range c.Nodes {
		clients[n] = n.Client(t)
	}
	Eventually(t, "a leader", 20*time.Second, func() error {
		for _, n := range c.Nodes {
			if n.Exited() {
				continue
			}
			st, err := clients[n].ClusterStatus()
			if err != nil || st.LeaderID == "" {
				continue
			}
			if leader = c.Node(st.LeaderID); leader != nil {
				return nil
			}
		}
		return fmt.Errorf("no running node names a leader")
	})
	return leader
}

// Others are the nodes other than n.
func (c *Cluster) Others(n *Node) []*Node {
	var others []*Node
	for _, m := range c.Nodes {
		if m != n {
			others = append(others, m)
		}
	}
	return others
}

// WaitStatus polls c's GET /api/v1/cluster for up to 20s until ok holds,
// and returns that status.
func WaitStatus(t testing.TB, c *Client, what string, ok func(wire.ClusterStatus) bool) wire.ClusterStatus {
	t.Helper()
	var st wire.ClusterStatus
	Eventually(t, what, 20*time.Second, func() error {
		var err error
		if st, err = c.ClusterStatus(); err != nil {
			return err
		}
		if !ok(st) {
			return fmt.Errorf("status %+v", st)
		}
		return nil
	})
	return st
}
