package cluster

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"
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
	url       string // the API as published on loopback
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
				n.url = "http://" + line
				break
			}
		}
		if n.url == "" {
			t.Fatalf("docker port %s 8080/tcp: no 127.0.0.1 binding in %q", n.container, out)
		}
	}
	took := waitFor(t, 90*time.Second, "every node sees three voters and one leader", func() (bool, string) {
		leaders := map[string]bool{}
		for _, n := range c.nodes {
			st, err := c.status(n)
			if err != nil {
				return false, fmt.Sprintf("%s: %v", n.id, err)
			}
			if st.LeaderID == "" || len(st.Members) != size {
				return false, fmt.Sprintf("%s: leader %q, %d members", n.id, st.LeaderID, len(st.Members))
			}
			for _, m := range st.Members {
				if m.Suffrage != "Voter" || m.Status == nil {
					return false, fmt.Sprintf("%s sees %s as %s (%s)", n.id, m.ID, m.Suffrage, m.Error)
				}
			}
			leaders[st.LeaderID] = true
			if code, err := c.readyz(n); code != 200 {
				return false, fmt.Sprintf("%s: /readyz %d %v", n.id, code, err)
			}
		}
		return len(leaders) == 1, fmt.Sprintf("leaders seen: %v", leaders)
	})
	t.Logf("cluster of %d containers formed in %s (networks %s, %s)", size, took.Round(time.Millisecond), c.peerNet, c.clientNet)
	return c
}

// cleanup prints the containers' logs and statuses when the test failed,
// then removes the containers (with their anonymous volumes) and networks.
func (c *testCluster) cleanup() {
	if c.t.Failed() {
		for _, n := range c.nodes {
			if n.url != "" {
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

// reply is what one HTTP request got: a status, or an error (timeout).
type reply struct {
	status int
	header http.Header
	body   string
	code   string // the problem's "code"
	took   time.Duration
	err    error
}

func (r reply) ok() bool { return r.err == nil && r.status/100 == 2 }

func (r reply) String() string {
	if r.err != nil {
		return fmt.Sprintf("error after %s: %v", r.took.Round(time.Millisecond), r.err)
	}
	return fmt.Sprintf("%d %s after %s", r.status, r.code, r.took.Round(time.Millisecond))
}

func (c *testCluster) do(n *node, method, path, body string, timeout time.Duration) reply {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, _ := http.NewRequestWithContext(ctx, method, n.url+path, rd)
	req.Header.Set("Authorization", "Bearer "+c.token)
	start := time.Now()
	resp, err := c.hc.Do(req)
	if err != nil {
		return reply{err: err, took: time.Since(start)}
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	r := reply{status: resp.StatusCode, header: resp.Header, body: string(b), took: time.Since(start), err: err}
	if strings.HasPrefix(resp.Header.Get("Content-Type"), "application/problem+json") {
		var p struct{ Code string }
		_ = json.Unmarshal(b, &p)
		r.code = p.Code
	}
	return r
}

func (c *testCluster) put(n *node, key, value string, timeout time.Duration) reply {
	return c.do(n, http.MethodPut, "/api/v1/kv/"+key, value, timeout)
}

func (c *testCluster) get(n *node, key, consistency string, timeout time.Duration) reply {
	return c.do(n, http.MethodGet, "/api/v1/kv/"+key+"?consistency="+consistency, "", timeout)
}

func (c *testCluster) readyz(n *node) (int, error) {
	r := c.do(n, http.MethodGet, "/readyz", "", 3*time.Second)
	return r.status, r.err
}

// clusterStatus is GET /api/v1/cluster.
type clusterStatus struct {
	Self     selfStatus `json:"self"`
	LeaderID string     `json:"leader_id"`
	Leader   string     `json:"leader"`
	Members  []struct {
		ID       string      `json:"id"`
		Address  string      `json:"address"`
		Suffrage string      `json:"suffrage"`
		Leader   bool        `json:"leader"`
		Status   *selfStatus `json:"status"`
		Error    string      `json:"error"`
	} `json:"members"`
}

type selfStatus struct {
	ID            string `json:"id"`
	State         string `json:"state"`
	Term          uint64 `json:"term"`
	CommitIndex   uint64 `json:"commit_index"`
	AppliedIndex  uint64 `json:"applied_index"`
	LastContactMS int64  `json:"last_contact_ms"`
}

func (c *testCluster) status(n *node) (clusterStatus, error) {
	var st clusterStatus
	r := c.do(n, http.MethodGet, "/api/v1/cluster", "", 5*time.Second)
	if r.err != nil || r.status != 200 {
		return st, fmt.Errorf("GET /api/v1/cluster: %v %s", r, r.body)
	}
	return st, json.Unmarshal([]byte(r.body), &st)
}

func (c *testCluster) byID(id string) *node {
	for _, n := range c.nodes {
		if n.id == id {
			return n
		}
	}
	return nil
}

// poll calls cond until it holds or timeout passes, pacing itself; it
// returns how long that took, whether cond held, and cond's last detail.
func poll(timeout time.Duration, cond func() (bool, string)) (time.Duration, bool, string) {
	start := time.Now()
	for {
		ok, detail := cond()
		if ok {
			return time.Since(start), true, detail
		}
		if time.Since(start) > timeout {
			return time.Since(start), false, detail
		}
		time.Sleep(100 * time.Millisecond) // pacing between polls
	}
}

// waitFor is poll that fails the test on timeout.
func waitFor(t *testing.T, timeout time.Duration, what string, cond func() (bool, string)) time.Duration {
	t.Helper()
	took, ok, detail := poll(timeout, cond)
	if !ok {
		t.Fatalf("not true after %s: %s (last: %s)", timeout, what, detail)
	}
	return took
}
