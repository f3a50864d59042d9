package kvctl_test

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"kvstore.dev/kvstore/internal/certs"
	"kvstore.dev/kvstore/internal/config"
	"kvstore.dev/kvstore/internal/kvctl"
	"kvstore.dev/kvstore/test/harness"
	"kvstore.dev/kvstore/test/harness/inprocess"
	"kvstore.dev/kvstore/wire"
)

const testToken = "kvctl-test-admin-token-0123456789"

func startServer(t *testing.T, edit func(*config.Config)) string {
	t.Helper()
	cfg := config.Default()
	cfg.Listen, cfg.DebugListen = "127.0.0.1:0", ""
	cfg.Console.Enabled = false
	cfg.Log.Level = "warn"
	cfg.Auth.Tokens = []config.Token{
		{Name: "admin", Token: testToken, Role: "admin"},
		{Name: "reader", Token: "kvctl-test-reader-token-0123456789", Role: "readonly"},
	}
	if edit != nil {
		edit(&cfg)
	}
	return inprocess.Start(t, cfg).URL
}

// result is one run of kvctl.
type result struct {
	code           int
	stdout, stderr string
}

// run runs kvctl in process with env (name=value pairs) and stdin.
func run(t *testing.T, env map[string]string, stdin string, args ...string) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var out, errb bytes.Buffer
	code := kvctl.Run(ctx, args, strings.NewReader(stdin), &out, &errb, func(k string) string { return env[k] })
	return result{code, out.String(), errb.String()}
}

func TestCommands(t *testing.T) {
	url := startServer(t, nil)
	dir := t.TempDir()
	valueFile := filepath.Join(dir, "value.txt")
	if err := os.WriteFile(valueFile, []byte("from a file"), 0o600); err != nil {
		t.Fatal(err)
	}
	tokenFile := filepath.Join(dir, "token")
	if err := os.WriteFile(tokenFile, []byte(testToken+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	env := map[string]string{"KVSTORE_URL": url, "KVSTORE_TOKEN": testToken}
	// Each step runs in order: later ones see what earlier ones wrote.
	steps := []struct {
		name   string
		env    map[string]string // nil: env
		stdin  string
		args   []string
		code   int
		stdout string // a substring ("" matches anything), or the whole output when exact
		exact  bool
	}{
		{name: "put an argument", args: []string{"put", "app/a", "hello"}, stdout: "created app/a revision 1\n", exact: true},
		{name: "get prints the value only", args: []string{"get", "app/a"}, stdout: "hello", exact: true},
		{name: "put from a file", args: []string{"put", "app/b", "-f", valueFile, "--ttl", "1h"}, stdout: "created app/b"},
		{name: "put from stdin", stdin: "from stdin", args: []string{"put", "app/c", "-"}, stdout: "created app/c"},
		{name: "put -f - reads stdin", stdin: "again", args: []string{"put", "-f", "-", "app/c"}, stdout: "updated app/c"},
		{name: "get from stdin", args: []string{"get", "app/c"}, stdout: "again", exact: true},
		{name: "get from a file", args: []string{"get", "app/b", "--consistency", "stale"}, stdout: "from a file", exact: true},
		{name: "get json", args: []string{"-o", "json", "get", "app/a"}, stdout: `"value":"aGVsbG8="`},
		{name: "the token from a file", env: map[string]string{"KVSTORE_URL": url, "KVSTORE_TOKEN_FILE": tokenFile}, args: []string{"get", "app/a"}, stdout: "hello", exact: true},
		{name: "--token-file", env: map[string]string{"KVSTORE_URL": url}, args: []string{"get", "--token-file", tokenFile, "app/a"}, stdout: "hello", exact: true},
		{name: "--url wins over KVSTORE_URL", env: map[string]string{"KVSTORE_URL": "http://127.0.0.1:1", "KVSTORE_TOKEN": testToken}, args: []string{"--url", url, "get", "app/a"}, stdout: "hello", exact: true},
		{name: "failover to the second endpoint", env: map[string]string{"KVSTORE_URL": "http://" + harness.FreeAddr(t) + "," + url, "KVSTORE_TOKEN": testToken}, args: []string{"get", "app/a"}, stdout: "hello", exact: true},
		{name: "over HTTP/1.1", args: []string{"get", "--http1", "app/a"}, stdout: "hello", exact: true},
		{name: "create only, existing", args: []string{"put", "--create", "app/a", "x"}, code: kvctl.ExitPreconditionFailed},
		{name: "if-match, stale", args: []string{"put", "--if-match", "999", "app/a", "x"}, code: kvctl.ExitPreconditionFailed},
		{name: "if-match", args: []string{"put", "--if-match", "1", "app/a", "x"}, stdout: "updated app/a"},
		{name: "if-exists, missing", args: []string{"put", "--if-exists", "app/zzz", "x"}, code: kvctl.ExitPreconditionFailed},
		{name: "put json", args: []string{"put", "-o", "json", "app/d", "v"}, stdout: `"created":true`},
		{name: "ls", args: []string{"ls", "app/"}, stdout: "app/a\napp/b\napp/c\napp/d\n", exact: true},
		{name: "ls --limit", args: []string{"ls", "--limit", "2"}, stdout: "app/a\napp/b\n", exact: true},
		{name: "ls json", args: []string{"ls", "-o", "json", "app/"}, stdout: `{"key":"app/b","value":"ZnJvbSBhIGZpbGU="`},
		{name: "watch --since", args: []string{"watch", "app/c", "--since", "1", "--count", "2"}, stdout: "put app/c 3 from stdin\nput app/c 4 again\n", exact: true},
		{name: "watch json", args: []string{"watch", "-o", "json", "--since", "1", "--count", "1", "app/"}, stdout: `"type":"put","key":"app/b"`},
		{name: "del", args: []string{"del", "app/d"}, stdout: "deleted app/d revision"},
		{name: "del missing", args: []string{"del", "app/d"}, code: kvctl.ExitNotFound},
		{name: "get missing", args: []string{"get", "app/d"}, code: kvctl.ExitNotFound},
		{name: "del --prefix", args: []string{"del", "--prefix", "app/"}, stdout: "deleted 3 keys"},
		{name: "status", args: []string{"status"}, stdout: "revision:"},
		{name: "status json", args: []string{"status", "-o", "json"}, stdout: `"keys":0`},
		{name: "cluster", args: []string{"cluster"}, stdout: "a single node"},
		{name: "cluster json", args: []string{"-o", "json", "cluster", "status"}, stdout: `"enabled":false`},
		{name: "cluster add on a single node", args: []string{"cluster", "add", "n1", "127.0.0.1:7001"}, code: kvctl.ExitError},
		{name: "cluster remove on a single node", args: []string{"cluster", "remove", "n1"}, code: kvctl.ExitError},
		{name: "completion bash", args: []string{"completion", "bash"}, stdout: "complete -F _kvctl kvctl"},
		{name: "completion zsh", args: []string{"completion", "zsh"}, stdout: "#compdef kvctl"},
		{name: "help", args: []string{"help"}, stdout: "exit codes:"},

		// Bad input: exit 2, nothing sent.
		{name: "no command", args: nil, code: kvctl.ExitUsage},
		{name: "unknown command", args: []string{"frobnicate"}, code: kvctl.ExitUsage},
		{name: "unknown flag", args: []string{"get", "--frob", "k"}, code: kvctl.ExitUsage},
		{name: "get without a key", args: []string{"get"}, code: kvctl.ExitUsage},
		{name: "put without a value", args: []string{"put", "k"}, code: kvctl.ExitUsage},
		{name: "put with two values", args: []string{"put", "k", "v", "-f", valueFile}, code: kvctl.ExitUsage},
		{name: "del of nothing", args: []string{"del"}, code: kvctl.ExitUsage},
		{name: "del of a key and a prefix", args: []string{"del", "k", "--prefix", "p/"}, code: kvctl.ExitUsage},
		{name: "a bad output", args: []string{"-o", "yaml", "status"}, code: kvctl.ExitUsage},
		{name: "a bad duration", args: []string{"put", "--ttl", "soon", "k", "v"}, code: kvctl.ExitUsage},
		{name: "a bad url", env: map[string]string{"KVSTORE_URL": "127.0.0.1:8080"}, args: []string{"status"}, code: kvctl.ExitUsage},
		{name: "a token on the command line", args: []string{"--token", "s3cret", "status"}, code: kvctl.ExitUsage},
		{name: "cluster with a bad subcommand", args: []string{"cluster", "frob"}, code: kvctl.ExitUsage},
		{name: "completion of fish", args: []string{"completion", "fish"}, code: kvctl.ExitUsage},

		// The server refuses.
		{name: "no token", env: map[string]string{"KVSTORE_URL": url}, args: []string{"get", "app/a"}, code: kvctl.ExitAuth},
		{name: "a read-only token writes", env: map[string]string{"KVSTORE_URL": url, "KVSTORE_TOKEN": "kvctl-test-reader-token-0123456789"}, args: []string{"put", "k", "v"}, code: kvctl.ExitAuth},
		{name: "an invalid key", args: []string{"put", "a//b", "v"}, code: kvctl.ExitError},
		{name: "a bad ttl", args: []string{"put", "--ttl", "-1s", "k", "v"}, code: kvctl.ExitError},
		{name: "nobody answers", env: map[string]string{"KVSTORE_URL": "http://" + harness.FreeAddr(t), "KVSTORE_TOKEN": testToken}, args: []string{"status", "--timeout", "5s"}, code: kvctl.ExitUnavailable},
		{name: "a missing token file", env: map[string]string{"KVSTORE_URL": url, "KVSTORE_TOKEN_FILE": filepath.Join(dir, "none")}, args: []string{"status"}, code: kvctl.ExitError},
		{name: "a missing cacert", args: []string{"status", "--cacert", filepath.Join(dir, "none")}, code: kvctl.ExitError},
	}
	for _, s := range steps {
		e := s.env
		if e == nil {
			e = env
		}
		r := run(t, e, s.stdin, s.args...)
		if r.code != s.code {
			t.Errorf("%s: kvctl %s: exit %d, want %d\nstdout: %s\nstderr: %s", s.name, strings.Join(s.args, " "), r.code, s.code, r.stdout, r.stderr)
			continue
		}
		if s.exact && r.stdout != s.stdout || !s.exact && !strings.Contains(r.stdout, s.stdout) {
			t.Errorf("%s: kvctl %s: stdout %q, want %q", s.name, strings.Join(s.args, " "), r.stdout, s.stdout)
		}
		if strings.Contains(r.stderr, "s3cret") || strings.Contains(r.stderr, testToken) {
			t.Errorf("%s: a token is in the output: %s", s.name, r.stderr)
		}
		if s.code != 0 && r.stderr == "" {
			t.Errorf("%s: exit %d without a message", s.name, r.code)
		}
	}
}

func TestSnapshot(t *testing.T) {
	url := startServer(t, nil)
	env := map[string]string{"KVSTORE_URL": url, "KVSTORE_TOKEN": testToken}
	if r := run(t, env, "", "put", "k", "v"); r.code != 0 {
		t.Fatal(r)
	}
	file := filepath.Join(t.TempDir(), "snap.db")
	r := run(t, env, "", "snapshot", file)
	if r.code != 0 || !strings.Contains(r.stdout, "wrote ") {
		t.Fatalf("snapshot: %+v", r)
	}
	if fi, err := os.Stat(file); err != nil || fi.Size() == 0 {
		t.Fatalf("the snapshot file: %v, %v", fi, err)
	}
	r = run(t, env, "", "snapshot", "-")
	if r.code != 0 || len(r.stdout) == 0 {
		t.Fatalf("snapshot to stdout: exit %d, %d bytes", r.code, len(r.stdout))
	}
	reader := map[string]string{"KVSTORE_URL": url, "KVSTORE_TOKEN": "kvctl-test-reader-token-0123456789"}
	if r := run(t, reader, "", "snapshot", filepath.Join(t.TempDir(), "x.db")); r.code != kvctl.ExitAuth {
		t.Fatalf("a snapshot with a read-only token: %+v", r)
	}
}

func TestTLS(t *testing.T) {
	ca, err := certs.NewCA("kvctl test CA", time.Hour, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	pair, err := ca.IssueServer([]string{"localhost", "127.0.0.1"}, time.Hour, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	files := map[string][]byte{"tls.crt": pair.CertPEM, "tls.key": pair.KeyPEM, "ca.crt": ca.CertPEM}
	for name, data := range files {
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	url := startServer(t, func(c *config.Config) {
		c.API.TLS = config.APITLS{CertFile: filepath.Join(dir, "tls.crt"), KeyFile: filepath.Join(dir, "tls.key")}
	})
	env := map[string]string{"KVSTORE_URL": url, "KVSTORE_TOKEN": testToken}
	if r := run(t, env, "", "status"); r.code != kvctl.ExitError || !strings.Contains(r.stderr, "certificate") {
		t.Fatalf("without --cacert: %+v, want a certificate error", r)
	}
	r := run(t, env, "", "--cacert", filepath.Join(dir, "ca.crt"), "-o", "json", "status")
	var st wire.AdminStatus
	if r.code != 0 || json.Unmarshal([]byte(r.stdout), &st) != nil || st.Version == "" {
		t.Fatalf("with --cacert: %+v", r)
	}
	env["KVSTORE_CACERT"] = filepath.Join(dir, "ca.crt")
	if r := run(t, env, "", "status", "--http1"); r.code != 0 {
		t.Fatalf("KVSTORE_CACERT over HTTP/1.1: %+v", r)
	}
}

// TestWatchLive: watch prints changes as they happen, and an interrupt
// (the context's end) is a normal exit.
func TestWatchLive(t *testing.T) {
	url := startServer(t, nil)
	env := map[string]string{"KVSTORE_URL": url, "KVSTORE_TOKEN": testToken}
	for _, k := range []string{"w/0", "w/1"} {
		if r := run(t, env, "", "put", k, "before"); r.code != 0 {
			t.Fatal(r)
		}
	}
	done := make(chan result, 1)
	go func() { done <- run(t, env, "", "watch", "w/", "--since", "1", "--count", "2") }()
	if r := run(t, env, "", "put", "w/2", "live"); r.code != 0 {
		t.Fatal(r)
	}
	r := <-done
	if r.code != 0 || r.stdout != "put w/1 2 before\nput w/2 3 live\n" {
		t.Fatalf("watch: %+v", r)
	}

	ctx, cancel := context.WithCancel(context.Background())
	cancel() // interrupted at once
	var out, errb bytes.Buffer
	if code := kvctl.Run(ctx, []string{"watch", "--since", "2"}, strings.NewReader(""), &out, &errb, func(k string) string { return env[k] }); code != 0 {
		t.Fatalf("an interrupted watch: exit %d, %s", code, errb.String())
	}
}
