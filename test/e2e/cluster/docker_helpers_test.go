package cluster

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"kvstore.dev/kvstore/test/harness"
	"kvstore.dev/kvstore/wire"
)

const (
	image     = "kvstore/kvstore:local"
	testLabel = "dev.kvstore.test=partition"
	peerPort  = "7000"
)

// docker runs the docker CLI with extra environment variables, bounded in
// time, and returns its trimmed combined output.
func docker(env []string, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "docker", args...)
	cmd.Env = append(os.Environ(), env...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("docker %s: %w\n%s", strings.Join(args, " "), err, out)
	}
	return strings.TrimSpace(string(out)), nil
}

func mustDocker(t *testing.T, args ...string) string {
	t.Helper()
	out, err := docker(nil, args...)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func randHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// node is one container of the cluster.
type node struct {
	id        string // Raft node id, and its alias on the peer network
	container string
	api       *harness.Client // the API as published on loopback, with the admin token
}

// testCluster is a set of server containers on a peer and a client network.
type testCluster struct {
	t                  *testing.T
	peerNet, clientNet string
	nodes              []*node
	token              string // admin token
	hc                 *http.Client
}

// startCluster creates the networks and size containers (n0 bootstraps,
// the others join it) and waits until every node sees all members as
// voters and the same leader. Cleanup is registered before anything is
// created.
func startCluster(t *testing.T, size int) *testCluster {
	t.Helper()
	suffix := randHex(4)
	c := &testCluster{
		t:         t,
		peerNet:   "kvstore_part_" + suffix + "_peer",
		clientNet: "kvstore_part_" + suffix + "_client",
		token:     "admin-" + randHex(16),
		// Keep-alives off: every request dials the published port afresh,
		// so a hung connection cannot leak into a later probe.
		hc: &http.Client{Transport: &http.Transport{DisableKeepAlives: true}},
	}
	env := []string{"KVSTORE_PEER_TOKEN=peer-" + randHex(16), "KVSTORE_ADMIN_TOKEN=" + c.token}
	for i := range size {
		c.nodes = append(c.nodes, &node{id: fmt.Sprintf("n%d", i), container: fmt.Sprintf("kvp-%s-n%d", suffix, i)})
	}
	t.Cleanup(c.cleanup)
	mustDocker(t, "network", "create", "--driver", "bridge", "--internal", "--label", testLabel, c.peerNet)
	mustDocker(t, "network", "create", "--driver", "bridge", "--label", testLabel, c.clientNet)
	for _, n := range c.nodes {
		// The tokens reach the container from the CLI's environment (-e NAME),
		// not from its command line.
		if _, err := docker(env, "create", "--name", n.container, "--label", testLabel,
			"--network", c.clientNet, "-p", "127.0.0.1::8080",
			"--read-only", "--cap-drop", "ALL", "--security-opt", "no-new-privileges",
			"-e", "KVSTORE_PEER_TOKEN", "-e", "KVSTORE_ADMIN_TOKEN",
			image, "serve", "--listen", ":8080", "--data-dir", "/data",
			"--node-id", n.id, "--peer-listen", ":"+peerPort, "--peer-advertise", n.id+":"+peerPort,
			"--bootstrap-node", "n0", "--join", "n0:"+peerPort); err != nil {
			t.Fatal(err)
		}
		mustDocker(t, "network", "connect", "--alias", n.id, c.peerNet, n.container)
	}
	for _, n := range c.nodes {
		mustDocker(t, "start", n.container)
	}
	for _, n := range c.nodes {
		out := mustDocker(t, "port", n.container, "8080/tcp")
		for line := range strings.Lines(out) {
			if line = strings.TrimSpace(line); strings.HasPrefix(line, "127.0.0.1:") {
				n.api = &harness.Client{URL: "http://" + line, Token: c.token, HC: c.hc}
				break
			}
		}
		if n.api == nil {
			t.Fatalf("docker port %s 8080/tcp: no 127.0.0.1 binding in %q", n.container, out)
		}
	}
	took := harness.Eventually(t, "every node sees three voters and one leader", 90*time.Second, func() error {
		leaders := map[string]bool{}
		for _, n := range c.nodes {
			st, err := c.status(n)
			if err != nil {
				return fmt.Errorf("%s: %v", n.id, err)
			}
			if st.LeaderID == "" || len(st.Members) != size {
				return fmt.Errorf("%s: leader %q, %d members", n.id, st.LeaderID, len(st.Members))
			}
			for _, m := range st.Members {
				if m.Suffrage != wire.SuffrageVoter || m.Status == nil {
					return fmt.Errorf("%s sees %s as %s (%s)", n.id, m.ID, m.Suffrage, m.Error)
				}
			}
			leaders[st.LeaderID] = true
			if code, err := c.readyz(n); code != 200 {
				return fmt.Errorf("%s: /readyz %d %v", n.id, code, err)
			}
		}
		if len(leaders) != 1 {
			return fmt.Errorf("leaders seen: %v", leaders)
		}
		return nil
	})
	t.Logf("cluster of %d containers formed in %s (networks %s, %s)", size, took.Round(time.Millisecond), c.peerNet, c.clientNet)
	return c
}

// cleanup prints the containers' logs and statuses when the test failed,
// then removes the containers (with their anonymous volumes) and networks.
func (c *testCluster) cleanup() {
	if c.t.Failed() {
		for _, n := range c.nodes {
			if n.api != nil {
				st, err := c.status(n)
				b, _ := json.Marshal(st)
				c.t.Logf("GET /api/v1/cluster on %s: %s %v", n.id, b, err)
			}
			logs, _ := docker(nil, "logs", "--timestamps", "--tail", "200", n.container)
			c.t.Logf("docker logs %s:\n%s", n.container, logs)
		}
	}
	for _, n := range c.nodes {
		if out, err := docker(nil, "rm", "-f", "-v", n.container); err != nil && !strings.Contains(out, "No such container") {
			c.t.Errorf("cleanup: %v", err)
		}
	}
	for _, net := range []string{c.peerNet, c.clientNet} {
		if out, err := docker(nil, "network", "rm", net); err != nil && !strings.Contains(out, "not found") {
			c.t.Errorf("cleanup: %v", err)
		}
	}
}

func (c *testCluster) put(n *node, key, value string, timeout time.Duration) harness.Reply {
	return n.api.WithTimeout(timeout).Put(key, []byte(value))
}

func (c *testCluster) get(n *node, key, consistency string, timeout time.Duration) harness.Reply {
	return n.api.WithTimeout(timeout).Get(key, consistency)
}

func (c *testCluster) readyz(n *node) (int, error) {
	r := n.api.WithTimeout(3*time.Second).Do(http.MethodGet, wire.PathReadyz, nil)
	return r.Status, r.Err
}

func (c *testCluster) status(n *node) (wire.ClusterStatus, error) {
	return n.api.WithTimeout(5 * time.Second).ClusterStatus()
}

func (c *testCluster) byID(id string) *node {
	for _, n := range c.nodes {
		if n.id == id {
			return n
		}
	}
	return nil
}
