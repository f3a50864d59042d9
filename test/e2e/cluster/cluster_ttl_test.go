package cluster

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"kvstore.dev/kvstore/test/harness"
	"kvstore.dev/kvstore/wire"
)

// TestClusterExpiredKeysAreGoneForWrites is the reproduction of issue 11
// on three server processes: after a key's TTL has passed (GET answers
// 404), a create-only PUT creates it, a compare-and-swap on its old
// revision fails, and a prefix delete does not count it. The sweeper is
// held off (ttl.sweep_interval: 1h) so that the writes, not the sweeper,
// must see the expiry.
func TestClusterExpiredKeysAreGoneForWrites(t *testing.T) {
	conf := filepath.Join(t.TempDir(), "kvstore.yaml")
	if err := os.WriteFile(conf, []byte("ttl: {sweep_interval: 1h}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	cl := harness.StartCluster(t, harness.ClusterOptions{Size: 3, Tweak: func(_ int, o *harness.ProcessOptions) {
		o.Args = []string{"--config", conf}
	}})
	leader := cl.Leader(t)
	follower := cl.Others(leader)[0]
	fc, lc := follower.Client(t), leader.Client(t)

	revs := map[string]string{}
	for _, k := range []string{"t/create", "t/cas", "p/expired"} {
		r := fc.Do(http.MethodPut, wire.KeyPath(k)+"?ttl=1s", []byte("v"))
		if r.Err != nil || r.Status != http.StatusCreated {
			t.Fatalf("PUT %s?ttl=1s: %d %s %v", k, r.Status, r.Body, r.Err)
		}
		revs[k] = r.Header.Get("ETag")
	}
	if r := fc.Put("p/live", []byte("v")); r.Err != nil || r.Status != http.StatusCreated {
		t.Fatalf("PUT p/live: %d %s %v", r.Status, r.Body, r.Err)
	}
	// Every key with a TTL, not just the first written, must read as
	// expired before the writes are judged.
	harness.Eventually(t, "the keys with a TTL read as expired on both nodes", 30*time.Second, func() error {
		for _, c := range []*harness.Client{fc, lc} {
			for k := range revs {
				if r := c.Get(k, ""); r.Err != nil || r.Status != http.StatusNotFound {
					return fmt.Errorf("%s on %s: %d %s %v", k, c.URL, r.Status, r.Body, r.Err)
				}
			}
		}
		return nil
	})

	if r := fc.Put("t/create", []byte("new"), "If-None-Match", "*"); r.Err != nil || r.Status != http.StatusCreated {
		t.Errorf("create-only PUT over an expired key via a follower: %d %s %v, want 201", r.Status, r.Body, r.Err)
	}
	if r := lc.Put("t/cas", []byte("new"), "If-Match", revs["t/cas"]); r.Err != nil || r.Status != http.StatusPreconditionFailed {
		t.Errorf("CAS on an expired key's old revision %s via the leader: %d %s %v, want 412", revs["t/cas"], r.Status, r.Body, r.Err)
	}
	r := fc.Do(http.MethodDelete, wire.PathKV+"?prefix=p/", nil)
	var del wire.DeletePrefixResponse
	if r.Err != nil || r.Status != http.StatusOK || json.Unmarshal(r.Body, &del) != nil || del.Deleted != 1 {
		t.Errorf("prefix delete over one live and one expired key: %d %s %v, want deleted 1", r.Status, r.Body, r.Err)
	}
}
