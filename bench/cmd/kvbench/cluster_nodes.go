package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"kvstore.dev/kvstore/bench/internal/proc"
	"kvstore.dev/kvstore/bench/internal/report"
	"kvstore.dev/kvstore/wire"
)

// benchCluster is a running three-node cluster of one system, as the
// three-node benchmark drives it.
type benchCluster interface {
	// system is report.KVStore or report.Etcd.
	system() string
	// names returns the nodes' names, by index.
	names() []string
	// pid returns node i's process id, 0 when it is not running.
	pid(i int) int
	// leader returns the index of the node the running nodes see as
	// leader; it is always a running node.
	leader(ctx context.Context) (int, error)
	// spread returns the clients of a run whose requests go to every
	// node: client c sends its k-th request through spread()[(c+k)%len].
	spread() []kvClient
	// leaderClient returns a client that talks to node i only.
	leaderClient(i int) (kvClient, error)
	// reader returns a client whose GETs are linearizable reads through
	// node i.
	reader(i int) (kvClient, error)
	// term returns the Raft term node i is in: it grows by one (at least)
	// with every election.
	term(ctx context.Context, i int) (uint64, error)
	// kill sends SIGKILL to node i and waits until the process is gone;
	// it returns when the signal was sent.
	kill(i int) (time.Time, error)
	// restart starts node i again on its data and waits until it is
	// ready and has caught up with the leader.
	restart(ctx context.Context, i int) error
	// close stops every node and closes the clients.
	close() error
}

// findLeader polls the running nodes until one of them names a running
// node as leader and returns that node's index. seen returns the index of
// the leader node i sees (-1 for none or an unknown one) and how node i
// names it, for the error when none is found.
func findLeader(ctx context.Context, nodes proc.Group, ids []string, seen func(ctx context.Context, i int) (int, string, error)) (int, error) {
	idx := -1
	err := proc.Poll(ctx, 15*time.Second, func(ctx context.Context) error {
		var errs []error
		for i, n := range nodes {
			if !n.Running() {
				continue
			}
			j, name, err := seen(ctx, i)
			if err != nil {
				errs = append(errs, err)
				continue
			}
			if j >= 0 && nodes[j].Running() {
				idx = j
				return nil
			}
			errs = append(errs, fmt.Errorf("%s sees leader %s", ids[i], name))
		}
		return fmt.Errorf("no running leader: %w", errors.Join(errs...))
	})
	return idx, err
}

// restartNode starts node i of nodes again and waits until it is ready
// and caught up: it has applied what the leader had committed when node i
// became ready. index returns node j's commit and applied index.
func restartNode(ctx context.Context, nodes proc.Group, ids []string, i int, leader func(context.Context) (int, error),
	index func(ctx context.Context, j int) (commit, applied uint64, err error)) error {
	n := nodes[i]
	if err := n.Start(); err != nil {
		return err
	}
	if err := n.WaitReady(ctx); err != nil {
		return err
	}
	l, err := leader(ctx)
	if err != nil {
		return err
	}
	var target uint64
	if err := proc.Poll(ctx, 10*time.Second, func(ctx context.Context) (err error) {
		target, _, err = index(ctx, l)
		return err
	}); err != nil {
		return err
	}
	return proc.Poll(ctx, 60*time.Second, func(ctx context.Context) error {
		_, applied, err := index(ctx, i)
		if err != nil {
			return err
		}
		if applied < target {
			return fmt.Errorf("%s applied %d of %d", ids[i], applied, target)
		}
		return nil
	})
}

// ---- kvstore ----

// issuePeerCert has the kvstore binary issue node id's peer certificate
// into dir (the CA is made there on the first call) and returns the serve
// flags that use it.
func issuePeerCert(ctx context.Context, bin, dir, id string) ([]string, error) {
	cmd := exec.CommandContext(ctx, bin, "certs", "--dir", dir, "--peer", "--cluster", "bench", "--node", id, "--hosts", "localhost,127.0.0.1")
	if out, err := cmd.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("kvstore certs --peer --node %s: %w: %s", id, err, out)
	}
	return []string{"--peer-tls-cert", filepath.Join(dir, "peer-"+id+".crt"), "--peer-tls-key", filepath.Join(dir, "peer-"+id+".key"),
		"--peer-tls-ca", filepath.Join(dir, "ca.crt"), "--cluster-name", "bench"}, nil
}

// kvCluster is a three-node kvstore cluster on loopback.
type kvCluster struct {
	nodes   proc.Group
	ids     []string
	api     []string // host:port of each node's HTTP API
	debug   []string // host:port of each node's debug listener (pprof)
	token   string
	mtls    bool          // mutual TLS on the peer port
	clients []*httpClient // one per node
	status  *http.Client
}

// startKVCluster starts n0 (which bootstraps the cluster), then n1 and n2
// (which join it through n0's peer address), each on a fresh data
// directory under dir, and waits until all three are voters that see a
// leader. clients sizes the per-node connection pools. With mtls the peer
// port runs mutual TLS 1.3: each node gets a peer certificate from one CA
// (`kvstore certs --peer`, cluster "bench") before it starts.
func startKVCluster(ctx context.Context, bin, dir string, clients int, mtls bool) (_ *kvCluster, err error) {
	token, err := randomToken()
	if err != nil {
		return nil, err
	}
	peerToken, err := randomToken()
	if err != nil {
		return nil, err
	}
	addrs, err := proc.FreeAddrs(3 * clusterNodes)
	if err != nil {
		return nil, err
	}
	api, peer, debug := addrs[:clusterNodes], addrs[clusterNodes:2*clusterNodes], addrs[2*clusterNodes:]
	c := &kvCluster{api: api, debug: debug, token: token, mtls: mtls,
		status: &http.Client{Transport: &http.Transport{Proxy: nil, DisableKeepAlives: true}}}
	defer func() {
		if err != nil {
			_ = c.close()
		}
	}()
	for i := range clusterNodes {
		id := fmt.Sprintf("n%d", i)
		ndir := filepath.Join(dir, id)
		if err := os.MkdirAll(filepath.Join(ndir, "data"), 0o755); err != nil {
			return nil, fmt.Errorf("kvstore: create data dir: %w", err)
		}
		args := []string{"serve", "--listen", api[i], "--debug-listen", debug[i], "--data-dir", filepath.Join(ndir, "data"),
			"--log-format", "json", "--node-id", id, "--peer-listen", peer[i], "--peer-advertise", peer[i],
			"--bootstrap-node", "n0", "--join", peer[0]}
		if mtls {
			tlsArgs, err := issuePeerCert(ctx, bin, filepath.Join(dir, "certs"), id)
			if err != nil {
				return nil, err
			}
			args = append(args, tlsArgs...)
		}
		n := &proc.Node{Dir: ndir, Timeout: readyTimeout, Probe: proc.HTTP("http://" + api[i] + wire.PathReadyz),
			Spec: proc.Spec{Name: "kvstore " + id, Bin: bin, Args: args,
				Env: []string{"KVSTORE_ADMIN_TOKEN=" + token, "KVSTORE_PEER_TOKEN=" + peerToken}}}
		c.nodes = append(c.nodes, n)
		c.ids = append(c.ids, id)
		c.clients = append(c.clients, newHTTPClient(api[i], token, clients))
		if err := n.Start(); err != nil {
			return nil, err
		}
		if err := n.WaitReady(ctx); err != nil {
			return nil, err
		}
	}
	// Every node must see all three as voters and a leader.
	for i := range c.nodes {
		err := proc.Poll(ctx, 30*time.Second, func(ctx context.Context) error {
			st, err := c.clusterStatus(ctx, i)
			if err != nil {
				return err
			}
			voters := 0
			for _, m := range st.Members {
				if m.Suffrage == wire.SuffrageVoter {
					voters++
				}
			}
			if voters != clusterNodes || st.LeaderID == "" {
				return fmt.Errorf("%s sees %d voters and leader %q", c.ids[i], voters, st.LeaderID)
			}
			return nil
		})
		if err != nil {
			return nil, fmt.Errorf("kvstore cluster did not form: %w", err)
		}
	}
	return c, nil
}

// clusterStatus asks node i for GET /api/v1/cluster.
func (c *kvCluster) clusterStatus(ctx context.Context, i int) (wire.ClusterStatus, error) {
	var st wire.ClusterStatus
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+c.api[i]+wire.PathCluster, nil)
	if err != nil {
		return st, err
	}
	req.Header.Set("Authorization", "Bearer "+c.token)
	resp, err := c.status.Do(req)
	if err != nil {
		return st, fmt.Errorf("%s: GET %s: %w", c.ids[i], wire.PathCluster, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return st, statusError("GET", []byte(wire.PathCluster), resp)
	}
	if err := json.NewDecoder(resp.Body).Decode(&st); err != nil {
		return st, fmt.Errorf("%s: decode %s: %w", c.ids[i], wire.PathCluster, err)
	}
	return st, nil
}

func (c *kvCluster) system() string {
	if c.mtls {
		return report.KVStoreMTLS
	}
	return report.KVStore
}
func (c *kvCluster) names() []string { return c.ids }
func (c *kvCluster) spread() []kvClient {
	out := make([]kvClient, len(c.clients))
	for i, cl := range c.clients {
		out[i] = cl
	}
	return out
}

func (c *kvCluster) pid(i int) int { return c.nodes[i].PID() }

func (c *kvCluster) leaderClient(i int) (kvClient, error) { return c.clients[i], nil }

// reader returns node i's client: kvstore GETs are linearizable by default.
func (c *kvCluster) reader(i int) (kvClient, error) { return c.clients[i], nil }

func (c *kvCluster) leader(ctx context.Context) (int, error) {
	return findLeader(ctx, c.nodes, c.ids, func(ctx context.Context, i int) (int, string, error) {
		st, err := c.clusterStatus(ctx, i)
		if err != nil {
			return -1, "", err
		}
		return slices.Index(c.ids, st.LeaderID), fmt.Sprintf("%q", st.LeaderID), nil
	})
}

func (c *kvCluster) kill(i int) (time.Time, error) { return c.nodes[i].Kill() }

func (c *kvCluster) term(ctx context.Context, i int) (uint64, error) {
	st, err := c.clusterStatus(ctx, i)
	return st.Self.Term, err
}

func (c *kvCluster) restart(ctx context.Context, i int) error {
	return restartNode(ctx, c.nodes, c.ids, i, c.leader, func(ctx context.Context, j int) (uint64, uint64, error) {
		st, err := c.clusterStatus(ctx, j)
		return st.Self.CommitIndex, st.Self.AppliedIndex, err
	})
}

func (c *kvCluster) close() error {
	for _, cl := range c.clients {
		cl.Close()
	}
	return c.nodes.Stop(15 * time.Second)
}

// profile fetches a CPU profile of seconds from every running node into
// dir, as <prefix>-<node>-<leader|follower>.pprof.
func (c *kvCluster) profile(ctx context.Context, dir, prefix string, leader int, seconds int) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	errc := make(chan error, len(c.nodes))
	for i := range c.nodes {
		role := "follower"
		if i == leader {
			role = "leader"
		}
		go func() {
			errc <- fetchTo(ctx, fmt.Sprintf("http://%s/debug/pprof/profile?seconds=%d", c.debug[i], seconds),
				filepath.Join(dir, fmt.Sprintf("%s-%s-%s.pprof", prefix, c.ids[i], role)))
		}()
	}
	var errs []error
	for range c.nodes {
		errs = append(errs, <-errc)
	}
	return errors.Join(errs...)
}

// fetchTo GETs url into the file path.
func fetchTo(ctx context.Context, url, path string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := (&http.Client{Transport: &http.Transport{Proxy: nil}}).Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if _, err := f.ReadFrom(resp.Body); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// ---- etcd ----

// etcdCluster is a three-member etcd cluster on loopback.
type etcdCluster struct {
	nodes     proc.Group
	ids       []string
	urls      []string // client URL of each member
	memberIDs []uint64
	conns     int
	balanced  *etcdClient   // all endpoints
	single    []*etcdClient // per member, linearizable GETs; created on demand
}

// startEtcdCluster starts three etcd members at once with a static
// initial cluster, each on a fresh data directory under dir, default
// settings otherwise, and waits until each reports itself healthy.
func startEtcdCluster(ctx context.Context, bin, dir string, conns int) (_ *etcdCluster, err error) {
	addrs, err := proc.FreeAddrs(2 * clusterNodes)
	if err != nil {
		return nil, err
	}
	client, peer := addrs[:clusterNodes], addrs[clusterNodes:]
	c := &etcdCluster{conns: conns, single: make([]*etcdClient, clusterNodes)}
	defer func() {
		if err != nil {
			_ = c.close()
		}
	}()
	var initial []string
	for i := range clusterNodes {
		c.ids = append(c.ids, fmt.Sprintf("e%d", i))
		initial = append(initial, fmt.Sprintf("e%d=http://%s", i, peer[i]))
		c.urls = append(c.urls, "http://"+client[i])
	}
	token, err := randomToken()
	if err != nil {
		return nil, err
	}
	for i, id := range c.ids {
		ndir := filepath.Join(dir, id)
		if err := os.MkdirAll(ndir, 0o755); err != nil {
			return nil, fmt.Errorf("etcd: create dir: %w", err)
		}
		n := &proc.Node{Dir: ndir, Timeout: readyTimeout, Probe: probeEtcdHealth(c.urls[i] + "/health"),
			Spec: proc.Spec{Name: "etcd " + id, Bin: bin, Args: append(
				etcdArgs(id, filepath.Join(ndir, "data"), c.urls[i], "http://"+peer[i], strings.Join(initial, ",")),
				"--initial-cluster-token", "kvbench-"+token[:16])}}
		c.nodes = append(c.nodes, n)
		if err := n.Start(); err != nil {
			return nil, err
		}
	}
	for _, n := range c.nodes {
		if err := n.WaitReady(ctx); err != nil {
			return nil, err
		}
	}
	if c.balanced, err = newEtcdClientEndpoints(c.urls, conns, false); err != nil {
		return nil, err
	}
	for i, u := range c.urls {
		sctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		st, err := c.balanced.clients[0].Status(sctx, u)
		cancel()
		if err != nil {
			return nil, fmt.Errorf("etcd: status of %s: %w", c.ids[i], err)
		}
		c.memberIDs = append(c.memberIDs, st.Header.MemberId)
	}
	return c, nil
}

func (c *etcdCluster) system() string                { return report.Etcd }
func (c *etcdCluster) names() []string               { return c.ids }
func (c *etcdCluster) spread() []kvClient            { return []kvClient{c.balanced} }
func (c *etcdCluster) kill(i int) (time.Time, error) { return c.nodes[i].Kill() }

func (c *etcdCluster) pid(i int) int { return c.nodes[i].PID() }

// client returns the linearizable client of member i alone.
func (c *etcdCluster) client(i int) (*etcdClient, error) {
	if c.single[i] == nil {
		cl, err := newEtcdClientEndpoints([]string{c.urls[i]}, c.conns, true)
		if err != nil {
			return nil, err
		}
		c.single[i] = cl
	}
	return c.single[i], nil
}

func (c *etcdCluster) leaderClient(i int) (kvClient, error) { return c.client(i) }
func (c *etcdCluster) reader(i int) (kvClient, error)       { return c.client(i) }

// status asks member i for its status with a short-lived connection.
func (c *etcdCluster) status(ctx context.Context, i int) (*clientv3.StatusResponse, error) {
	cli, err := clientv3.New(clientv3.Config{Endpoints: []string{c.urls[i]}, DialTimeout: 2 * time.Second, Logger: zap.NewNop()})
	if err != nil {
		return nil, err
	}
	defer cli.Close()
	st, err := cli.Status(ctx, c.urls[i])
	if err != nil {
		return nil, fmt.Errorf("%s: status: %w", c.ids[i], err)
	}
	return st, nil
}

func (c *etcdCluster) term(ctx context.Context, i int) (uint64, error) {
	st, err := c.status(ctx, i)
	if err != nil {
		return 0, err
	}
	return st.RaftTerm, nil
}

func (c *etcdCluster) leader(ctx context.Context) (int, error) {
	return findLeader(ctx, c.nodes, c.ids, func(ctx context.Context, i int) (int, string, error) {
		st, err := c.status(ctx, i)
		if err != nil {
			return -1, "", err
		}
		return slices.Index(c.memberIDs, st.Leader), fmt.Sprintf("%x", st.Leader), nil
	})
}

func (c *etcdCluster) restart(ctx context.Context, i int) error {
	return restartNode(ctx, c.nodes, c.ids, i, c.leader, func(ctx context.Context, j int) (uint64, uint64, error) {
		st, err := c.status(ctx, j)
		if err != nil {
			return 0, 0, err
		}
		return st.RaftIndex, st.RaftAppliedIndex, nil
	})
}

func (c *etcdCluster) close() error {
	if c.balanced != nil {
		c.balanced.Close()
	}
	for _, cl := range c.single {
		if cl != nil {
			cl.Close()
		}
	}
	return c.nodes.Stop(15 * time.Second)
}
