package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// do sends one request with the client's token and returns the status and
// body.
func (c *kvClient) do(method, path string, body string, header map[string]string) (int, http.Header, []byte, error) {
	ctx, cancel := context.WithTimeout(context.Background(), requestTimeout)
	defer cancel()
	var r io.Reader
	if body != "" {
		r = strings.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.baseURL+path, r)
	if err != nil {
		return 0, nil, nil, err
	}
	req.Header.Set("Authorization", "Bearer "+c.token)
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return 0, nil, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, b, err
}

// TestClusterExpiredKeysAreGoneForWrites is the reproduction of issue 11
// on three server processes: after a key's TTL has passed (GET answers
// 404), a create-only PUT creates it, a compare-and-swap on its old
// revision fails, and a prefix delete does not count it. The sweeper is
// held off (ttl.sweep_interval: 1h) so that the writes, not the sweeper,
// must see the expiry.
func TestClusterExpiredKeysAreGoneForWrites(t *testing.T) {
	bin := buildServer(t)
	token := newToken(t)
	conf := filepath.Join(t.TempDir(), "kvstore.yaml")
	if err := os.WriteFile(conf, []byte("ttl: {sweep_interval: 1h}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	nodes := make([]*clusterNode, 3)
	for i := range nodes {
		nodes[i] = &clusterNode{id: fmt.Sprintf("n%d", i), api: freeAddr(t), peer: freeAddr(t), dir: filepath.Join(t.TempDir(), "data")}
	}
	for _, n := range nodes {
		n.p = launchServerWith(t, bin, n.dir, token, n.api, []string{
			"--config", conf, "--node-id", n.id, "--peer-listen", n.peer, "--peer-advertise", n.peer,
			"--bootstrap-node", "n0", "--join", nodes[0].peer,
		}, []string{"KVSTORE_PEER_TOKEN=" + peerToken})
		n.p.name = n.id
		if err := n.p.waitReady(30 * time.Second); err != nil {
			n.p.outputShown = true
			t.Fatalf("%s: %v\n%s", n.id, err, n.p.outputTail())
		}
	}
	leader := leaderNode(t, nodes, token)
	var follower *clusterNode
	for _, n := range nodes {
		if n != leader {
			follower = n
			break
		}
	}
	fc, lc := newKVClient(t, follower.p), newKVClient(t, leader.p)

	revs := map[string]string{}
	for _, k := range []string{"t/create", "t/cas", "p/expired"} {
		status, h, body, err := fc.do(http.MethodPut, "/api/v1/kv/"+k+"?ttl=1s", "v", nil)
		if err != nil || status != http.StatusCreated {
			t.Fatalf("PUT %s?ttl=1s: %d %s %v", k, status, body, err)
		}
		revs[k] = h.Get("ETag")
	}
	if status, _, body, err := fc.do(http.MethodPut, "/api/v1/kv/p/live", "v", nil); err != nil || status != http.StatusCreated {
		t.Fatalf("PUT p/live: %d %s %v", status, body, err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for _, c := range []*kvClient{fc, lc} {
		for {
			status, _, body, err := c.do(http.MethodGet, "/api/v1/kv/t/create", "", nil)
			if err == nil && status == http.StatusNotFound {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("t/create never read as expired on %s: %d %s %v", c.baseURL, status, body, err)
			}
			<-time.After(50 * time.Millisecond)
		}
	}

	if status, _, body, err := fc.do(http.MethodPut, "/api/v1/kv/t/create", "new", map[string]string{"If-None-Match": "*"}); err != nil || status != http.StatusCreated {
		t.Errorf("create-only PUT over an expired key via a follower: %d %s %v, want 201", status, body, err)
	}
	if status, _, body, err := lc.do(http.MethodPut, "/api/v1/kv/t/cas", "new", map[string]string{"If-Match": revs["t/cas"]}); err != nil || status != http.StatusPreconditionFailed {
		t.Errorf("CAS on an expired key's old revision %s via the leader: %d %s %v, want 412", revs["t/cas"], status, body, err)
	}
	status, _, body, err := fc.do(http.MethodDelete, "/api/v1/kv?prefix=p/", "", nil)
	var del struct {
		Deleted int `json:"deleted"`
	}
	if err != nil || status != http.StatusOK || json.Unmarshal(body, &del) != nil || del.Deleted != 1 {
		t.Errorf("prefix delete over one live and one expired key: %d %s %v, want deleted 1", status, body, err)
	}
}
