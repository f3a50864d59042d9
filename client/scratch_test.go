package client_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"kvstore.dev/kvstore/test/harness"
)

const scratchMain = `package main

import (
	"context"
	"fmt"
	"os"

	"kvstore.dev/kvstore/client"
)

func main() {
	ctx := context.Background()
	c := client.New(os.Getenv("KVSTORE_URL"), client.WithToken(os.Getenv("KVSTORE_TOKEN")))
	if _, err := c.Put(ctx, "scratch/k", []byte("from a scratch module")); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	kv, err := c.Get(ctx, "scratch/k")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	fmt.Printf("%s\n", kv.Value)
}
`

// TestScratchModule: a module of its own go-gets the client (the repository
// stands in for the published module through a replace directive) and
// runs a program with it against a running server.
func TestScratchModule(t *testing.T) {
	if testing.Short() {
		t.Skip("builds a module with the go command")
	}
	goCmd, err := exec.LookPath("go")
	if err != nil {
		t.Skip("no go command:", err)
	}
	dir := t.TempDir()
	mod := "module scratch\n\ngo 1.26.0\n\nreplace kvstore.dev/kvstore => " + harness.Root() + "\n"
	for name, data := range map[string]string{"go.mod": mod, "main.go": scratchMain} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(data), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	env := append(os.Environ(), "GOFLAGS=-mod=mod", "GOWORK=off", "KVSTORE_URL="+exampleURL, "KVSTORE_TOKEN="+exampleToken)
	goRun := func(args ...string) string {
		t.Helper()
		cmd := exec.Command(goCmd, args...)
		cmd.Dir, cmd.Env = dir, env
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("go %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return string(out)
	}
	// A replaced module has no published version: its zero pseudo-version.
	goRun("get", "kvstore.dev/kvstore@v0.0.0-00010101000000-000000000000")
	if out := goRun("run", "."); out != "from a scratch module\n" {
		t.Fatalf("the program printed %q", out)
	}
	if b, _ := os.ReadFile(filepath.Join(dir, "go.mod")); !strings.Contains(string(b), "require kvstore.dev/kvstore") {
		t.Fatalf("go.mod after go get:\n%s", b)
	}
}
