package main

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"strings"
	"testing"

	"kvstore.dev/kvstore/internal/config"
	"kvstore.dev/kvstore/internal/kvctl"
	"kvstore.dev/kvstore/test/harness"
	"kvstore.dev/kvstore/test/harness/inprocess"
)

func TestMain(m *testing.M) { harness.Main(m) }

// TestBinary runs the built kvctl against a real server: the environment,
// stdin, stdout and exit codes of the process itself.
func TestBinary(t *testing.T) {
	bin := harness.Binary(t, "kvctl")
	const token = "kvctl-binary-test-token-0123456789"
	cfg := config.Default()
	cfg.Listen, cfg.DebugListen, cfg.Console.Enabled, cfg.Log.Level = "127.0.0.1:0", "", false, "warn"
	cfg.Auth.Tokens = []config.Token{{Name: "admin", Token: token, Role: "admin"}}
	srv := inprocess.Start(t, cfg)
	kv := func(stdin string, args ...string) (string, int) {
		t.Helper()
		cmd := exec.Command(bin, args...)
		cmd.Env = append(os.Environ(), "KVSTORE_URL="+srv.URL, "KVSTORE_TOKEN="+token)
		cmd.Stdin = strings.NewReader(stdin)
		var out, errb bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &errb
		err := cmd.Run()
		var ee *exec.ExitError
		if err != nil && !errors.As(err, &ee) {
			t.Fatalf("kvctl %v: %v", args, err)
		}
		if strings.Contains(errb.String(), token) {
			t.Fatalf("kvctl %v printed the token: %s", args, errb.String())
		}
		return out.String(), cmd.ProcessState.ExitCode()
	}
	if out, code := kv("a value\n", "put", "b/k", "-"); code != 0 || !strings.HasPrefix(out, "created b/k") {
		t.Fatalf("put from stdin: %q, exit %d", out, code)
	}
	if out, code := kv("", "get", "b/k"); code != 0 || out != "a value\n" {
		t.Fatalf("get: %q, exit %d", out, code)
	}
	if _, code := kv("", "get", "b/missing"); code != kvctl.ExitNotFound {
		t.Fatalf("get of a missing key: exit %d, want %d", code, kvctl.ExitNotFound)
	}
	if _, code := kv("", "put", "--create", "b/k", "x"); code != kvctl.ExitPreconditionFailed {
		t.Fatalf("put --create of an existing key: exit %d, want %d", code, kvctl.ExitPreconditionFailed)
	}
	if _, code := kv("", "bogus"); code != kvctl.ExitUsage {
		t.Fatalf("an unknown command: exit %d, want %d", code, kvctl.ExitUsage)
	}
}
