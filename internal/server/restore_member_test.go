package server

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"kvstore.dev/kvstore/internal/backup"
	"kvstore.dev/kvstore/internal/config"
	"kvstore.dev/kvstore/internal/store"
	"kvstore.dev/kvstore/test/harness"
	"kvstore.dev/kvstore/wire"
)

// backupOf takes a backup of the running server r into a new directory
// destination.
func backupOf(t *testing.T, r *running) (backup.Destination, backup.Manifest) {
	t.Helper()
	req, _ := http.NewRequest("GET", "http://"+r.api+"/api/v1/snapshot", nil)
	req.Header.Set("Authorization", "Bearer "+adminToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("snapshot: %v %v", resp, err)
	}
	defer resp.Body.Close()
	dest := backup.NewDir(filepath.Join(t.TempDir(), "backups"))
	m, err := backup.Write(context.Background(), dest, resp.Body, backup.Info{})
	if err != nil {
		t.Fatal(err)
	}
	return dest, m
}

// asMember makes a server config a cluster member kv-<i> as the operator
// runs them: kv-0 may bootstrap, every member joins through peers[0].
func asMember(dataDir string, i int, peers []string) func(*config.Config) {
	return func(c *config.Config) {
		withAdmin(dataDir)(c)
		c.Cluster = config.Cluster{
			Enabled: true, NodeID: fmt.Sprintf("kv-%d", i), PeerListen: peers[i], PeerAdvertise: peers[i],
			BootstrapNode: "kv-0", Join: peers[:1], PeerToken: strings.Repeat("p", 32),
		}
	}
}

// keysOf lists every key the server r holds itself (stale reads: its own
// state machine), with its revisions.
func keysOf(t *testing.T, r *running) []wire.KeyMeta {
	t.Helper()
	var out wire.ListResponse
	c := harness.NewClient(t, "http://"+r.api, adminToken)
	if err := c.JSON("GET", "/api/v1/kv?consistency=stale&limit=1000", nil, &out); err != nil {
		t.Fatalf("list %s: %v", r.api, err)
	}
	return out.Items
}

// TestRestoreSeedsCluster: a backup restored as kv-0 of a new cluster
// (kvstore restore --node-id) makes kv-0 the leader of a one-server
// cluster holding it; kv-1 and kv-2, started empty, join and receive it by
// snapshot install: all three hold every key with the same revisions, and
// take writes.
func TestRestoreSeedsCluster(t *testing.T) {
	src := start(t, withAdmin(t.TempDir()))
	c := harness.NewClient(t, "http://"+src.api, adminToken)
	for i := range 20 {
		if r := c.Put(fmt.Sprintf("k%02d", i), []byte(fmt.Sprint(i))); !r.OK() {
			t.Fatal(r)
		}
	}
	for _, k := range []string{"k03", "k07", "k03"} { // revisions and versions that differ from creation order
		if r := c.Put(k, []byte("again")); !r.OK() {
			t.Fatal(r)
		}
	}
	if r := c.Do("DELETE", wire.KeyPath("k11"), nil); !r.OK() {
		t.Fatal(r)
	}
	want := keysOf(t, src)
	dest, m := backupOf(t, src)
	src.stop(t)

	peers := []string{harness.FreeAddr(t), harness.FreeAddr(t), harness.FreeAddr(t)}
	dirs := []string{t.TempDir(), t.TempDir(), t.TempDir()}
	if _, _, _, err := RestoreBackupAsMember(context.Background(), dest, m.Name, m.SHA256, dirs[0], Member{"kv-0", peers[0]}); err != nil {
		t.Fatal(err)
	}
	servers := make([]*running, 3)
	servers[0] = start(t, asMember(dirs[0], 0, peers))
	wantKeys(t, servers[0], map[string]string{"k00": "0", "k03": "again", "k11": ""})
	for i := 1; i < 3; i++ {
		servers[i] = start(t, asMember(dirs[i], i, peers))
	}
	cc := harness.NewClient(t, "http://"+servers[0].api, adminToken)
	harness.Eventually(t, "three members, kv-0 leading", 30*time.Second, func() error {
		st, err := cc.ClusterStatus()
		if err != nil {
			return err
		}
		if st.LeaderID != "kv-0" || len(st.Members) != 3 {
			return fmt.Errorf("leader %q, %d members", st.LeaderID, len(st.Members))
		}
		return nil
	})
	for i, s := range servers {
		harness.Eventually(t, fmt.Sprintf("kv-%d holds the backup", i), 30*time.Second, func() error {
			if got := keysOf(t, s); !reflect.DeepEqual(got, want) {
				return fmt.Errorf("keys (-want +got):\n- %+v\n+ %+v", want, got)
			}
			return nil
		})
	}
	if r := harness.NewClient(t, "http://"+servers[2].api, adminToken).Put("after", []byte("restore")); !r.OK() {
		t.Fatalf("write through kv-2 after the restore: %v", r)
	}
}

// TestRestoreAsMemberRefuses: a data dir with data, a checksum that does
// not match and a bad member are refused, and the data dir is left as it
// was.
func TestRestoreAsMemberRefuses(t *testing.T) {
	src := start(t, withAdmin(t.TempDir()))
	if r := harness.NewClient(t, "http://"+src.api, adminToken).Put("k", []byte("v")); !r.OK() {
		t.Fatal(r)
	}
	dest, m := backupOf(t, src)
	src.stop(t)
	withFile := func(name string) func(t *testing.T) string {
		return func(t *testing.T) string {
			d := t.TempDir()
			if err := os.MkdirAll(filepath.Join(d, name), 0o700); err != nil {
				t.Fatal(err)
			}
			return d
		}
	}
	cases := map[string]struct {
		dir    func(t *testing.T) string
		sum    string
		member Member
		want   string
		is     error
	}{
		"database":     {withFile(store.DBFile), m.SHA256, Member{"kv-0", "kv-0:7000"}, "kv.db exists", ErrDataDirNotEmpty},
		"raft state":   {withFile(store.RaftDir), m.SHA256, Member{"kv-0", "kv-0:7000"}, "raft exists", ErrDataDirNotEmpty},
		"wrong sha256": {func(t *testing.T) string { return t.TempDir() }, strings.Repeat("0", 64), Member{"kv-0", "kv-0:7000"}, "corrupt backup", backup.ErrCorrupt},
		"no node id":   {func(t *testing.T) string { return t.TempDir() }, m.SHA256, Member{"", "kv-0:7000"}, "--node-id", nil},
		"bad address":  {func(t *testing.T) string { return t.TempDir() }, m.SHA256, Member{"kv-0", "kv-0"}, "--peer-advertise", nil},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			dir := tc.dir(t)
			before := harness.ListDir(t, dir)
			_, _, _, err := RestoreBackupAsMember(context.Background(), dest, m.Name, tc.sum, dir, tc.member)
			if err == nil || !strings.Contains(err.Error(), tc.want) || (tc.is != nil && !errors.Is(err, tc.is)) {
				t.Fatalf("RestoreBackupAsMember = %v, want an error containing %q (errors.Is %v)", err, tc.want, tc.is)
			}
			if after := harness.ListDir(t, dir); !reflect.DeepEqual(after, before) {
				t.Errorf("data dir changed (-before +after):\n- %v\n+ %v", before, after)
			}
		})
	}
}
