package backupcmd_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"kvstore.dev/kvstore/internal/backup"
	"kvstore.dev/kvstore/internal/backupcmd"
	"kvstore.dev/kvstore/internal/config"
	"kvstore.dev/kvstore/internal/server"
	"kvstore.dev/kvstore/test/harness"
	"kvstore.dev/kvstore/test/harness/inprocess"
	"kvstore.dev/kvstore/wire"
)

const adminToken = "backup-test-admin-token-0123456789"

// startServer runs a real server in the test's process.
func startServer(t *testing.T, dataDir string) *harness.Client {
	t.Helper()
	cfg := config.Default()
	cfg.Listen, cfg.DebugListen, cfg.DataDir = "127.0.0.1:0", "", dataDir
	cfg.Console.Enabled = false
	cfg.Log.Level = "warn"
	cfg.Auth.Tokens = []config.Token{{Name: "admin", Token: adminToken, Role: "admin"}}
	return harness.NewClient(t, inprocess.Start(t, cfg).URL, adminToken)
}

// fill writes keys with several versions each and deletes some.
func fill(t *testing.T, c *harness.Client, round int) {
	t.Helper()
	for i := range 40 {
		key := fmt.Sprintf("app/%02d", i)
		for v := range 1 + i%3 {
			if r := c.Put(key, fmt.Appendf(nil, "value %d of %s in round %d", v, key, round)); !r.OK() {
				t.Fatalf("PUT %s: %s", key, r)
			}
		}
	}
	for i := 0; i < 40; i += 7 {
		if r := c.Do("DELETE", wire.KeyPath(fmt.Sprintf("app/%02d", i)), nil); !r.OK() {
			t.Fatalf("DELETE: %s", r)
		}
	}
}

// dump lists every live key with its value and revisions, and the store's
// revision.
func dump(t *testing.T, c *harness.Client) ([]wire.KeyMeta, uint64) {
	t.Helper()
	var all []wire.KeyMeta
	var rev uint64
	after := ""
	for {
		var page wire.ListResponse
		if err := c.JSON("GET", wire.PathKV+"?limit=1000&after="+url.QueryEscape(after), nil, &page); err != nil {
			t.Fatal(err)
		}
		all, rev = append(all, page.Items...), page.Revision
		if page.Next == "" {
			return all, rev
		}
		after = page.Next
	}
}

// env is the environment of a backup run.
func env(vars ...string) func(string) string {
	m := map[string]string{config.EnvAdminToken: adminToken}
	for i := 0; i+1 < len(vars); i += 2 {
		m[vars[i]] = vars[i+1]
	}
	return func(k string) string { return m[k] }
}

// backupRestore backs a real server up three times into the destination
// of args (through the subcommand's Run), checks the retention and the
// manifests, then restores the newest into an empty data dir and compares
// every key and revision with the source.
func backupRestore(t *testing.T, dest backup.Destination, args []string, getenv func(string) string) {
	ctx := context.Background()
	src := startServer(t, t.TempDir())
	var want []wire.KeyMeta
	var wantRev uint64
	for round := range 3 {
		fill(t, src, round)
		want, wantRev = dump(t, src)
		var stderr strings.Builder
		if err := backupcmd.Run(ctx, append([]string{"--server", src.URL, "--keep-last", "2", "--log-format", "text"}, args...), getenv, &stderr, nil); err != nil {
			t.Fatalf("backup %d: %v\n%s", round, err, &stderr)
		}
		if strings.Contains(stderr.String(), adminToken) {
			t.Fatalf("the log shows the admin token:\n%s", &stderr)
		}
		if !strings.Contains(stderr.String(), "backup complete") {
			t.Errorf("log of backup %d:\n%s", round, &stderr)
		}
	}
	ms, err := backup.List(ctx, dest)
	if err != nil {
		t.Fatal(err)
	}
	if len(ms) != 2 {
		t.Fatalf("after 3 backups keeping 2, the destination lists %d", len(ms))
	}
	m := ms[0]
	if m.Revision != wantRev || m.ServerVersion != server.Version || m.Source != src.URL {
		t.Errorf("manifest %+v; want revision %d, version %q, source %s", m, wantRev, server.Version, src.URL)
	}
	rc, err := dest.Get(ctx, m.Object)
	if err != nil {
		t.Fatal(err)
	}
	h := sha256.New()
	n, err := io.Copy(h, rc)
	rc.Close()
	if err != nil || n != m.SizeBytes || hex.EncodeToString(h.Sum(nil)) != m.SHA256 {
		t.Fatalf("object %s: %d bytes, sha256 %x, %v; manifest says %d, %s", m.Object, n, h.Sum(nil), err, m.SizeBytes, m.SHA256)
	}

	dataDir := filepath.Join(t.TempDir(), "restored")
	got, st, err := server.RestoreBackup(ctx, dest, "", "", dataDir, false)
	if err != nil {
		t.Fatal(err)
	}
	if got.Name != m.Name || st.Revision != wantRev {
		t.Fatalf("restored %s at revision %d; want %s at %d", got.Name, st.Revision, m.Name, wantRev)
	}
	// Never over existing data without --force, and refused before the
	// download.
	if _, _, err := server.RestoreBackup(ctx, dest, "", "", dataDir, false); err == nil || !strings.Contains(err.Error(), "--force") {
		t.Errorf("restore into a data dir with a database = %v; want a refusal naming --force", err)
	}
	restored := startServer(t, dataDir)
	gotKeys, gotRev := dump(t, restored)
	if gotRev != wantRev || !reflect.DeepEqual(gotKeys, want) {
		t.Fatalf("restored store: revision %d, %d keys; want %d, %d keys\n(-want +got)\n%s", gotRev, len(gotKeys), wantRev, len(want), diff(want, gotKeys))
	}
}

func diff(want, got []wire.KeyMeta) string {
	var b strings.Builder
	for i := range max(len(want), len(got)) {
		var w, g wire.KeyMeta
		if i < len(want) {
			w = want[i]
		}
		if i < len(got) {
			g = got[i]
		}
		if !reflect.DeepEqual(w, g) {
			fmt.Fprintf(&b, "- %+v\n+ %+v\n", w, g)
		}
	}
	return b.String()
}

func TestBackupRestoreDirectory(t *testing.T) {
	root := filepath.Join(t.TempDir(), "volume")
	backupRestore(t, backup.NewDir(root), []string{"--destination", "file://" + root, "--max-rate", "1MiB"}, env())
}

func TestRestoreCorruptBackupRefused(t *testing.T) {
	ctx := context.Background()
	src := startServer(t, t.TempDir())
	fill(t, src, 0)
	root := t.TempDir()
	if err := backupcmd.Run(ctx, []string{"--server", src.URL, "--destination", "file://" + root, "--max-rate=0"}, env(), io.Discard, nil); err != nil {
		t.Fatal(err)
	}
	d := backup.NewDir(root)
	m, err := backup.Latest(ctx, d)
	if err != nil {
		t.Fatal(err)
	}
	obj := filepath.Join(root, m.Object)
	b, _ := os.ReadFile(obj)
	b[4096+100] ^= 1
	os.WriteFile(obj, b, 0o600)
	dataDir := filepath.Join(t.TempDir(), "data")
	_, _, err = server.RestoreBackup(ctx, d, m.Name, "", dataDir, false)
	if !errors.Is(err, backup.ErrCorrupt) {
		t.Fatalf("restore of a corrupted backup = %v; want ErrCorrupt", err)
	}
	if entries, _ := os.ReadDir(dataDir); len(entries) != 0 {
		t.Errorf("a refused restore left %v in the data dir", entries)
	}
}

// TestResultFile: with --result-file, a run leaves its outcome there as
// the operator's backup Job does in its termination message: the
// manifest and the backups the retention deleted, or the error.
func TestResultFile(t *testing.T) {
	ctx := context.Background()
	src := startServer(t, t.TempDir())
	fill(t, src, 0)
	root := filepath.Join(t.TempDir(), "claim", "team")
	resultFile := filepath.Join(t.TempDir(), "termination-log")
	args := []string{"--server", src.URL, "--destination", "file://" + root, "--result-file", resultFile, "--keep-last", "1"}
	read := func() backup.Result {
		t.Helper()
		b, err := os.ReadFile(resultFile)
		if err != nil {
			t.Fatal(err)
		}
		if len(b) > backup.MaxResultBytes {
			t.Errorf("the result has %d bytes, more than a termination message holds", len(b))
		}
		r, err := backup.ParseResult(b)
		if err != nil {
			t.Fatalf("%v\n%s", err, b)
		}
		return r
	}

	var first backup.Result
	for round := range 2 {
		if err := backupcmd.Run(ctx, args, env(), io.Discard, nil); err != nil {
			t.Fatalf("backup %d: %v", round, err)
		}
		r := read()
		m, err := backup.Latest(ctx, backup.NewDir(root))
		if err != nil {
			t.Fatal(err)
		}
		b, err := os.ReadFile(filepath.Join(root, r.Object()))
		if err != nil {
			t.Fatalf("the result names %s: %v", r.Object(), err)
		}
		sum := sha256.Sum256(b)
		if r.Name != m.Name || r.SHA256 != hex.EncodeToString(sum[:]) || r.SizeBytes != int64(len(b)) || r.Revision != m.Revision || r.Revision == 0 || r.Error != "" {
			t.Errorf("result %+v; the file has sha256 %x, %d bytes; the manifest %+v", r, sum, len(b), m)
		}
		switch round {
		case 0:
			first = r
			if len(r.Pruned) != 0 {
				t.Errorf("the first backup pruned %v", r.Pruned)
			}
		case 1:
			if !reflect.DeepEqual(r.Pruned, []string{first.Name}) {
				t.Errorf("pruned %v; want [%s] (keep last 1)", r.Pruned, first.Name)
			}
		}
	}

	// Failed: the error is the result (and the exit status), over the
	// previous run's result.
	err := backupcmd.Run(ctx, append(args, "--server", "http://127.0.0.1:1"), env(), io.Discard, nil)
	if err == nil {
		t.Fatal("a backup from a closed port succeeded")
	}
	if r := read(); r.Name != "" || !strings.Contains(r.Error, "connection refused") || !strings.Contains(err.Error(), r.Error) {
		t.Errorf("result %+v of the failure %v", r, err)
	}
	// The token is read when the backup runs: a missing one is a result
	// too.
	if err := backupcmd.Run(ctx, args, func(string) string { return "" }, io.Discard, nil); err == nil {
		t.Fatal("a backup without a token succeeded")
	}
	if r := read(); !strings.Contains(r.Error, config.EnvAdminToken) {
		t.Errorf("result %+v without a token", r)
	}
}
